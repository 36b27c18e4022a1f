"""A stand-in for the `deepmind_lab` module with the real one's call signatures and checks."""

import numpy as np

# The real module's action_spec(): look (pixels per frame), strafe, move, fire, jump, crouch.
_ACTION_SPEC = [
    {'name': 'LOOK_LEFT_RIGHT_PIXELS_PER_FRAME', 'min': -1024, 'max': 1024},
    {'name': 'LOOK_DOWN_UP_PIXELS_PER_FRAME', 'min': -1024, 'max': 1024},
    {'name': 'STRAFE_LEFT_RIGHT', 'min': -1, 'max': 1},
    {'name': 'MOVE_BACK_FORWARD', 'min': -1, 'max': 1},
    {'name': 'FIRE', 'min': 0, 'max': 1},
    {'name': 'JUMP', 'min': 0, 'max': 1},
    {'name': 'CROUCH', 'min': 0, 'max': 1},
]

# What the code under test did, for assertions; tests reset it.
calls = {'runfiles_path': None, 'labs': []}
EPISODE_FRAMES = 40


def set_runfiles_path(path):
  calls['runfiles_path'] = path


class Lab:
  """Episodes of EPISODE_FRAMES frames; reward 1 per frame of moving forward."""

  def __init__(self, level, observations, config=None, renderer='software', level_cache=None):
    if not isinstance(level, str) or not all(isinstance(v, str) for v in config.values()):
      raise TypeError('level and config values must be strings')
    if observations != ['RGB_INTERLEAVED'] or renderer not in ('software', 'hardware'):
      raise ValueError(f'unsupported observations {observations} or renderer {renderer}')
    self.level, self.config = level, dict(config)
    self._width, self._height = int(config['width']), int(config['height'])
    self._frame = None
    self.seeds, self.steps = [], []
    calls['labs'].append(self)

  def action_spec(self):
    return [dict(spec) for spec in _ACTION_SPEC]

  def reset(self, episode=-1, seed=None):
    if seed is not None and not 0 <= seed < 2 ** 31:
      raise ValueError(f'seed {seed} is outside the 31-bit range')
    self.seeds.append(seed)
    self._frame = 0
    return True

  def is_running(self):
    return self._frame is not None and self._frame < EPISODE_FRAMES

  def step(self, action, num_steps=1):
    if not isinstance(action, np.ndarray) or action.dtype != np.intc or action.shape != (7,):
      raise ValueError('action must be an np.intc array of shape (7,)')
    for value, spec in zip(action, _ACTION_SPEC):
      if not spec['min'] <= value <= spec['max']:
        raise ValueError(f"{spec['name']} = {value} is outside its range")
    if not self.is_running():
      raise RuntimeError('step called on a finished episode')
    self.steps.append((action.copy(), num_steps))
    frames = min(num_steps, EPISODE_FRAMES - self._frame)
    self._frame += frames
    return float(frames * max(action[3], 0))

  def observations(self):
    if not self.is_running():
      raise RuntimeError('no observations once the episode has ended')
    image = np.full((self._height, self._width, 3), 10 + self._frame, np.uint8)
    return {'RGB_INTERLEAVED': image}

  def close(self):
    self._frame = None
