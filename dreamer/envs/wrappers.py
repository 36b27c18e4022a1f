"""Environment wrappers in plain Python and numpy (SPEC 7.2)."""

import numpy as np

from dreamer.envs.spaces import Box


class Wrapper:
  """Forwards everything to the wrapped env; subclasses override what they change."""

  def __init__(self, env):
    self.env = env

  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return getattr(self.env, name)

  @property
  def obs_space(self):
    return self.env.obs_space

  @property
  def act_space(self):
    return self.env.act_space

  def reset(self):
    return self.env.reset()

  def step(self, action):
    return self.env.step(action)

  def close(self):
    return self.env.close()


class ActionRepeat(Wrapper):
  """Repeats each action up to `amount` times, summing rewards, stopping early on done."""

  def __init__(self, env, amount):
    super().__init__(env)
    self._amount = int(amount)

  def step(self, action):
    total = 0.0
    for _ in range(self._amount):
      obs, reward, done, info = self.env.step(action)
      total += reward
      if done:
        break
    return obs, total, done, info


class NormalizeActions(Wrapper):
  """Exposes [-1, 1] for every finite-bounded action dimension."""

  def __init__(self, env):
    super().__init__(env)
    space = env.act_space
    self._mask = np.isfinite(space.low) & np.isfinite(space.high)
    self._low = np.where(self._mask, space.low, -1)
    self._high = np.where(self._mask, space.high, 1)

  @property
  def act_space(self):
    space = self.env.act_space
    low = np.where(self._mask, -1.0, space.low)
    high = np.where(self._mask, 1.0, space.high)
    return Box(low, high, space.shape, space.dtype)

  def step(self, action):
    action = np.asarray(action)
    original = (action + 1) / 2 * (self._high - self._low) + self._low
    original = np.where(self._mask, original, action)
    return self.env.step(original)


class OneHotAction(Wrapper):
  """Exposes a discrete env (with `num_actions`, stepping ints) as one-hot vectors.

  Non-strict mode takes the argmax of any vector, which lets random seed actions be
  continuous (SPEC 8.2).
  """

  def __init__(self, env, strict=False):
    super().__init__(env)
    self._strict = strict

  @property
  def act_space(self):
    n = self.env.num_actions
    return Box(0, 1, (n,), np.float32, discrete=True)

  def step(self, action):
    action = np.asarray(action)
    index = int(np.argmax(action))
    if self._strict:
      reference = np.zeros_like(action)
      reference[index] = 1
      if not np.allclose(reference, action):
        raise ValueError(f'Invalid one-hot action: {action}')
    return self.env.step(index)


def union_space(spaces):
  """The action space that covers all of `spaces`: as many dims as the largest one."""
  size = max(s.shape[0] for s in spaces)
  low = np.full(size, np.inf)
  high = np.full(size, -np.inf)
  for space in spaces:
    low[:space.shape[0]] = np.minimum(low[:space.shape[0]], space.low)
    high[:space.shape[0]] = np.maximum(high[:space.shape[0]], space.high)
  low[np.isinf(low)] = 0
  high[np.isinf(high)] = 0
  return Box(low, high, (size,), np.float32, discrete=all(s.discrete for s in spaces))


def unpad_action(action, space):
  """The part of a padded action that an env with `space` takes.

  Continuous actions keep their first dims. A one-hot action for an index beyond this
  env's actions wraps around (index mod size), so every padded one-hot stays one-hot.
  """
  action = np.asarray(action)
  size = space.shape[0]
  if not space.discrete or len(action) == size:
    return action[:size]
  result = np.zeros(size, action.dtype)
  result[int(np.argmax(action)) % size] = 1
  return result


class PadActions(Wrapper):
  """Exposes the union of several action spaces; passes on the part this env needs."""

  def __init__(self, env, spaces):
    super().__init__(env)
    self._space = union_space(spaces)

  @property
  def act_space(self):
    return self._space

  def step(self, action):
    return self.env.step(unpad_action(action, self.env.act_space))


class MinimumDuration(Wrapper):
  """Ignores `done` during the first `duration` agent steps after a reset.

  Training chunks are cut from whole episodes, so no episode may be shorter than one
  chunk. The original used the batch size here; we use the chunk length.
  """

  def __init__(self, env, duration):
    super().__init__(env)
    self._duration = int(duration)
    self._step = 0

  def reset(self):
    self._step = 0
    return self.env.reset()

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    self._step += 1
    if self._step < self._duration:
      done = False
    return obs, reward, done, info


class MaximumDuration(Wrapper):
  """Ends an episode after `duration` agent steps, as a timeout."""

  def __init__(self, env, duration):
    super().__init__(env)
    self._duration = int(duration)
    self._step = 0

  def reset(self):
    self._step = 0
    return self.env.reset()

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    self._step += 1
    if self._step >= self._duration and not done:
      done = True
      info = dict(info)
      info.setdefault('done_reason', 'timeout')
    return obs, reward, done, info


class ConvertTo32Bit(Wrapper):
  """float64 -> float32, int64 -> int32; rejects non-finite observations and rewards."""

  _CASTS = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32}

  @property
  def obs_space(self):
    return {key: Box(space.low, space.high, space.shape, self._CASTS.get(space.dtype, space.dtype))
            for key, space in self.env.obs_space.items()}

  def reset(self):
    return self._convert(self.env.reset())

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    if not np.isfinite(reward):
      raise ValueError(f'Environment returned a non-finite reward: {reward}')
    return self._convert(obs), np.float32(reward), done, info

  def _convert(self, obs):
    result = {}
    for key, value in obs.items():
      value = np.asarray(value)
      if value.dtype == np.float64:
        value = value.astype(np.float32)
      elif value.dtype == np.int64:
        value = value.astype(np.int32)
      if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
        raise ValueError(f"Environment returned a non-finite observation '{key}'")
      result[key] = value
    return result


class SelectObservations(Wrapper):
  """Keeps only the listed observation keys."""

  def __init__(self, env, keys):
    super().__init__(env)
    self._keys = list(keys)

  @property
  def obs_space(self):
    return {k: v for k, v in self.env.obs_space.items() if k in self._keys}

  def reset(self):
    return {k: v for k, v in self.env.reset().items() if k in self._keys}

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return {k: v for k, v in obs.items() if k in self._keys}, reward, done, info


class ObservationDict(Wrapper):
  """Wraps a plain array observation as {key: obs}."""

  def __init__(self, env, key='state'):
    super().__init__(env)
    self._key = key

  @property
  def obs_space(self):
    return {self._key: self.env.obs_space}

  def reset(self):
    return {self._key: np.asarray(self.env.reset())}

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return {self._key: np.asarray(obs)}, reward, done, info


class NoRewardHint(Wrapper):
  """Adds `reward_mask = [0]`, which hides this env's rewards from the reward head."""

  @property
  def obs_space(self):
    return dict(self.env.obs_space, reward_mask=Box(0, 1, (1,), np.float32))

  def reset(self):
    return dict(self.env.reset(), reward_mask=np.zeros(1, np.float32))

  def step(self, action):
    obs, reward, done, info = self.env.step(action)
    return dict(obs, reward_mask=np.zeros(1, np.float32)), reward, done, info
