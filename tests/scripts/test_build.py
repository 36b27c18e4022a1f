"""Factories of dreamer.scripts.build that the end-to-end runs do not pin down."""

import numpy as np
import pytest
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.envs import registry
from dreamer.envs.spaces import Box
from dreamer.scripts import build


def test_gpu_prefetch_targets_the_first_accelerator_and_is_harmless_without_one():
  params = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy']}
  off = config_lib.build_config(params, registry.state_components_checked)
  assert build.prefetch_device(off) is None
  on = config_lib.build_config(dict(params, gpu_prefetch=True), registry.state_components_checked)
  gpus = tf.config.list_logical_devices('GPU')
  assert build.prefetch_device(on) == (gpus[0].name if gpus else None)


def _onehot_config(**params):
  params = dict({'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'],
                 'action_head_dist': 'onehot_score'}, **params)
  return config_lib.build_config(params, registry.state_components_checked)


def test_one_hot_head_on_a_box_that_holds_every_one_hot_vector_warns():
  lines = []
  obs = {'image': Box(0, 255, (64, 64, 3), np.uint8)}
  agent = build.agent(_onehot_config(), obs, Box(-1, 1, (5,)), log=lines.append)
  assert agent.action_size == 5
  assert len(lines) == 1 and lines[0].startswith('Warning: action_head_dist onehot_score on '
                                                 'dummy, whose actions are continuous')


@pytest.mark.parametrize('low, high', [(-1, 0.5), (0.1, 1), ([-1, 0], [1, 0.9])])
def test_one_hot_head_on_a_box_that_excludes_one_hot_vectors_fails(low, high):
  obs = {'image': Box(0, 255, (64, 64, 3), np.uint8)}
  with pytest.raises(build.BuildError, match='gives one-hot actions, which lie outside the '
                                             'action space'):
    build.agent(_onehot_config(), obs, Box(low, high, (2,)), log=print)


def test_continuous_head_on_one_hot_actions_fails():
  obs = {'image': Box(0, 255, (64, 64, 3), np.uint8)}
  config = _onehot_config(action_head_dist='tanh_normal_tanh')
  with pytest.raises(build.BuildError, match='does not fit the one-hot actions of dummy; '
                                             'use the discrete preset'):
    build.agent(config, obs, Box(0, 1, (4,), discrete=True))


@pytest.mark.parametrize('task, render_size, asked, expected', [
    ('cartpole_balance', 64, 'auto', 'process'), ('cartpole_balance', 64, 'none', 'process'),
    ('cartpole_balance', 64, 'thread', 'process'), ('cartpole_balance', 64, 'process', 'process'),
    # MuJoCo in the trainer's process aborts it at exit, rendered or not.
    ('cartpole_balance', 0, 'auto', 'process'), ('cartpole_balance', 0, 'none', 'process'),
    ('dummy', 64, 'auto', 'thread'), ('dummy', 64, 'none', 'none'),
    ('atari_pong', 64, 'process', 'process')])
def test_rendered_and_mujoco_tasks_always_run_in_a_spawned_process(task, render_size, asked, expected):
  config = config_lib.build_config({'tasks': [task], 'render_size': render_size,
                                    'isolate_envs': asked}, registry.state_components_checked)
  assert build.isolation(config, task) == expected


def test_no_rendering_is_for_deepmind_control_only():
  config = config_lib.build_config({'tasks': ['atari_pong'], 'render_size': 0},
                                   registry.state_components_checked)
  with pytest.raises(build.BuildError, match='render_size: 0 .* works only for DeepMind '
                                             'Control tasks, not atari_pong'):
    build.isolation(config, 'atari_pong')
