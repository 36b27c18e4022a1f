"""DeepMind Lab levels (SPEC 7.6): nine discrete actions, the lab repeats each one itself."""

import os

import numpy as np

from dreamer.envs import wrappers
from dreamer.envs.spaces import Box

# Lab controls: look left/right (pixels per frame), look down/up, strafe left/right,
# move back/forward, fire, jump, crouch.
ACTIONS = (
    (0, 0, 0, 1, 0, 0, 0),    # Forward
    (0, 0, 0, -1, 0, 0, 0),   # Backward
    (0, 0, -1, 0, 0, 0, 0),   # Strafe left
    (0, 0, 1, 0, 0, 0, 0),    # Strafe right
    (-20, 0, 0, 0, 0, 0, 0),  # Look left
    (20, 0, 0, 0, 0, 0, 0),   # Look right
    (-20, 0, 0, 1, 0, 0, 0),  # Look left + forward
    (20, 0, 0, 1, 0, 0, 0),   # Look right + forward
    (0, 0, 0, 0, 1, 0, 0),    # Fire
)


def _import_lab():
  try:
    import deepmind_lab
  except ImportError:
    raise ImportError(
        'DeepMind Lab (python module deepmind_lab) is not installed and has no PyPI '
        'package: build the wheel from https://github.com/google-deepmind/lab '
        '(bazel build -c opt //python/pip_package:build_pip_package) and pip install '
        'the deepmind_lab-*.whl it writes') from None
  return deepmind_lab


class DeepMindLab:
  """One DMLab-30 level with discrete actions (`num_actions`, step takes an int)."""

  def __init__(self, level, action_repeat=4, size=64, seed=None, runfiles_path=None):
    lab = _import_lab()
    if runfiles_path:
      lab.set_runfiles_path(runfiles_path)
    # Always the training settings: the original never used the hold-out test levels.
    config = {'width': str(size), 'height': str(size), 'logLevel': 'WARN'}
    # The software renderer needs no display or GPU; it is OpenGL in this process, so
    # DMLab tasks count as rendered and run isolated from TensorFlow.
    self._env = lab.Lab(f'contributed/dmlab30/{level}', ['RGB_INTERLEAVED'], config=config,
                        renderer='software')
    self._repeat = int(action_repeat)
    self._size = int(size)
    self._rng = np.random.default_rng(seed)
    self._actions = np.array(ACTIONS, np.intc)
    self.num_actions = len(ACTIONS)

  @property
  def obs_space(self):
    return {'image': Box(0, 255, (self._size, self._size, 3), np.uint8)}

  @property
  def act_space(self):
    return Box(0, self.num_actions - 1, (), np.int32)

  def reset(self):
    self._env.reset(seed=int(self._rng.integers(0, 2 ** 31 - 1)))
    return self._obs(done=False)

  def step(self, action):
    reward = self._env.step(self._actions[int(action)], num_steps=self._repeat)
    # The lab has no observations once it stops; the episode ends as a termination.
    done = not self._env.is_running()
    return self._obs(done), float(reward), done, {}

  def close(self):
    self._env.close()

  def _obs(self, done):
    if done:
      return {'image': np.zeros((self._size, self._size, 3), np.uint8)}
    image = self._env.observations()['RGB_INTERLEAVED']
    return {'image': np.asarray(image, np.uint8)}


def make(task, mode, action_repeat, render_size, seed, level, dmlab_runfiles_path,
         **_unused):
  """Builds the env before the common wrappers; the runfiles path is relative to
  $BORG_ALLOC_DIR when that variable is set."""
  del task, mode
  path = dmlab_runfiles_path
  if path and os.environ.get('BORG_ALLOC_DIR'):
    path = os.path.join(os.environ['BORG_ALLOC_DIR'], path)
  env = DeepMindLab(level, action_repeat, render_size, seed=seed, runfiles_path=path)
  return wrappers.OneHotAction(env, strict=False)
