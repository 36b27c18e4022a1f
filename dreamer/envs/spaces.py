"""A minimal box space, so that the environment layer needs no gym."""

import numpy as np


class Box:
  """Array bounds, shape and dtype. `discrete` marks one-hot action spaces."""

  def __init__(self, low, high, shape, dtype=np.float32, discrete=False):
    self.shape = tuple(int(x) for x in shape)
    self.dtype = np.dtype(dtype)
    self.low = np.broadcast_to(np.asarray(low, self.dtype), self.shape).copy()
    self.high = np.broadcast_to(np.asarray(high, self.dtype), self.shape).copy()
    self.discrete = bool(discrete)

  def sample(self, rng):
    """A random element; for one-hot spaces a continuous vector in [0, 1]^n (see SPEC 8.2)."""
    if self.dtype == np.uint8:
      return rng.integers(0, 256, self.shape, dtype=np.uint8)
    low = np.where(np.isfinite(self.low), self.low, -1.0)
    high = np.where(np.isfinite(self.high), self.high, 1.0)
    return rng.uniform(low, high, self.shape).astype(self.dtype)

  def contains(self, value):
    value = np.asarray(value)
    return value.shape == self.shape and bool(
        np.all(value >= self.low - 1e-6) and np.all(value <= self.high + 1e-6))

  def __repr__(self):
    kind = 'onehot ' if self.discrete else ''
    return f'Box({kind}{self.shape}, {self.dtype.name}, [{self.low.min()}, {self.high.max()}])'

  def __eq__(self, other):
    return (isinstance(other, Box) and self.shape == other.shape and self.dtype == other.dtype
            and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high)
            and self.discrete == other.discrete)
