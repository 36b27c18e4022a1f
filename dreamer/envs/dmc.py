"""DeepMind Control Suite tasks (SPEC 7.4): suite env -> action repeat -> normalize -> pixels."""

import os

import numpy as np

from dreamer.envs import wrappers
from dreamer.envs.spaces import Box

# Headless machines have no X display for GLFW; EGL renders off-screen. Must be set before
# dm_control is first imported, which picks its backend at import time.
os.environ.setdefault('MUJOCO_GL', 'egl')


class DeepMindControl:
  """A dm_control suite env with dict observations and gym-style steps; no pixels."""

  def __init__(self, domain, task, seed=None):
    from dm_control import suite
    self._env = suite.load(domain, task, task_kwargs={'random': seed})

  @property
  def physics(self):
    return self._env.physics

  @property
  def obs_space(self):
    return {key: Box(-np.inf, np.inf, _shape(spec.shape), np.float32)
            for key, spec in self._env.observation_spec().items()}

  @property
  def act_space(self):
    spec = self._env.action_spec()
    return Box(spec.minimum, spec.maximum, spec.shape, np.float32)

  def reset(self):
    return self._obs(self._env.reset())

  def step(self, action):
    time_step = self._env.step(np.asarray(action, np.float64))
    done = time_step.last()
    discount = 1.0 if time_step.discount is None else float(time_step.discount)
    info = {'discount': np.float32(discount)}
    # Suite episodes end at the time limit with discount 1; a zero discount would be a
    # real termination, which no task of SPEC 7.4 produces.
    if done and discount > 0:
      info['done_reason'] = 'timeout'
    return self._obs(time_step), float(time_step.reward or 0.0), done, info

  def close(self):
    self._env.close()

  def _obs(self, time_step):
    return {key: np.asarray(value, np.float32).reshape(_shape(np.shape(value)))
            for key, value in time_step.observation.items()}


def _shape(shape):
  # Scalars such as quadruped's torso_upright become vectors, so every key stacks to [T, n].
  return tuple(shape) if len(shape) else (1,)


class PixelObservations(wrappers.Wrapper):
  """Adds key 'image': the physics rendered at size x size from `camera` (uint8)."""

  def __init__(self, env, size, camera):
    super().__init__(env)
    self._size = int(size)
    self._camera = int(camera)

  @property
  def obs_space(self):
    return dict(self.env.obs_space, image=Box(0, 255, (self._size, self._size, 3), np.uint8))

  def reset(self):
    return self._add_image(self.env.reset())

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return self._add_image(obs), reward, done, info

  def _add_image(self, obs):
    image = self.env.physics.render(self._size, self._size, camera_id=self._camera)
    return dict(obs, image=np.asarray(image, np.uint8))


def make(task, mode, action_repeat, render_size, seed, camera_id, normalize_actions,
         domain, suite_task, camera, normalize, pixels=True, **_unused):
  """Builds the env before the common wrappers; `pixels=False` or `render_size` 0 skips
  rendering: the observations are then the task's state vectors only.

  `camera` and `normalize` are the task's defaults (quadruped: 2 and True); the
  `camera_id` and `normalize_actions` parameters override them when not None. `mode` and
  the other families' options in `_unused` do not affect DMC.
  """
  del task, mode
  env = DeepMindControl(domain, suite_task, seed=seed)
  env = wrappers.ActionRepeat(env, action_repeat)
  if normalize_actions is None:
    normalize_actions = normalize
  if camera_id is None:
    camera_id = camera
  if normalize_actions:
    env = wrappers.NormalizeActions(env)
  if pixels and render_size:
    env = PixelObservations(env, render_size, camera_id)
  return env
