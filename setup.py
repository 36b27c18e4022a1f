"""Packaging for dreamer. Presets in configs/ are installed as dreamer/configs; the published
returns in dreamer/reference/ (CSV, with their README and licence) as package data."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def pins(*names):
  wanted = {}
  for line in (HERE / 'requirements.txt').read_text().splitlines():
    line = line.split('#')[0].strip()
    if line:
      wanted[line.split('==')[0].lower()] = line
  return [wanted[name] for name in names]


setuptools.setup(
    name='dreamer',
    version='0.1.0',
    description='Dreamer: learning behaviors by latent imagination, in TensorFlow 2',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.11',
    packages=setuptools.find_packages(include=['dreamer', 'dreamer.*']) + ['dreamer.configs'],
    package_dir={'dreamer.configs': 'configs'},
    package_data={'dreamer.configs': ['*.yaml'],
                  'dreamer.reference': ['*.csv', 'README.md', 'LICENSE']},
    install_requires=pins(
        'tensorflow', 'tensorflow-probability', 'tf-keras', 'keras', 'tensorboard', 'numpy',
        'ruamel.yaml', 'imageio', 'imageio-ffmpeg', 'pillow', 'matplotlib'),
    extras_require={
        'dmc': pins('dm_control', 'mujoco'),
        'atari': pins('gymnasium', 'ale-py', 'opencv-python-headless'),
        'gym': pins('gymnasium', 'mujoco'),
        'dev': pins('pytest', 'pytest-timeout', 'pytest-xdist', 'execnet'),
    },
    entry_points={'console_scripts': ['dreamer-train=dreamer.scripts.train:cli']},
)
