"""Factories of dreamer.scripts.build that the end-to-end runs do not pin down."""

import tensorflow as tf

from dreamer import config as config_lib
from dreamer.envs import registry
from dreamer.scripts import build


def test_gpu_prefetch_targets_the_first_accelerator_and_is_harmless_without_one():
  params = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy']}
  off = config_lib.build_config(params, registry.state_components_checked)
  assert build.prefetch_device(off) is None
  on = config_lib.build_config(dict(params, gpu_prefetch=True), registry.state_components_checked)
  gpus = tf.config.list_logical_devices('GPU')
  assert build.prefetch_device(on) == (gpus[0].name if gpus else None)
