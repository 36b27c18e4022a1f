"""Learning curves from metrics.jsonl: python scripts/plot.py LOGDIR [LOGDIR ...] --out FILE.

Every LOGDIR is one method: a base directory whose numbered runs (00001, 00002, ...) are its
seeds, or a single run directory. A line is the mean over a method's runs of one task, the
band spans their minimum and maximum. Without --compare all lines share one plot; with
--compare every task gets its own plot and every LOGDIR a line in it. The task of a run is
read from its config.yaml. Needs matplotlib, ruamel.yaml and this repository's dreamer
package (installed or not), not TensorFlow.

--reference draws the published Dreamer curve from pixels of each task (mean and min-max band
over its 5 seeds, up to the frames the runs reached) and the paper's baselines as horizontal
lines. --table prints, for every published frame count a run reached, each run's evaluation
nearest it, the published returns per seed and random play (then a plot is written only
with --out). The published figures are package data: dreamer/reference/README.md.
"""

import argparse
import collections
import itertools
import pathlib
import sys

import numpy as np
import ruamel.yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # Uninstalled.
from dreamer.reference import published  # pylint: disable=wrong-import-position
from dreamer.training import records  # pylint: disable=wrong-import-position

REFERENCE_METRICS = ('test/return', 'test/score')
BASELINE_STYLES = [(0, (1, 1)), '-.', (0, (5, 2)), (0, (3, 1, 1, 1, 1, 1))]


class PlotError(ValueError):
  """Nothing to plot, explained in one line."""


def find_runs(logdir):
  """Run directories under `logdir` (itself, or any directory below) with a metrics.jsonl."""
  logdir = pathlib.Path(logdir)
  if not logdir.is_dir():
    raise PlotError(f"log directory '{logdir}' does not exist")
  runs = sorted(path.parent for path in logdir.rglob('metrics.jsonl'))
  if not runs:
    raise PlotError(f"no metrics.jsonl under '{logdir}'; is it a training log directory?")
  return runs


def task_of(run_dir):
  try:
    text = (run_dir / 'config.yaml').read_text()
    config = ruamel.yaml.YAML(typ='safe', pure=True).load(text)
    return '+'.join(config['tasks'])
  except (OSError, ruamel.yaml.YAMLError, KeyError, TypeError):
    return 'unknown task'


def read_curve(run_dir, metric):
  """(env frames, values) of one run, one value per frame count (the mean of its records).

  A resumed run's records replace those of training its checkpoint did not keep.
  """
  values = collections.defaultdict(list)
  for record in records.read(run_dir / 'metrics.jsonl'):
    if metric in record and 'env_frames' in record:
      values[record['env_frames']].append(record[metric])
  frames = np.array(sorted(values), np.float64)
  return frames, np.array([np.mean(values[x]) for x in sorted(values)], np.float64)


def aggregate(curves):
  """Mean, min and max over runs, on the union of their frame counts.

  Each run is interpolated linearly between its own points and left out beyond them.
  """
  grid = np.unique(np.concatenate([x for x, _ in curves]))
  stack = np.full((len(curves), len(grid)), np.nan)
  for i, (x, y) in enumerate(curves):
    inside = (grid >= x[0]) & (grid <= x[-1])
    stack[i, inside] = np.interp(grid[inside], x, y)
  return grid, np.nanmean(stack, 0), np.nanmin(stack, 0), np.nanmax(stack, 0)


def load(logdirs, labels, metric):
  """{task: {method: [curve per run]}} for the given log directories."""
  data = collections.defaultdict(dict)
  for logdir, label in zip(logdirs, labels):
    curves = collections.defaultdict(list)
    for run in find_runs(logdir):
      x, y = read_curve(run, metric)
      if len(x):
        curves[task_of(run)].append((x, y))
    if not curves:
      raise PlotError(f"no '{metric}' values in the metrics.jsonl files under '{logdir}'; "
                      'has a test phase finished yet?')
    for task, runs in curves.items():
      data[task][label] = runs
  return data


def reached(data, task):
  """The most env frames that a run of `task` reached, over every method."""
  return max(x[-1] for curves in data[task].values() for x, _ in curves)


def reference_curve(task, frames):
  """The published [(env frames, mean, min, max, seeds)] of `task` up to `frames`."""
  return [point for point in published.curve(task) if point[0] <= frames]


