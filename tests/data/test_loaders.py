"""Episode streams and chunk sampling."""

import itertools
import functools
import time

import numpy as np
import pytest

from dreamer.data import episodes
from dreamer.data import loaders


def write(directory, length, marker):
  episode = {
      'step': np.arange(length, dtype=np.float32),
      'marker': np.full(length, marker, np.float32),
      'reward': np.zeros(length, np.float32),
      'pcont': np.ones(length, np.float32),
  }
  return episodes.save_episode(directory, episode)


def reader(episode):
  return episodes.process_episode(episode)


def test_chunks_never_cross_an_episode_end(tmp_path):
  for marker, length in enumerate([10, 13, 25, 40, 9]):
    write(tmp_path, length, marker)
  rng = np.random.default_rng(0)
  stream = loaders.make_loader('cache', tmp_path, rng, reader, every=20)
  for batch in itertools.islice(loaders.chunk_batches(stream, 4, 10, 1, rng), 50):
    assert batch['step'].shape == (4, 10)
    for row in range(4):
      assert len(set(batch['marker'][row])) == 1  # One episode per chunk.
      np.testing.assert_array_equal(np.diff(batch['step'][row]), 1)  # Consecutive steps.
      assert batch['marker'][row][0] != 4  # The 9-step episode is too short for a chunk.


def test_batches_are_new_aligned_arrays_that_tensorflow_may_keep(tmp_path):
  # TensorFlow takes a 64-byte aligned array without copying it, so a batch must never be
  # written again once yielded.
  for marker in range(3):
    write(tmp_path, 30, marker)
  rng = np.random.default_rng(0)
  stream = loaders.make_loader('cache', tmp_path, rng, reader, every=5)
  batches = list(itertools.islice(loaders.chunk_batches(stream, 4, 10, 1, rng), 6))
  copies = [{k: v.copy() for k, v in b.items()} for b in batches]
  for batch, copy in zip(batches, copies):
    for key, value in batch.items():
      assert value.ctypes.data % 64 == 0 and value.flags.c_contiguous, key
      np.testing.assert_array_equal(value, copy[key])  # Unchanged by later batches.
  for first, second in itertools.combinations(batches, 2):
    assert not np.shares_memory(first['step'], second['step'])


def test_several_chunks_per_episode_are_consecutive(tmp_path):
  write(tmp_path, 50, 0)
  rng = np.random.default_rng(1)
  stream = loaders.make_loader('cache', tmp_path, rng, reader, every=3)
  batch = next(loaders.chunk_batches(stream, 4, 10, 0, rng))  # n = 50 // 10 - 1 = 4.
  starts = batch['step'][:, 0]
  np.testing.assert_array_equal(np.diff(starts), 10)


@pytest.mark.parametrize('kind', ['cache', 'recent', 'window', 'reload', 'dummy'])
def test_loaders_yield_whole_episodes_and_see_new_files(tmp_path, kind):
  write(tmp_path, 12, 0)
  rng = np.random.default_rng(2)
  stream = loaders.make_loader(kind, tmp_path, rng, reader, every=2, window=5)
  first = next(stream)
  assert len(first['step']) == 12
  if kind == 'dummy':
    return
  write(tmp_path, 15, 1)
  markers = {float(next(stream)['marker'][0]) for _ in range(20)}
  assert markers == {0.0, 1.0}


def test_cache_size_bounds_memory(tmp_path):
  for marker in range(6):
    write(tmp_path, 12, marker)
  rng = np.random.default_rng(3)
  stream = loaders.cache_loader(tmp_path, 50, rng, reader, max_size=2)
  markers = {float(next(stream)['marker'][0]) for _ in range(50)}
  assert len(markers) == 2


def test_cache_bytes_bound_memory_keeping_the_newest(tmp_path):
  for marker in range(6):
    write(tmp_path, 12, marker)
  size = loaders._size(reader(episodes.load_episode(next(tmp_path.iterdir()))))[1]
  stats = loaders.ReplayStats()
  stream = loaders.cache_loader(tmp_path, 50, np.random.default_rng(3), reader,
                                max_bytes=int(2.5 * size), stats=stats)
  markers = {float(next(stream)['marker'][0]) for _ in range(50)}
  newest = episodes.list_episodes(tmp_path)[-2:]  # The cache reads in name order.
  assert markers == {float(episodes.load_episode(p)['marker'][0]) for p in newest}
  kept, _, nbytes = stats.snapshot()
  assert kept == 2 and nbytes <= 2.5 * size


def test_dataset_batches_from_directory(tmp_path):
  from dreamer.data import pipeline
  for marker in range(3):
    ep = {'image': np.zeros((20, 64, 64, 3), np.uint8), 'action': np.zeros((20, 2), np.float32),
          'reward': np.ones(20, np.float32), 'pcont': np.ones(20, np.float32)}
    episodes.save_episode(tmp_path, ep)
  dataset = pipeline.make_dataset(tmp_path, batch=3, length=8, every=3)
  batch = next(iter(dataset))
  assert batch['image'].shape == (3, 8, 64, 64, 3) and batch['image'].dtype.name == 'uint8'
  assert batch['reward_mask'].shape == (3, 8, 1)
  np.testing.assert_allclose(batch['pcont'].numpy(), 0.99)


