"""dreamer.reference: the published returns read right, and ship in the wheel."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from dreamer.reference import published

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_published_returns_at_105k_frames():
  # The figures at the first published point after the random seed episodes.
  cheetah = published.at_frames('cheetah_run', 105000)
  assert [round(cheetah[seed]) for seed in range(5)] == [79, 223, 109, 136, 91]
  walker = published.at_frames('walker_walk', 105000)
  assert [round(walker[seed]) for seed in range(5)] == [173, 81, 110, 88, 233]
  frames, mean, low, high, seeds = published.curve('cheetah_run')[1]
  assert (frames, round(mean), low, high, seeds) == (105000, 128, 78.9, 223.0, 5)
  assert round(published.curve('walker_walk')[1][1]) == 137


def test_frame_counts_tasks_and_baselines():
  assert len(published.tasks()) == 20 and 'cheetah_run' in published.tasks()
  counts = published.frame_counts('cheetah_run')
  assert counts[:3] == [5000, 105000, 205000] and counts[-1] == 4905000
  # Seeds end at different frame counts: walker_walk's seed 2 at 3205000.
  assert sorted(published.at_frames('walker_walk', 4905000)) == [0, 1, 3, 4]
  assert published.curve('walker_walk')[-1][4] == 4
  assert published.baselines('cheetah_run') == {
      'a3c_100m_proprio': 213.9, 'd4pg_100m': 523.8, 'planet_1e6': 662.0, 'slac_3e6': 880.0}
  for task in ('dummy', 'atari_pong', 'cartpole_balance+walker_walk'):
    assert published.dreamer_returns(task) == {} and published.curve(task) == []
    assert published.baselines(task) == {}


@pytest.mark.timeout(300)
def test_the_wheel_installs_the_published_returns(tmp_path):
  """pip builds a wheel of a copy of the checkout (so that nothing is written into it); the
  unpacked wheel alone, first on sys.path, reads its returns."""
  source = tmp_path / 'source'
  source.mkdir()
  for name in ('setup.py', 'requirements.txt', 'README.md'):
    shutil.copy(ROOT / name, source / name)
  ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
  shutil.copytree(ROOT / 'dreamer', source / 'dreamer', ignore=ignore)
  shutil.copytree(ROOT / 'configs', source / 'configs', ignore=ignore)
  built = subprocess.run(
      [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index',
       '-q', '-w', str(tmp_path / 'wheel'), str(source)], capture_output=True, text=True,
      timeout=240)
  assert built.returncode == 0, built.stderr
  wheel, = (tmp_path / 'wheel').glob('dreamer-*.whl')
  installed = tmp_path / 'installed'
  with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    archive.extractall(installed)
  for name in ('dreamer_published_returns.csv', 'baselines_final_returns.csv', 'README.md',
               'LICENSE'):
    assert f'dreamer/reference/{name}' in names
  code = ('import dreamer.reference.published as p\n'
          'print(p.__file__)\n'
          "print(round(p.curve('cheetah_run')[1][1]), len(p.tasks()))")
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=tmp_path, env={'PYTHONPATH': str(installed)}, timeout=60)
  assert result.returncode == 0, result.stderr
  where, figures = result.stdout.strip().splitlines()
  assert where.startswith(str(installed)) and figures == '128 20'
