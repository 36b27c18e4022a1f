"""Learning curves from metrics.jsonl: python scripts/plot.py LOGDIR [LOGDIR ...] --out FILE.

Every LOGDIR is one method: a base directory whose numbered runs (00001, 00002, ...) are its
seeds, or a single run directory. A line is the mean over a method's runs of one task, the
band spans their minimum and maximum. Without --compare all lines share one plot; with
--compare every task gets its own plot and every LOGDIR a line in it. The task of a run is
read from its config.yaml. Needs matplotlib, ruamel.yaml and this repository's dreamer
package (installed or not), not TensorFlow.
"""

import argparse
import collections
import pathlib
import sys

import numpy as np
import ruamel.yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # Uninstalled.
from dreamer.training import records  # pylint: disable=wrong-import-position


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


def plot(data, out, metric, compare=False, title=None):
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


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog='python scripts/plot.py', description=__doc__.split('\n')[0])
  parser.add_argument('logdirs', nargs='+', help='log directories, one per method')
  parser.add_argument('--out', default='curves.png', help='output file: .png, .pdf, .svg')
  parser.add_argument('--metric', default='test/return',
                      help='scalar tag to plot (default: test/return, the evaluation return)')
  parser.add_argument('--labels', nargs='+', default=None,
                      help='one legend name per log directory (default: directory names)')
  parser.add_argument('--compare', action='store_true',
                      help='one plot per task, one line per log directory')
  parser.add_argument('--title', default=None)
  args = parser.parse_args(argv)
  if args.labels is not None and len(args.labels) != len(args.logdirs):
    parser.error(f'--labels needs one name per log directory ({len(args.logdirs)})')
  return args


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  labels = args.labels or [pathlib.Path(d).resolve().name for d in args.logdirs]
  if len(set(labels)) < len(labels):
    labels = [str(d) for d in args.logdirs]  # Same directory names: tell them apart by path.
  try:
    data = load(args.logdirs, labels, args.metric)
    plot(data, args.out, args.metric, args.compare, args.title)
  except PlotError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'Wrote {args.out}.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
