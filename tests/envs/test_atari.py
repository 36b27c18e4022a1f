"""Atari through ale_py: spaces, sticky actions, no-op starts, life loss in training only."""

import numpy as np
import pytest

from dreamer.envs import registry


def _run_until(env, predicate, rng, limit=2000):
  """Steps with random (continuous) actions until predicate(done, info) or `limit` steps."""
  for _ in range(limit):
    _, _, done, info = env.step(env.act_space.sample(rng))
    if predicate(done, info):
      return done, info
  pytest.fail(f'condition not reached within {limit} steps')


def test_pong_spaces_and_steps():
  env = registry.make_env('atari_pong', render_size=64, seed=0)
  try:
    assert env.act_space.discrete and env.act_space.shape == (6,)
    assert env.num_actions == 6
    assert env.obs_space['image'].shape == (64, 64, 3)
    obs = env.reset()
    assert obs['image'].dtype == np.uint8 and obs['image'].shape == (64, 64, 3)
    assert obs['image'].std() > 0
    obs, reward, done, info = env.step(np.eye(6, dtype=np.float32)[2])
    assert obs['image'].shape == (64, 64, 3) and isinstance(reward, np.float32)
    assert not done and info == {}
  finally:
    env.close()


def test_grayscale_has_one_channel():
  env = registry.make_env('atari_pong', render_size=64, atari_grayscale=True, seed=0)
  try:
    assert env.obs_space['image'].shape == (64, 64, 1)
    assert env.reset()['image'].shape == (64, 64, 1)
    assert env.step(np.eye(6)[0])[0]['image'].shape == (64, 64, 1)
  finally:
    env.close()


@pytest.mark.parametrize('sticky, probability', [(True, 0.25), (False, 0.0)])
def test_sticky_actions(sticky, probability):
  env = registry.make_env('atari_pong', render_size=16, atari_sticky=sticky)
  try:
    assert env.ale.getFloat('repeat_action_probability') == probability
  finally:
    env.close()


def test_noops_on_reset_are_in_range():
  # frameskip is 1, so the frame count after a reset is the number of no-ops played.
  env = registry.make_env('atari_breakout', render_size=16, atari_noops=5, seed=0)
  try:
    counts = []
    for _ in range(30):
      env.reset()
      counts.append(env.ale.getEpisodeFrameNumber())
    assert set(counts) <= {1, 2, 3, 4} and len(set(counts)) > 1
    env.step(np.eye(4)[0])
    assert env.ale.getEpisodeFrameNumber() == counts[-1] + 4  # action repeat 4
  finally:
    env.close()


def test_life_loss_ends_train_episodes_only():
  rng = np.random.default_rng(0)
  train = registry.make_env('atari_breakout', mode='train', render_size=16, seed=0)
  try:
    train.reset()
    lives = train.ale.lives()
    _, info = _run_until(train, lambda done, info: done, rng)
    assert train.ale.lives() == lives - 1 > 0  # a life lost, not the game
    assert 'done_reason' not in info  # a termination
  finally:
    train.close()
  test = registry.make_env('atari_breakout', mode='test', render_size=16, seed=0)
  try:
    test.reset()
    lives = test.ale.lives()
    done, _ = _run_until(test, lambda done, info: test.ale.lives() < lives or done, rng)
    assert not done and test.ale.lives() == lives - 1
  finally:
    test.close()


def test_train_max_length_is_a_timeout_in_train_mode_only():
  for mode, expected in [('train', True), ('test', False)]:
    env = registry.make_env('atari_pong', mode=mode, render_size=16, seed=0,
                            atari_train_max_length=3)
    try:
      env.reset()
      results = [env.step(np.eye(6)[0]) for _ in range(3)]
      assert [r[2] for r in results] == [False, False, expected]
      assert results[-1][3].get('done_reason') == ('timeout' if expected else None)
    finally:
      env.close()


def test_seeded_envs_repeat_their_trajectory():
  frames = []
  for _ in range(2):
    env = registry.make_env('atari_pong', render_size=16, seed=5)
    try:
      rng = np.random.default_rng(0)
      images = [env.reset()['image']]
      images += [env.step(env.act_space.sample(rng))[0]['image'] for _ in range(50)]
      frames.append(np.stack(images))
    finally:
      env.close()
  np.testing.assert_array_equal(frames[0], frames[1])
