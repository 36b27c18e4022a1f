"""Runs in its own process (the CPU must be split before TensorFlow starts): one update
on two logical CPUs under MirroredStrategy, with and without `jit`, next to the same
update on one device.

Prints one JSON object with the updates' metrics, the largest difference of the updated
variables, and the shapes of a distributed input batch. fixed_update switches the train
step's randomness off, so that splitting the batch cannot change any number.

Adam's epsilon is 1 here, not the default 1e-7. Adam's first step moves a weight by
lr * g / (|g| + epsilon): where a gradient is near zero, a tiny epsilon multiplies the
float32 rounding of the two updates' different summation orders by up to lr / epsilon. In a
probe of 250 updates from randomly rescaled weights, 3 moved a weight of the image decoder
by 2e-5 more on one device than on two (the suite failed once so, 3.6e-5, on an AVX2
machine). With epsilon 1 the step is about lr * g, and the largest difference over the same
250 was 1.5e-8 (one float32 step of the weights). The initial weights are seeded, so that a
failure repeats.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from dreamer import config as config_lib  # noqa: E402
from dreamer.agents import distribute  # noqa: E402
from dreamer.data import episodes  # noqa: E402
from dreamer.envs import registry  # noqa: E402
from dreamer.scripts import build  # noqa: E402
from tests.agents.fixed_update import ACT, OBS, PARAMS, T, make_batch  # noqa: E402


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


LINEAR = dict(PARAMS, optimizer_epsilon=1.0)


def main():
  tf.random.set_seed(0)
  config = config_lib.build_config(LINEAR, registry.state_components_checked)
  single = build.agent(config, OBS, ACT)
  strategy = distribute.make_strategy('mirrored', ['/cpu:0', '/cpu:1'])
  mirrored = build.agent(config, OBS, ACT, strategy)
  jitted = build.agent(config_lib.build_config(dict(LINEAR, jit=True)), OBS, ACT, strategy)
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
