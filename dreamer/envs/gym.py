"""Gymnasium tasks (SPEC 7.7): HalfCheetah with state and rendered image, CarRacing from pixels."""

import os

import numpy as np

from dreamer.envs import wrappers
from dreamer.envs.spaces import Box

# MuJoCo tasks render off-screen; headless machines have no display for GLFW. Must be set
# before gymnasium's MuJoCo renderer is imported.
os.environ.setdefault('MUJOCO_GL', 'egl')


class Gymnasium:
  """Adapts a gymnasium env: plain observations, done = terminated or truncated."""

  def __init__(self, env_id, seed=None, **kwargs):
    import gymnasium
    self._env = gymnasium.make(env_id, **kwargs)
    self._seed = seed

  @property
  def obs_space(self):
    space = self._env.observation_space
    return Box(space.low, space.high, space.shape, _dtype(space.dtype))

  @property
  def act_space(self):
    space = self._env.action_space
    return Box(space.low, space.high, space.shape, np.float32)

  def reset(self):
    # Seed once: later resets continue the env's generator instead of replaying an episode.
    obs, _ = self._env.reset(seed=self._seed)
    self._seed = None
    return self._cast(obs)

  def step(self, action):
    obs, reward, terminated, truncated, _ = self._env.step(np.asarray(action))
    info = {'done_reason': 'timeout'} if truncated and not terminated else {}
    return self._cast(obs), float(reward), bool(terminated or truncated), info

  def render(self):
    return self._env.render()

  def close(self):
    self._env.close()

  def _cast(self, obs):
    obs = np.asarray(obs)
    return obs.astype(_dtype(obs.dtype))


def _dtype(dtype):
  return np.float32 if np.dtype(dtype) == np.float64 else dtype


def _resize(image, size):
  image = np.asarray(image)
  if image.shape[:2] != (size, size):
    import cv2
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
  return np.clip(image, 0, 255).astype(np.uint8)


class PixelObservations(wrappers.Wrapper):
  """Adds key 'image': the env's rgb_array render at size x size, as uint8."""

  def __init__(self, env, size):
    super().__init__(env)
    self._size = int(size)

  @property
  def obs_space(self):
    return dict(self.env.obs_space, image=Box(0, 255, (self._size, self._size, 3), np.uint8))

  def reset(self):
    return dict(self.env.reset(), image=_resize(self.env.render(), self._size))

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return dict(obs, image=_resize(self.env.render(), self._size)), reward, done, info


class ResizeImage(wrappers.Wrapper):
  """Resizes the 'image' observation to size x size (CarRacing observes 96 x 96 pixels)."""

  def __init__(self, env, size):
    super().__init__(env)
    self._size = int(size)

  @property
  def obs_space(self):
    channels = self.env.obs_space['image'].shape[-1]
    shape = (self._size, self._size, channels)
    return dict(self.env.obs_space, image=Box(0, 255, shape, np.uint8))

  def reset(self):
    obs = self.env.reset()
    return dict(obs, image=_resize(obs['image'], self._size))

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return dict(obs, image=_resize(obs['image'], self._size)), reward, done, info


def _require_box2d(name):
  try:
    import Box2D  # noqa: F401
    import pygame  # noqa: F401
  except ImportError as e:
    raise ImportError(
        f"{name} needs box2d and pygame, which are not part of the pinned stack in "
        f"requirements.txt: 'pip install box2d pygame' ({e})") from None


def make(task, mode, action_repeat, render_size, seed, env_id, obs_key, **_unused):
  """Builds the env before the common wrappers.

  With `obs_key` the env's vector observation is kept under that key and the image is
  rendered; without it the observation itself is the image (CarRacing's state pixels).
  """
  del mode
  if obs_key:
    env = Gymnasium(env_id, seed, render_mode='rgb_array', width=render_size,
                    height=render_size)
  else:
    _require_box2d(task.name)
    env = Gymnasium(env_id, seed)
  env = wrappers.ActionRepeat(env, action_repeat)
  env = wrappers.NormalizeActions(env)
  if obs_key:
    env = wrappers.ObservationDict(env, obs_key)
    env = PixelObservations(env, render_size)
  else:
    env = wrappers.ObservationDict(env, 'image')
    env = ResizeImage(env, render_size)
  return env
