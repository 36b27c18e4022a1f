"""Episode files: one compressed .npz per finished episode, written atomically (SPEC 6)."""

import datetime
import logging
import os
import pathlib
import re
import uuid
import zipfile

import numpy as np

ALLOWED_DTYPES = (np.uint8, np.float32, np.float64, np.bool_, np.int32, np.int64)
_NAME = re.compile(r'^\d{8}T\d{6}-[0-9a-f]{32}-(\d+)\.npz$')

log = logging.getLogger(__name__)


def episode_length(path):
  """Number of entries (including the reset step) encoded in an episode's file name."""
  match = _NAME.match(pathlib.Path(path).name)
  return int(match.group(1)) if match else None


def list_episodes(directory):
  """Sorted paths of the finished episodes in a directory (temporary files are not listed)."""
  directory = pathlib.Path(directory)
  if not directory.exists():
    return []
  return sorted(p for p in directory.glob('*.npz') if _NAME.match(p.name))


def count_episodes(directory):
  """(number of episode files, summed lengths) from the file names alone."""
  paths = list_episodes(directory)
  return len(paths), sum(episode_length(p) for p in paths)


def remove_partial(directory):
  """Deletes the temporary files of episode writes that a killed process left behind and
  returns their names. Only for the run's owner at start, never while it is writing."""
  directory = pathlib.Path(directory)
  removed = []
  for path in sorted(directory.glob('.*.npz.tmp')):
    path.unlink(missing_ok=True)
    removed.append(path.name)
  return removed


def stack_steps(steps):
  """Turns a list of per-step dicts into a dict of arrays with a leading time axis."""
  keys = steps[0].keys()
  return {k: np.stack([np.asarray(step[k]) for step in steps]) for k in keys}


def save_episode(directory, episode):
  """Writes an episode dict of equally long arrays; returns the path.

  The file appears under its final name only once it is complete (temporary file, then
  rename), so a crash at any moment never leaves a partial episode for the loaders.
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  lengths = {len(v) for v in episode.values()}
  if len(lengths) != 1:
    raise ValueError(f'episode arrays differ in length: { {k: len(v) for k, v in episode.items()} }')
  for key, value in episode.items():
    if value.dtype.type not in ALLOWED_DTYPES:
      raise ValueError(f"episode key '{key}' has unsupported dtype {value.dtype}")
  length = lengths.pop()
  stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
  path = directory / f'{stamp}-{uuid.uuid4().hex}-{length}.npz'
  tmp = directory / f'.{path.name}.tmp'
  try:
    with open(tmp, 'wb') as f:
      np.savez_compressed(f, **episode)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    # A full disk fails mid-write: leave no partial file behind to take more space.
    tmp.unlink(missing_ok=True)
    raise
  return path


def load_episode(path):
  """Loads an episode file, or returns None (with a warning) when it is damaged.

  A damaged file is renamed to `<name>.corrupt` so that it is reported only once and
  kept for inspection.
  """
  try:
    with np.load(path) as data:
      episode = {k: data[k] for k in data.files}
    lengths = {len(v) for v in episode.values()}
    if not episode or len(lengths) != 1:
      raise ValueError('arrays missing or of different lengths')
    # A readable file with NaN or inf (a damaged or hand-edited episode) would make the
    # losses of every batch it lands in NaN and stop training.
    bad = [k for k, v in sorted(episode.items())
           if v.dtype.kind == 'f' and not np.isfinite(v).all()]
    if bad:
      raise ValueError(f"{', '.join(bad)} holds NaN or inf")
    return episode
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
    log.warning('Skipping damaged episode %s (%s); moved to %s.corrupt.', path, e, path)
    try:
      os.replace(path, f'{path}.corrupt')
    except OSError:
      pass
    return None


def process_episode(episode, clip_rewards=False, pcont_scale=0.99):
  """Applies the load-time transforms of SPEC 6.3 to a loaded episode."""
  result = {}
  for key, value in episode.items():
    if value.dtype == np.float64:
      value = value.astype(np.float32)
    elif value.dtype == np.int64:
      value = value.astype(np.int32)
    result[key] = value
  reward = result['reward'].astype(np.float32)
  result['return'] = np.cumsum(reward).astype(np.float32)
  if 'reward_mask' not in result:
    result['reward_mask'] = np.ones((len(reward), 1), np.float32)
  if clip_rewards == 'sign':
    reward = np.sign(reward)
  elif clip_rewards == 'tanh':
    reward = np.tanh(reward)
  elif clip_rewards:
    raise ValueError(f'unknown clip_rewards {clip_rewards!r}')
  result['reward'] = reward.astype(np.float32)
  result['pcont'] = (result['pcont'] * pcont_scale).astype(np.float32)
  return result