def reference_notes(data):
  """One line for each plotted task whose published curve cannot be drawn."""
  notes = []
  for task in sorted(data):
    if not published.curve(task):
      notes.append(f"No published figures for task '{task}'; it is drawn without them.")
    elif not reference_curve(task, reached(data, task)):
      notes.append(f"The runs of task '{task}' end at {reached(data, task):.0f} env frames, "
                   f'before its first published point ({published.frame_counts(task)[0]}); '
                   'it is drawn without the published curve.')
  return notes


def draw_reference(ax, task, frames, prefix=''):
  """The published Dreamer mean and min-max band of `task` up to `frames` env frames, and
  the paper's baselines as horizontal lines."""
  points = reference_curve(task, frames)
  if points:
    x, mean, low, high, seeds = (np.array(column) for column in zip(*points))
    ax.plot(x, mean, color='black', linestyle='--', marker='o', markersize=3,
            label=f'{prefix}Dreamer, published ({seeds.max()} seeds)')
    ax.fill_between(x, low, high, color='black', alpha=0.1, linewidth=0)
  for style, (method, value) in zip(itertools.cycle(BASELINE_STYLES),
                                    sorted(published.baselines(task).items())):
    name = published.BASELINE_NAMES.get(method, method)
    ax.axhline(value, color='dimgray', linestyle=style, linewidth=1,
               label=f'{prefix}{name}: {value:.0f}')


