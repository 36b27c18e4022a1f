"""Infinite streams of whole episodes from a directory that keeps growing (SPEC 6.4)."""

import collections
import time

import numpy as np

from dreamer.data import episodes as episodes_lib


class ReplayStats:
  """How much a cache loader holds in memory: episodes, time steps and bytes.

  The loader runs inside a tf.data generator thread; the trainer reads these for its
  progress lines. Each update replaces one tuple, so a reader never sees a half update.
  """

  def __init__(self):
    self._value = (0, 0, 0)

  def set(self, episodes, steps, nbytes):
    self._value = (int(episodes), int(steps), int(nbytes))

  def snapshot(self):
    """(episodes, time steps, bytes), read together."""
    return self._value


def _read(path, reader):
  episode = episodes_lib.load_episode(path)
  return None if episode is None else reader(episode)


def _size(episode):
  return len(episode['reward']), sum(value.nbytes for value in episode.values())


def cache_loader(directory, every, rng, reader, max_size=0, window=None, recent=False,
                 stats=None, max_bytes=0):
  """Keeps loaded episodes in memory and yields `every` of them per round, then rescans.

  Args:
    max_size: most episodes kept in memory (oldest dropped first); 0 keeps all.
    max_bytes: most bytes of episodes kept in memory (oldest dropped first, the newest
      always kept); 0 keeps all.
    window: keep only the newest `window` files by name (the `window` loader).
    recent: draw half of each round from episodes that arrived since the last round.
    stats: a ReplayStats that is told the cache's size after every rescan.
  """
  cache = collections.OrderedDict()
  seen = set()
  steps = nbytes = 0

  def drop(name):
    nonlocal steps, nbytes
    length, size = _size(cache.pop(name))
    steps, nbytes = steps - length, nbytes - size

  while True:
    fresh = []
    for path in episodes_lib.list_episodes(directory):
      if path.name in seen:
        continue
      seen.add(path.name)
      episode = _read(path, reader)
      if episode is not None:
        cache[path.name] = episode
        fresh.append(path.name)
        length, size = _size(episode)
        steps, nbytes = steps + length, nbytes + size
    if window:
      for name in sorted(cache)[:-window]:
        drop(name)
    if max_size:
      while len(cache) > max_size:
        drop(next(iter(cache)))
    if max_bytes:
      while nbytes > max_bytes and len(cache) > 1:
        drop(next(iter(cache)))
    if stats is not None:
      stats.set(len(cache), steps, nbytes)
    if not cache:
      time.sleep(0.5)  # Nothing written yet; wait for the collector.
      continue
    names = list(cache)
    if recent and fresh:
      fresh = [n for n in fresh if n in cache]
      old = [n for n in names if n not in set(fresh)] or fresh
      picks = list(rng.choice(fresh, min(len(fresh), every // 2), replace=False))
      picks += list(rng.choice(old, min(len(old), every - len(picks)), replace=False))
    else:
      picks = list(rng.choice(names, min(len(names), every), replace=False))
    yielded = 0
    while yielded < every:
      for index in rng.permutation(len(picks)):
        if yielded == every:
          break
        yield cache[picks[index]]
        yielded += 1


def reload_loader(directory, rng, reader):
  """Re-reads every file of the directory in random order on every pass."""
  while True:
    paths = episodes_lib.list_episodes(directory)
    if not paths:
      time.sleep(0.5)
      continue
    for index in rng.permutation(len(paths)):
      episode = _read(paths[index], reader)
      if episode is not None:
        yield episode


def dummy_loader(directory, rng, reader):
  """Random arrays with the keys, shapes and dtypes of one real episode."""
  template = None
  while template is None:
    paths = episodes_lib.list_episodes(directory)
    template = _read(paths[0], reader) if paths else None
    if template is None:
      time.sleep(0.5)
  while True:
    yield {k: _random_like(v, rng) for k, v in template.items()}


def _random_like(value, rng):
  if value.dtype == np.uint8:
    return rng.integers(0, 256, value.shape, dtype=np.uint8)
  if value.dtype == np.bool_:
    return rng.integers(0, 2, value.shape).astype(bool)
  return rng.standard_normal(value.shape).astype(value.dtype)


def make_loader(kind, directory, rng, reader, every=1000, window=400, max_size=0, stats=None,
                max_bytes=0):
  """An episode stream of the given kind; `stats` (a ReplayStats) follows what the cache
  loaders keep in memory; 'reload' and 'dummy' keep nothing, so it stays at zero."""
  if kind == 'cache':
    return cache_loader(directory, every, rng, reader, max_size, stats=stats, max_bytes=max_bytes)
  if kind == 'recent':
    return cache_loader(directory, every, rng, reader, max_size, recent=True, stats=stats, max_bytes=max_bytes)
  if kind == 'window':
    return cache_loader(directory, every, rng, reader, max_size, window=window, stats=stats, max_bytes=max_bytes)
  if kind == 'reload':
    return reload_loader(directory, rng, reader)
  if kind == 'dummy':
    return dummy_loader(directory, rng, reader)
  raise ValueError(f'unknown loader {kind!r}')


def _aligned_empty(shape, dtype, align=64):
  """np.empty on a 64-byte boundary, where TensorFlow can take the array without a copy."""
  dtype = np.dtype(dtype)
  size = int(np.prod(shape)) * dtype.itemsize
  raw = np.empty(size + align, np.uint8)
  offset = -raw.ctypes.data % align
  return raw[offset:offset + size].view(dtype).reshape(shape)


def chunk_batches(episodes, batch, length, num_chunks, rng):
  """Cuts chunks of `length` steps from each episode and groups them into batches.

  With num_chunks n, n consecutive non-overlapping chunks start at a uniform random
  offset in [0, L - n * length]; 0 or None means max(1, L // length - 1). Episodes
  shorter than one chunk are skipped. Chunks never cross an episode's end.

  Each chunk is copied once, straight into the arrays of its batch (numpy releases the
  GIL for these copies), and every batch gets new arrays, since the consumer keeps them.
  """
  arrays, filled = None, 0
  for episode in episodes:
    size = len(episode['reward'])
    n = num_chunks or max(1, size // length - 1)
    n = min(n, size // length)
    if n < 1:
      continue
    offset = int(rng.integers(0, size - n * length + 1))
    for i in range(n):
      start = offset + i * length
      if arrays is None:
        arrays = {k: _aligned_empty((batch, length) + v.shape[1:], v.dtype)
                  for k, v in episode.items()}
      for key, array in arrays.items():
        array[filled] = episode[key][start:start + length]
      filled += 1
      if filled == batch:
        yield arrays
        arrays, filled = None, 0
