"""toy_reach: the target side is visible and random, so blind policies score low."""

import numpy as np

from dreamer.envs import toy


def run(policy, episodes=200):
  env = toy.ReachDot(seed=0)
  returns = []
  for _ in range(episodes):
    obs = env.reset()
    total, done = 0.0, False
    while not done:
      obs, reward, done, _ = env.step(policy(obs))
      total += reward
    returns.append(total)
  return float(np.mean(returns))


def test_blind_policies_score_clearly_below_one_that_reads_the_image():
  rng = np.random.default_rng(0)
  random = run(lambda obs: rng.uniform(-1, 1, 1))
  always_right = run(lambda obs: np.ones(1))

  def seeing(obs):  # Finds the green target column in the image.
    goal = np.argmax(obs['image'][0, :, 1]) / obs['image'].shape[1]
    dot = np.argmax(obs['image'][32, :, 0]) / obs['image'].shape[1]
    return np.sign([goal - dot])

  optimal = run(seeing)
  assert random < 13 and always_right < 12.5
  assert optimal > 18.5


def test_frames_show_the_dot_moving():
  env = toy.ReachDot(seed=1)
  first = env.reset()['image']
  second = env.step(np.ones(1))[0]['image']
  assert first.dtype == np.uint8 and first.shape == (64, 64, 3)
  assert not np.array_equal(first[..., 0], second[..., 0])
  np.testing.assert_array_equal(first[..., 1], second[..., 1])


def test_reach_right_random_play_scores_low_and_moving_right_high():
  env = toy.ReachDot(start=-1.0, goals=(1.0,), seed=0)
  rng = np.random.default_rng(0)

  def episode(policy):
    env.reset()
    total, done = 0.0, False
    while not done:
      _, reward, done, _ = env.step(policy())
      total += reward
    return total

  random = np.mean([episode(lambda: rng.uniform(-1, 1, 1)) for _ in range(100)])
  assert random < 4.0
  assert episode(lambda: np.ones(1)) == 16.5
