"""Gymnasium tasks: HalfCheetah (MuJoCo-rendered, so in a spawned worker) and CarRacing."""

import functools
import importlib.util

import numpy as np
import pytest

from dreamer.envs import parallel
from dreamer.envs import registry
from tests.envs import worker_envs


def test_cheetah_state_and_image(tmp_path, monkeypatch):
  # MuJoCo writes a deprecation warning about HalfCheetah's model to MUJOCO_LOG.TXT in the
  # working directory, which the spawned worker inherits.
  monkeypatch.chdir(tmp_path)
  constructor = functools.partial(worker_envs.probe, 'gym_cheetah', render_size=64, seed=0)
  worker = parallel.Subprocess(constructor, 'gym_cheetah')
  try:
    assert set(worker.obs_space) == {'state', 'image'}
    space = worker.act_space
    assert space.shape == (6,) and space.low.min() == -1 and space.high.max() == 1
    obs = worker.call('reset')()
    assert obs['state'].shape == (17,) and obs['state'].dtype == np.float32
    assert obs['image'].shape == (64, 64, 3) and obs['image'].dtype == np.uint8
    assert obs['image'].std() > 0
    obs, reward, done, info = worker.call('step', np.ones(6, np.float32))()
    assert obs['state'].shape == (17,) and isinstance(reward, np.float32)
    assert not done and info == {}
  finally:
    worker.close()


@pytest.mark.skipif(importlib.util.find_spec('Box2D') is None, reason='box2d is not installed')
def test_racecar_image_only():
  env = registry.make_env('gym_racecar', render_size=32, seed=0)
  try:
    assert set(env.obs_space) == {'image'} and env.act_space.shape == (3,)
    assert env.reset()['image'].shape == (32, 32, 3)
    obs, _, done, _ = env.step(np.zeros(3, np.float32))
    assert obs['image'].shape == (32, 32, 3) and obs['image'].dtype == np.uint8 and not done
  finally:
    env.close()


@pytest.mark.skipif(importlib.util.find_spec('Box2D') is not None, reason='box2d is installed')
def test_racecar_without_box2d_names_the_fix():
  with pytest.raises(ImportError) as error:
    registry.make_env('gym_racecar')
  message = str(error.value)
  assert '\n' not in message
  assert 'gym_racecar' in message and 'pip install box2d' in message
