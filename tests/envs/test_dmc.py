"""DeepMind Control tasks, always built in spawned workers: rendering next to TensorFlow crashes."""

import functools

import numpy as np
import pytest

from dreamer.envs import parallel
from tests.envs import worker_envs


def _worker(name, **kwargs):
  return parallel.Subprocess(functools.partial(worker_envs.probe, name, **kwargs), name)


def _call(worker, method, *args):
  return worker.call(method, *args)()


@pytest.fixture(scope='module')
def cartpole():
  worker = _worker('cartpole_balance', render_size=64, seed=0)
  yield worker
  worker.close()


def test_cartpole_observations(cartpole):
  assert set(cartpole.obs_space) == {'image', 'position', 'velocity'}
  assert cartpole.act_space.shape == (1,)
  obs = _call(cartpole, 'reset')
  assert set(obs) == {'image', 'position', 'velocity'}
  assert obs['image'].dtype == np.uint8 and obs['image'].shape == (64, 64, 3)
  assert obs['image'].std() > 0
  assert obs['position'].shape == (3,) and obs['position'].dtype == np.float32
  assert obs['velocity'].shape == (2,) and obs['velocity'].dtype == np.float32
  np.testing.assert_array_equal(obs['image'], _call(cartpole, 'render_camera', 0, 64))


def test_cartpole_steps_change_frames(cartpole):
  previous = _call(cartpole, 'reset')['image']
  for _ in range(3):
    obs, reward, done, info = _call(cartpole, 'step', np.ones(1, np.float32))
    assert not np.array_equal(obs['image'], previous)
    previous = obs['image']
    assert isinstance(reward, np.float32) and 0 <= reward <= 2  # two frames of reward <= 1
    assert not done and info['discount'] == 1.0


def test_episode_is_500_agent_steps_ending_in_timeout():
  # Stepping without the pixel wrapper: 1000 renders would cost seconds and test nothing new.
  constructor = functools.partial(worker_envs.dmc_without_pixels, 'cartpole_balance', seed=0)
  worker = parallel.Subprocess(constructor, 'cartpole_balance')
  try:
    assert 'image' not in worker.obs_space
    steps, info = _call(worker, 'run_episode', np.zeros(1, np.float32))
  finally:
    worker.close()
  assert steps == 500
  assert info['done_reason'] == 'timeout' and info['discount'] == 1.0


def test_quadruped_uses_camera_2_and_normalized_actions():
  worker = _worker('quadruped_walk', render_size=32, seed=0)
  try:
    space = worker.act_space
    assert space.shape == (12,)
    np.testing.assert_array_equal(space.low, -1)
    np.testing.assert_array_equal(space.high, 1)
    assert worker.obs_space['torso_upright'].shape == (1,)  # a scalar in dm_control
    obs = _call(worker, 'reset')
    assert obs['image'].shape == (32, 32, 3)
    np.testing.assert_array_equal(obs['image'], _call(worker, 'render_camera', 2, 32))
    assert not np.array_equal(obs['image'], _call(worker, 'render_camera', 0, 32))
    _call(worker, 'step', np.ones(12, np.float32))  # the raw bounds are tighter than 1
  finally:
    worker.close()


def test_seeded_workers_give_identical_trajectories():
  constructor = functools.partial(worker_envs.probe, 'cartpole_swingup', render_size=16, seed=3)
  envs = parallel.BatchEnv([constructor, constructor], ['cartpole_swingup'] * 2, 'process')
  try:
    first, second = envs.reset()
    for key in first:
      np.testing.assert_array_equal(first[key], second[key])
    rng = np.random.default_rng(0)
    for _ in range(10):
      action = rng.uniform(-1, 1, (1,)).astype(np.float32)
      (first, second), rewards, _, _ = envs.step([action, action])
      assert rewards[0] == rewards[1]
      for key in ('position', 'velocity', 'image'):
        np.testing.assert_array_equal(first[key], second[key])
  finally:
    envs.close()
