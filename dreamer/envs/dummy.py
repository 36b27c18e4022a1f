"""The original's dummy task: random images, 5-dim actions, uniform reward, 1000 raw steps."""

import numpy as np

from dreamer.envs.spaces import Box


class DummyEnv:
  """Random 64x64x3 uint8 frames; reward uniform in [0, 1) from a fixed-seed generator."""

  def __init__(self, size=64, length=1000, seed=0):
    self._size = size
    self._length = length
    self._rng = np.random.default_rng(seed)
    self._step = 0

  @property
  def obs_space(self):
    return {'image': Box(0, 255, (self._size, self._size, 3), np.uint8)}

  @property
  def act_space(self):
    return Box(-1, 1, (5,), np.float32)

  @property
  def num_actions(self):
    """For the one-hot variant (dummy_discrete, through wrappers.OneHotAction)."""
    return 5

  def reset(self):
    self._step = 0
    return self._obs()

  def step(self, action):
    self._step += 1
    reward = float(self._rng.uniform(0, 1))
    done = self._step >= self._length
    info = {'done_reason': 'timeout'} if done else {}
    return self._obs(), reward, done, info

  def close(self):
    pass

  def _obs(self):
    return {'image': self._rng.integers(0, 256, (self._size, self._size, 3), dtype=np.uint8)}
