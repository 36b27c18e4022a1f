"""Isolation modes: same trajectories, errors that name the task, dead workers, clean workers."""

import functools
import os
import signal

import numpy as np
import pytest

from dreamer.envs import parallel
from dreamer.envs import registry
from dreamer.envs import spaces as spaces_lib
from dreamer.envs import wrappers
from tests.envs import worker_envs

ISOLATIONS = ['none', 'thread', 'process']


def _rollout(isolation, seeds, steps=4):
  constructors = [functools.partial(registry.make_env, 'dummy', render_size=8, seed=s)
                  for s in seeds]
  envs = parallel.BatchEnv(constructors, ['dummy'] * len(seeds), isolation)
  try:
    frames = [np.stack([o['image'] for o in envs.reset()])]
    rewards = []
    for t in range(steps):
      actions = [np.full(5, (t + i) / 10, np.float32) for i in range(len(envs))]
      obs, reward, done, _ = envs.step(actions)
      frames.append(np.stack([o['image'] for o in obs]))
      rewards.append(reward)
      assert not any(done)
    return np.stack(frames), np.array(rewards)
  finally:
    envs.close()


def test_isolation_modes_give_identical_trajectories():
  results = {isolation: _rollout(isolation, seeds=[0, 1]) for isolation in ISOLATIONS}
  frames, rewards = results['none']
  assert not np.array_equal(frames[:, 0], frames[:, 1])  # the two seeds differ
  for isolation in ('thread', 'process'):
    np.testing.assert_array_equal(results[isolation][0], frames)
    np.testing.assert_array_equal(results[isolation][1], rewards)


@pytest.mark.parametrize('isolation', ISOLATIONS)
@pytest.mark.parametrize('where', ['construct', 'reset', 'step'])
def test_crash_raises_env_error_naming_task(isolation, where):
  constructor = functools.partial(worker_envs.Crashing, where)
  with pytest.raises(parallel.EnvError) as error:
    envs = parallel.BatchEnv([constructor], ['crashy_task'], isolation)
    try:
      envs.reset()
      envs.step([np.zeros(1, np.float32)])
    finally:
      envs.close()
  message = str(error.value)
  assert "'crashy_task'" in message
  assert f"ValueError: boom {'while constructing' if where == 'construct' else 'in ' + where}" \
      in message


def test_action_outside_space_is_rejected():
  envs = parallel.BatchEnv([functools.partial(registry.make_env, 'dummy', render_size=8)],
                           ['dummy'], 'none')
  envs.reset()
  with pytest.raises(parallel.EnvError, match='outside the action space'):
    envs.step([np.full(5, 2.0, np.float32)])


@pytest.mark.timeout(60)
def test_killed_worker_raises_instead_of_hanging():
  # The worker's answer timeout is 600 s: raising within the test's 60 s means the dead
  # process was noticed, not waited out.
  constructor = functools.partial(worker_envs.probe, 'dummy', render_size=8)
  envs = parallel.BatchEnv([constructor], ['dummy'], 'process')
  try:
    envs.reset()
    pid = envs.workers[0].call('pid')()
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(parallel.EnvError, match="worker for 'dummy' died"):
      envs.step([np.zeros(5, np.float32)])
  finally:
    envs.close()


def test_spawned_worker_has_no_tensorflow():
  # A DMC task pulls in the heaviest import chain of any env (dm_control, mujoco, OpenGL).
  constructor = functools.partial(worker_envs.dmc_without_pixels, 'cartpole_balance')
  worker = parallel.Subprocess(constructor, 'cartpole_balance')
  try:
    assert worker.call('loaded', 'dm_control')()
    assert not worker.call('loaded', 'tensorflow')()
  finally:
    worker.close()


def test_padded_batch_takes_union_actions_and_passes_each_env_its_part():
  toy = parallel.BatchEnv([functools.partial(registry.make_env, 'toy_reach', render_size=16)],
                          ['toy_reach'], 'none')
  dummy = parallel.BatchEnv([functools.partial(registry.make_env, 'dummy', render_size=16)],
                            ['dummy'], 'none')
  try:
    spaces = [toy.act_space, dummy.act_space]
    toy.pad_actions(spaces)
    dummy.pad_actions(spaces)
    assert toy.act_space.shape == dummy.act_space.shape == (5,)
    toy.reset()
    obs, _, _, _ = toy.step([np.array([1, -1, -1, -1, -1], np.float32)])
    np.testing.assert_allclose(obs[0]['position'][0], 0.25)  # Only the first dim moved it.
    dummy.reset()
    dummy.step([np.zeros(5, np.float32)])
  finally:
    toy.close()
    dummy.close()


def test_padded_one_hot_wraps_indices_beyond_the_env():
  small = spaces_lib.Box(0, 1, (3,), np.float32, discrete=True)
  action = np.eye(5, dtype=np.float32)[4]
  np.testing.assert_array_equal(wrappers.unpad_action(action, small), [0, 1, 0])
  np.testing.assert_array_equal(wrappers.unpad_action(np.eye(5)[2], small), [0, 0, 1])
