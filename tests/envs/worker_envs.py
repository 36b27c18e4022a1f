"""Picklable environment constructors for the spawned workers of the env tests."""

import os
import sys

from dreamer.envs import registry
from dreamer.envs import wrappers
from dreamer.envs.spaces import Box


class Probe(wrappers.Wrapper):
  """An env plus methods that look inside the process it lives in."""

  def pid(self):
    return os.getpid()

  def loaded(self, module):
    return module in sys.modules

  def render_camera(self, camera_id, size):
    return self.env.physics.render(size, size, camera_id=camera_id)

  def run_episode(self, action):
    """Steps until done in the worker (one round trip); returns the step count and last info."""
    self.env.reset()
    steps, done = 0, False
    while not done:
      _, _, done, info = self.env.step(action)
      steps += 1
    return steps, info


def probe(name, **kwargs):
  return Probe(registry.make_env(name, **kwargs))


def dmc_without_pixels(name, seed=None):
  """The DMC stack without its pixel wrapper: episode logic at physics speed."""
  from dreamer.envs import dmc
  task = registry.get_task(name)
  return Probe(dmc.make(
      task=task, mode='train', action_repeat=task.action_repeat, render_size=64, seed=seed,
      camera_id=None, normalize_actions=None, pixels=False, **task.kwargs))


class Crashing:
  """Raises in the constructor or in a method, depending on `where`."""

  obs_space = {}
  act_space = Box(-1, 1, (1,))

  def __init__(self, where):
    if where == 'construct':
      raise ValueError('boom while constructing')
    self._where = where

  def reset(self):
    if self._where == 'reset':
      raise ValueError('boom in reset')
    return {}

  def step(self, action):
    raise ValueError('boom in step')

  def close(self):
    pass


class DiesAfter(wrappers.Wrapper):
  """Ends its own process without a word after `steps` steps, as a segfault or the kernel's
  out-of-memory killer would."""

  def __init__(self, env, steps):
    super().__init__(env)
    self._left = steps

  def step(self, action):
    self._left -= 1
    if self._left < 0:
      os._exit(3)
    return self.env.step(action)


def dying(constructor, steps):
  return DiesAfter(constructor(), steps)