def test_dataset_prefetched_to_a_device_yields_the_same_batches(tmp_path):
  import tensorflow as tf
  from dreamer.data import pipeline
  rng = np.random.default_rng(1)
  for _ in range(3):
    episodes.save_episode(tmp_path, {
        'image': rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8),
        'action': rng.normal(size=(12, 2)).astype(np.float32),
        'reward': np.ones(12, np.float32), 'pcont': np.ones(12, np.float32)})
  plain = next(iter(pipeline.make_dataset(tmp_path, batch=2, length=5, every=3, seed=4)))
  device = (tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU'))[0].name
  moved = next(iter(pipeline.make_dataset(
      tmp_path, batch=2, length=5, every=3, seed=4, device=device)))
  assert moved['image'].dtype == tf.uint8
  assert moved['image'].device.endswith(device.split('/')[-1])
  for key in plain:
    np.testing.assert_array_equal(plain[key].numpy(), moved[key].numpy())


@pytest.mark.parametrize('key, value', [('reward', np.nan), ('image', None),
                                        ('action', -np.inf)])
def test_batches_never_hold_an_episode_with_nan_or_inf(tmp_path, caplog, key, value):
  from dreamer.data import pipeline
  rng = np.random.default_rng(5)

  def episode():
    return {'image': rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8),
            'action': rng.normal(size=(12, 2)).astype(np.float32),
            'reward': rng.normal(size=12).astype(np.float32), 'pcont': np.ones(12, np.float32)}

  for _ in range(2):
    episodes.save_episode(tmp_path, episode())
  bad = episode()
  if key == 'image':  # A float image, as a hand-made replay might store it.
    bad['image'] = bad['image'].astype(np.float32)
    bad['image'][5, 1, 2, 0] = np.nan
  else:
    bad[key][4] = value
  path = episodes.save_episode(tmp_path, bad)
  dataset = pipeline.make_dataset(tmp_path, batch=4, length=5, every=3, seed=1)
  for batch in itertools.islice(iter(dataset), 20):
    for name, array in batch.items():
      assert np.isfinite(np.asarray(array, np.float32)).all(), name
  warnings = [r.getMessage() for r in caplog.records if path.name in r.getMessage()]
  assert len(warnings) == 1 and f'{key} holds NaN or inf' in warnings[0], caplog.text


@pytest.mark.parametrize('kind, max_size, window, kept', [
    ('cache', 0, None, [10, 13, 25]),
    ('cache', 2, None, [13, 25]),  # The oldest goes first.
    ('window', 0, 2, [13, 25]),
    ('recent', 0, None, [10, 13, 25]),
])
def test_replay_stats_follow_what_the_cache_holds(tmp_path, kind, max_size, window, kept):

  def write_in_order(length, marker):
    # File names start with the second they were written in: make their order certain.
    path = write(tmp_path, length, marker)
    path.rename(path.with_name(f'20260101T00000{marker}' + path.name[len('20260101T000000'):]))

  for marker, length in enumerate([10, 13, 25]):
    write_in_order(length, marker)
  stats = loaders.ReplayStats()
  assert stats.snapshot() == (0, 0, 0)
  rng = np.random.default_rng(3)
  stream = loaders.make_loader(kind, tmp_path, rng, reader, every=2, window=window,
                               max_size=max_size, stats=stats)
  next(stream)
  # Every step of these episodes holds the same arrays: bytes grow with the steps.
  some = reader(episodes.load_episode(episodes.list_episodes(tmp_path)[0]))
  step_bytes = sum(v.nbytes for v in some.values()) // len(some['reward'])
  assert stats.snapshot() == (len(kept), sum(kept), sum(kept) * step_bytes)
  write_in_order(30, 3)  # Seen at the next rescan, after this round's 2 episodes.
  for _ in range(2):
    next(stream)
  episodes_, steps, nbytes = stats.snapshot()
  limit = max_size or window
  expected = (kept + [30])[-limit:] if limit else kept + [30]
  assert (episodes_, steps) == (len(expected), sum(expected))
  assert nbytes == sum(expected) * step_bytes


def test_reload_keeps_nothing_in_memory(tmp_path):
  write(tmp_path, 10, 0)
  stats = loaders.ReplayStats()
  next(loaders.make_loader('reload', tmp_path, np.random.default_rng(0), reader, stats=stats))
  assert stats.snapshot() == (0, 0, 0)


@pytest.mark.parametrize('prefetch', [0, 2])
def test_without_prefetch_a_batch_is_made_only_when_asked(tmp_path, monkeypatch, prefetch):
  # With prefetch 0 the replay is read when the trainer asks, never ahead of it, so that a
  # seeded run's batches do not depend on how fast the trainer and the collection run.
  from dreamer.data import pipeline
  made = []
  chunk_batches = loaders.chunk_batches

  def counted(*args, **kwargs):
    for item in chunk_batches(*args, **kwargs):
      made.append(1)
      yield item

  monkeypatch.setattr(loaders, 'chunk_batches', counted)
  for _ in range(2):
    episodes.save_episode(tmp_path, {
        'image': np.zeros((20, 64, 64, 3), np.uint8), 'action': np.zeros((20, 2), np.float32),
        'reward': np.ones(20, np.float32), 'pcont': np.ones(20, np.float32)})
  batches = iter(pipeline.make_dataset(tmp_path, batch=2, length=5, every=1, prefetch=prefetch))
  for asked in (1, 2, 3):
    next(batches)
    if prefetch:  # The background thread fills its buffer ahead of the asking.
      deadline = time.time() + 5
      while len(made) <= asked and time.time() < deadline:
        time.sleep(0.01)
      assert len(made) > asked
    else:
      time.sleep(0.2)  # Time in which a thread, if there were one, would read ahead.
      assert len(made) == asked
