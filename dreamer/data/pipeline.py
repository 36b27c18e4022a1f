"""The tf.data input pipeline: batches of [B, T] chunks from an episode directory.

Images stay uint8 here, a quarter of the bytes to copy; the agent converts them on the
device inside its train step.
"""

import functools

import numpy as np
import tensorflow as tf

from dreamer.data import episodes as episodes_lib
from dreamer.data import loaders


def data_spec(directory, reader):
  """Keys, per-step shapes and dtypes, read from one episode of the directory."""
  for path in episodes_lib.list_episodes(directory):
    episode = episodes_lib.load_episode(path)
    if episode is not None:
      episode = reader(episode)
      return {k: (v.shape[1:], v.dtype) for k, v in episode.items()}
  raise FileNotFoundError(f'no readable episode in {directory}')


def make_dataset(directory, *, batch, length, loader='cache', num_chunks=1, every=1000,
                 window=400, cache_size=0, cache_bytes=0, clip_rewards=False, pcont_scale=0.99, seed=0,
                 prefetch=2, spec_directory=None, device=None, stats=None):
  """An infinite dataset of dicts of [batch, length, ...] arrays.

  Args:
    cache_size, cache_bytes: most episodes, most bytes the replay keeps (0: no bound).
    stats: a loaders.ReplayStats to follow the size of the episodes kept in memory.
    spec_directory: where to read the data spec from when `directory` is still empty.
    prefetch: batches prepared ahead in a background thread while the train step runs.
      With 0 the generator runs only when a batch is asked for, after the collection
      before it has written its episodes, so that the batches of a seeded run do not
      depend on timing.
    device: e.g. '/gpu:0' to copy `prefetch` batches (at least 1) ahead onto that device,
      so that the host-to-device copy overlaps the train step; None keeps them in host
      memory.
  """
  reader = functools.partial(
      episodes_lib.process_episode, clip_rewards=clip_rewards, pcont_scale=pcont_scale)
  try:
    spec = data_spec(directory, reader)
  except FileNotFoundError:
    if spec_directory is None:
      raise
    spec = data_spec(spec_directory, reader)

  def generator():
    rng = np.random.default_rng(seed)
    stream = loaders.make_loader(
        loader, directory, rng, reader, every=every, window=window, max_size=cache_size,
        stats=stats, max_bytes=cache_bytes)
    for item in loaders.chunk_batches(stream, batch, length, num_chunks, rng):
      yield {k: item[k] for k in spec}

  signature = {
      k: tf.TensorSpec((batch, length) + tuple(shape), tf.as_dtype(dtype))
      for k, (shape, dtype) in spec.items()}
  dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
  if device:
    # Must be the last transformation of the pipeline.
    return dataset.apply(tf.data.experimental.prefetch_to_device(device, max(prefetch, 1)))
  if not prefetch:
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # tf.data's own read-ahead.
    return dataset.with_options(options)
  return dataset.prefetch(prefetch)
