"""Runs in its own process (the CPU must be split before TensorFlow starts): one update
on two logical CPUs under MirroredStrategy, with and without `jit`, next to the same
update on one device.

Prints one JSON object with the updates' metrics, the largest difference of the updated
variables, and the shapes of a distributed input batch. The train step's randomness
(dequantisation noise, latent and action samples) is switched off so that splitting the
batch cannot change any number.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from tensorflow_probability.python.internal import samplers  # noqa: E402

from dreamer import config as config_lib  # noqa: E402
from dreamer.agents import distribute  # noqa: E402
from dreamer.data import episodes  # noqa: E402
from dreamer.envs import registry  # noqa: E402
from dreamer.envs.spaces import Box  # noqa: E402
from dreamer.models import world_model  # noqa: E402
from dreamer.scripts import build  # noqa: E402

_preprocess = world_model.preprocess_image
world_model.preprocess_image = lambda image, bits=8, noise=True: _preprocess(image, bits, False)
samplers.normal = lambda shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None: (
    tf.zeros(shape, dtype) + tf.cast(mean, dtype))

B, T = 4, 6
OBS = {'image': Box(0, 255, (64, 64, 3), np.uint8)}
PARAMS = {
    'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'cnn_depth': 4,
    'imagination_horizon': 3, 'batch_shape': [B, T], 'mean_only': True,
    'value_target_head': True, 'num_chunks': 1,
    # Small enough that clipping acts: it must see the norm of the summed gradient.
    'model_gradient_clipping': 1.0, 'action_gradient_clipping': 0.1}


def make_batch(action_size):
  rng = np.random.default_rng(0)
  shape = (B, T)
  return {
      'image': tf.constant(rng.integers(0, 256, shape + (64, 64, 3)), tf.uint8),
      'action': tf.constant(rng.uniform(-1, 1, shape + (action_size,)), tf.float32),
      'reward': tf.constant(rng.normal(size=shape), tf.float32),
      'pcont': tf.fill(shape, 0.99), 'reward_mask': tf.ones(shape + (1,))}


def dataset_shapes(config, strategy):
  with tempfile.TemporaryDirectory() as run_dir:
    for mode in ('train', 'test'):
      for _ in range(2):
        episodes.save_episode(pathlib.Path(run_dir) / f'{mode}_episodes', {
            'image': np.zeros((T + 1, 64, 64, 3), np.uint8),
            'action': np.zeros((T + 1, 2), np.float32),
            'reward': np.zeros(T + 1, np.float32), 'pcont': np.ones(T + 1, np.float32)})
    train, _ = build.datasets(config, run_dir, strategy)
    images = next(train())['image']
    return [[list(map(int, x.shape)), x.dtype.name, x.device]
            for x in strategy.experimental_local_results(images)]


def main():
  config = config_lib.build_config(PARAMS, registry.state_components_checked)
  act = Box(-1, 1, (2,))
  single = build.agent(config, OBS, act)
  strategy = distribute.make_strategy('mirrored', ['/cpu:0', '/cpu:1'])
  mirrored = build.agent(config, OBS, act, strategy)
  jitted = build.agent(config_lib.build_config(dict(PARAMS, jit=True)), OBS, act, strategy)
  for source, target, compiled in zip(single.variables, mirrored.variables, jitted.variables):
    target.assign(source)
    compiled.assign(source)
  data = make_batch(single.action_size)
  one = single.train(data)
  two = mirrored.train(distribute.split_batch(strategy, data))
  three = jitted.train(distribute.split_batch(strategy, data))
  diff = max(float(np.max(np.abs(a.numpy() - b.numpy())))
             for a, b in zip(single.variables, mirrored.variables))
  jit_diff = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                 for a, b in zip(single.variables, jitted.variables))
  replicas_equal = all(
      all(np.array_equal(x.numpy(), v.values[0].numpy()) for x in v.values)
      for v in mirrored.trainable_variables)
  action, _ = mirrored.policy({'image': np.zeros((2, 64, 64, 3), np.uint8)}, None,
                              np.ones(2, bool), [0.0, 0.0])
  jit_action, _ = jitted.policy({'image': np.zeros((2, 64, 64, 3), np.uint8)}, None,
                                np.ones(2, bool), [0.0, 0.0])
  print(json.dumps({
      'replicas': strategy.num_replicas_in_sync,
      'single': {k: float(v) for k, v in one.items()},
      'mirrored': {k: float(v) for k, v in two.items()},
      'jit': {k: float(v) for k, v in three.items()},
      # XLA compiles each replica's losses and gradients, traced once per replica.
      'jit_compiled': jitted._gradients._jit_compile is True,
      'jit_traces': int(jitted._gradients.experimental_get_tracing_count()),
      'jit_max_variable_difference': jit_diff,
      'jit_policy_action_shape': list(jit_action.shape),
      'updates': int(mirrored.updates.numpy()),
      'max_variable_difference': diff, 'replicas_equal': replicas_equal,
      'policy_action_shape': list(action.shape),
      'dataset': dataset_shapes(config, strategy)}))


if __name__ == '__main__':
  sys.exit(main())
