"""Reads the published test returns of Dreamer from pixels and of the paper's baselines.

The CSV files next to this module are the first author's published scores (README.md and
LICENSE here: source and licence). Plain Python, no TensorFlow, so plotting needs none.
"""

import csv
import functools
import importlib.resources

DREAMER_FILE = 'dreamer_published_returns.csv'
BASELINES_FILE = 'baselines_final_returns.csv'
SOURCE = 'Hafner et al. 2019 (github.com/danijar/dreamer scores)'

# Legend names of the baselines; a method missing here is shown by its CSV name.
BASELINE_NAMES = {
    'd4pg_100m': 'D4PG, pixels, 1e8 frames',
    'a3c_100m_proprio': 'A3C, states, 1e8 frames',
    'planet_1e6': 'PlaNet, pixels, 1e6 frames',
    'slac_3e6': 'SLAC, pixels, 3e6 frames',
}


def _rows(name):
  with importlib.resources.files(__package__).joinpath(name).open(newline='') as f:
    return list(csv.DictReader(f))


@functools.lru_cache(maxsize=None)
def _dreamer():
  table = {}
  for row in _rows(DREAMER_FILE):
    seeds = table.setdefault(row['task'], {})
    seeds.setdefault(int(row['seed']), {})[int(row['env_frames'])] = float(row['test_return'])
  return table


@functools.lru_cache(maxsize=None)
def _baselines():
  table = {}
  for row in _rows(BASELINES_FILE):
    table.setdefault(row['task'], {})[row['method']] = float(row['test_return'])
  return table


def tasks():
  """The tasks with published Dreamer returns, sorted (names as this project spells them)."""
  return sorted(_dreamer())


def dreamer_returns(task):
  """{seed: {env frames: test return}} of Dreamer from pixels; {} for a task without any.

  Seeds may end at different frame counts (walker_walk's seed 2 stops at 3.2M).
  """
  return {seed: dict(points) for seed, points in _dreamer().get(task, {}).items()}


def at_frames(task, frames):
  """{seed: test return} of the seeds evaluated at exactly `frames` env frames."""
  return {seed: points[frames] for seed, points in _dreamer().get(task, {}).items()
          if frames in points}


def frame_counts(task):
  """The env frame counts at which any seed of `task` was evaluated, ascending."""
  return sorted({x for points in _dreamer().get(task, {}).values() for x in points})


def curve(task):
  """[(env frames, mean, min, max, seeds)] over the seeds evaluated at each frame count."""
  rows = []
  for frames in frame_counts(task):
    values = list(at_frames(task, frames).values())
    rows.append((frames, sum(values) / len(values), min(values), max(values), len(values)))
  return rows


def baselines(task):
  """{method: final test return} of the paper's baselines for `task`; {} where none given."""
  return dict(_baselines().get(task, {}))
