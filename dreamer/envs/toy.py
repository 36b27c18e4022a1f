"""Tiny pixel tasks for learning tests: move a dot to a target drawn in the image.

`toy_reach`: the dot starts in the middle and the target is left or right at random, so
no fixed action sequence scores well and the agent must read the image.
`toy_reach_right`: the dot starts at the left edge and the target is the right edge; the
reward depends on where the dot is, not on the action, so only a policy trained through
the model's dynamics improves on random play. Reward 1 - |x - goal| / 2 per step, 20 steps.
"""

import numpy as np

from dreamer.envs.spaces import Box


class ReachDot:
  """1-D reaching from pixels.

  With the defaults (random side) a random policy returns about 12 and a good one about 19;
  with `start=-1, goals=(1,)` random play returns about 2 and a good policy about 16.5.
  """

  def __init__(self, size=64, length=20, speed=0.25, start=0.0, goals=(-0.75, 0.75), seed=0):
    self._size = size
    self._start = float(start)
    self._goals = tuple(float(goal) for goal in goals)
    self._length = length
    self._speed = speed
    self._rng = np.random.default_rng(seed)
    self._x = self._goal = 0.0
    self._step = 0

  @property
  def obs_space(self):
    return {'image': Box(0, 255, (self._size, self._size, 3), np.uint8),
            'position': Box(-1, 1, (2,), np.float32)}

  @property
  def act_space(self):
    return Box(-1, 1, (1,), np.float32)

  def reset(self):
    self._x = self._start
    self._goal = float(self._rng.choice(self._goals))
    self._step = 0
    return self._obs()

  def step(self, action):
    move = float(np.clip(np.asarray(action).reshape(-1)[0], -1, 1))
    self._x = float(np.clip(self._x + self._speed * move, -1, 1))
    self._step += 1
    reward = 1.0 - abs(self._x - self._goal) / 2
    done = self._step >= self._length
    return self._obs(), reward, done, ({'done_reason': 'timeout'} if done else {})

  def close(self):
    pass

  def _column(self, value, width):
    return int(round((value + 1) / 2 * (self._size - width)))

  def _obs(self):
    # Large sprites: the image likelihood must notice them early in training.
    size = self._size
    image = np.zeros((size, size, 3), np.uint8)
    goal = self._column(self._goal, size // 4)
    image[:, goal:goal + size // 4, 1] = 255
    dot = self._column(self._x, size // 4)
    image[size // 4:3 * size // 4, dot:dot + size // 4, 0] = 255
    position = np.array([self._x, self._goal], np.float32)
    return {'image': image, 'position': position}


def make(task, mode, action_repeat, render_size, seed, start=0.0, goals=(-0.75, 0.75),
         **unused):
  from dreamer.envs import wrappers
  env = ReachDot(size=render_size, start=start, goals=goals, seed=0 if seed is None else seed)
  return wrappers.ActionRepeat(env, action_repeat)