def plot(data, out, metric, compare=False, title=None, reference=False):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  tasks = sorted(data)
  panels = [[task] for task in tasks] if compare else [tasks]
  columns = min(len(panels), 3)
  rows = -(-len(panels) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
  methods = sorted({m for task in data.values() for m in task})
  colors = {m: f'C{i % 10}' for i, m in enumerate(methods)}
  for ax, panel in zip(axes.flat, panels):
    index = 0
    for task in panel:
      for method, curves in sorted(data[task].items()):
        grid, mean, low, high = aggregate(curves)
        if compare:
          label, color = method, colors[method]
        else:
          label = ' / '.join(p for p in (task if len(tasks) > 1 else '',
                                         method if len(methods) > 1 else '') if p) or method
          color = f'C{index % 10}'
        label += f' ({len(curves)} run{"s" if len(curves) > 1 else ""})'
        ax.plot(grid, mean, color=color, label=label)
        if len(curves) > 1:
          ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        index += 1
    if reference:
      for task in panel:
        draw_reference(ax, task, reached(data, task), f'{task}: ' if len(panel) > 1 else '')
    ax.set_title(panel[0] if compare else (title or ', '.join(tasks)))
    ax.set_xlabel('Environment frames')
    ax.set_ylabel(metric.replace('/', ' ').capitalize())
    ax.grid(alpha=0.3)
    ax.legend(loc='best', fontsize='small')
  for ax in list(axes.flat)[len(panels):]:
    ax.axis('off')
  if title and compare:
    fig.suptitle(title)
  fig.tight_layout()
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  try:
    fig.savefig(out, dpi=120)
  except ValueError as e:
    raise PlotError(f"cannot write '{out}': {e}") from None
  finally:
    plt.close(fig)


def evaluations(run_dir):
  """(evaluations as [(env frames, mean score)], random play or None) of one run."""
  kept = records.read(run_dir / 'metrics.jsonl')
  scores = collections.defaultdict(list)
  for frames, score in records.evaluations(kept):
    scores[frames].append(score)
  return [(x, float(np.mean(scores[x]))) for x in sorted(scores)], records.random_play(kept)


def evaluation_near(evals, frames):
  """The (env frames, score) evaluation nearest `frames` if it lies within one evaluation
  period of it, else None. The period is the median spacing of the run's evaluations (with
  a single evaluation, its env frames)."""
  if not evals:
    return None
  xs = [x for x, _ in evals]
  period = float(np.median(np.diff(xs))) if len(xs) > 1 else xs[0]
  x, score = min(evals, key=lambda e: (abs(e[0] - frames), e[0]))
  return (x, score) if abs(x - frames) <= period else None


def comparison(logdirs, labels):
  """(rows, notes) of the table against the published returns.

  A row for every task with published returns, method and published frame count that one
  of the method's runs has an evaluation near (evaluation_near): its runs' evaluations and
  random play, by run name, and the published returns by seed. A note for every task
  without published returns or whose runs reached none of its frame counts.
  """
  rows, notes = [], []
  for logdir, label in zip(logdirs, labels):
    tasks = collections.defaultdict(list)
    for run in find_runs(logdir):
      name = run.relative_to(logdir).as_posix() if run != pathlib.Path(logdir) else run.name
      tasks[task_of(run)].append((name, *evaluations(run)))
    for task, runs in sorted(tasks.items()):
      if not published.curve(task):
        notes.append(f"No published figures for task '{task}'; it is not in the table.")
        continue
      before = len(rows)
      for frames in published.frame_counts(task):
        ours = [(name, evaluation_near(evals, frames)) for name, evals, _ in runs]
        if any(near for _, near in ours):
          rows.append({'task': task, 'method': label, 'frames': frames, 'ours': ours,
                       'published': published.at_frames(task, frames),
                       'random': [(name, value) for name, _, value in runs]})
      if len(rows) == before:
        notes.append(f"The runs of task '{task}' under '{logdir}' reached none of its "
                     f'published frame counts ({published.frame_counts(task)[0]}, ...).')
  return rows, list(dict.fromkeys(notes))


def table_lines(rows):
  """The comparison as a Markdown table, with a line saying what it holds."""
  def mean(values):
    return f'{np.mean(values):.0f}' if values else '-'

  lines = [
      "Test return at the published frame counts. Ours: each run's evaluation nearest the "
      'count, within one evaluation period (its env frames in brackets); published: Dreamer '
      f'from pixels, {published.SOURCE}; random play: the mean of the run\'s random seed '
      'episodes.', '',
      '| task | method | env frames | ours per run | ours mean | published per seed '
      '| published mean | random play per run |',
      '|---|---|---|---|---|---|---|---|']
  for row in rows:
    ours = ', '.join(f'{name}: {near[1]:.0f} ({near[0]})' if near else f'{name}: -'
                     for name, near in row['ours'])
    scores = [near[1] for _, near in row['ours'] if near]
    theirs = [row['published'][seed] for seed in sorted(row['published'])]
    random = ', '.join(f'{name}: {value:.0f}' if value is not None else f'{name}: -'
                       for name, value in row['random'])
    lines.append(f"| {row['task']} | {row['method']} | {row['frames']} | {ours} | "
                 f"{mean(scores)} | {', '.join(f'{v:.0f}' for v in theirs)} | "
                 f'{mean(theirs)} | {random} |')
  return lines


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog='python scripts/plot.py', description=__doc__.split('\n')[0])
  parser.add_argument('logdirs', nargs='+', help='log directories, one per method')
  parser.add_argument('--out', default=None,
                      help='output file: .png, .pdf, .svg (default: curves.png; with --table '
                      'a plot is written only when --out is given)')
  parser.add_argument('--metric', default='test/return',
                      help='scalar tag to plot (default: test/return, the evaluation return)')
  parser.add_argument('--labels', nargs='+', default=None,
                      help='one legend name per log directory (default: directory names)')
  parser.add_argument('--compare', action='store_true',
                      help='one plot per task, one line per log directory')
  parser.add_argument('--title', default=None)
  parser.add_argument('--reference', action='store_true',
                      help="draw the paper's published returns of each task (mean, min-max "
                      'band, baselines)')
  parser.add_argument('--table', action='store_true',
                      help='print a Markdown table of the runs against the published returns '
                      'at every published frame count they reached')
  args = parser.parse_args(argv)
  if args.reference and args.metric not in REFERENCE_METRICS:
    parser.error(f'--reference draws published test returns; it needs --metric '
                 f'{" or ".join(REFERENCE_METRICS)}, not {args.metric}')
  if args.labels is not None and len(args.labels) != len(args.logdirs):
    parser.error(f'--labels needs one name per log directory ({len(args.logdirs)})')
  return args


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  labels = args.labels or [pathlib.Path(d).resolve().name for d in args.logdirs]
  if len(set(labels)) < len(labels):
    labels = [str(d) for d in args.logdirs]  # Same directory names: tell them apart by path.
  out = args.out or (None if args.table else 'curves.png')
  try:
    if args.table:
      rows, notes = comparison(args.logdirs, labels)
      lines = notes + ([''] if notes else []) + (table_lines(rows) if rows else [
          'No run reached a published frame count; there is nothing to compare.'])
      print('\n'.join(lines))
    if out:
      data = load(args.logdirs, labels, args.metric)
      if args.reference:
        for note in reference_notes(data):
          print(note)
      plot(data, out, args.metric, args.compare, args.title, args.reference)
  except PlotError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if out:
    print(f'Wrote {out}.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
