"""scripts/plot.py: learning curves from the metrics.jsonl files of real and synthetic runs."""

import importlib.util
import json
import pathlib
import subprocess
import shutil
import sys

import numpy as np
import pytest

from dreamer import config as config_lib

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / 'scripts' / 'plot.py'


def load_module():
  spec = importlib.util.spec_from_file_location('plot', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


plot = load_module()


def cli(*args):
  return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                        timeout=120)


def fake_run(run_dir, task, points):
  """A run directory with a config.yaml and test returns at the given (frames, return)."""
  run_dir.mkdir(parents=True)
  (run_dir / 'config.yaml').write_text(config_lib.to_yaml({'tasks': [task]}))
  with open(run_dir / 'metrics.jsonl', 'w') as f:
    for frames, value in points:
      f.write(json.dumps({'env_frames': frames, 'phase': 'test', 'test/return': value}) + '\n')
      f.write(json.dumps({'env_frames': frames, 'phase': 'train', 'model/loss': 1.0}) + '\n')
    f.write('{"env_frames": 9')  # A line still being written.


@pytest.fixture(scope='module')
def two_runs(debug_run, tmp_path_factory):
  """The shared smoke run (tests/conftest.py) as the two seeds 00001 and 00002 of a method:
  what plot.py reads of a run, its config.yaml and metrics.jsonl, copied."""
  logdir = tmp_path_factory.mktemp('logs') / 'dreamer_debug'
  for name in ('00001', '00002'):
    (logdir / name).mkdir(parents=True)
    for file in ('config.yaml', 'metrics.jsonl'):
      shutil.copy(debug_run[0] / '00001' / file, logdir / name / file)
  return logdir


def test_plot_of_two_real_runs_writes_a_png(two_runs, tmp_path):
  out = tmp_path / 'curves.png'
  result = cli(str(two_runs), '--out', str(out))
  assert result.returncode == 0, result.stderr
  assert out.stat().st_size > 10000 and out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  data = plot.load([two_runs], ['dreamer_debug'], 'test/return')
  curves = data['dummy']['dreamer_debug']
  assert len(curves) == 2  # The numbered runs 00001 and 00002 are seeds of one method.
  for frames, _ in curves:
    assert list(frames) == [0, 1000, 2000]  # Seed episode, then two test phases.


def test_aggregate_mean_and_band_over_runs():
  curves = [(np.array([0., 10., 20.]), np.array([0., 10., 20.])),
            (np.array([0., 20.]), np.array([2., 4.]))]
  grid, mean, low, high = plot.aggregate(curves)
  np.testing.assert_allclose(grid, [0, 10, 20])
  np.testing.assert_allclose(mean, [1, 6.5, 12])  # Second run interpolated to 3 at 10.
  np.testing.assert_allclose(low, [0, 3, 4])
  np.testing.assert_allclose(high, [2, 10, 20])
  short = [(np.array([0., 10.]), np.array([1., 1.])), (np.array([0., 20.]), np.array([3., 3.]))]
  _, mean, _, _ = plot.aggregate(short)
  np.testing.assert_allclose(mean, [2, 2, 3])  # The short run ends at 10 frames.


def test_a_resumed_run_is_drawn_from_the_checkpoint_it_resumed_from(tmp_path):
  fake_run(tmp_path / 'run', 'cartpole_balance', [(0, 300), (1000, 100), (2000, 200)])
  with open(tmp_path / 'run' / 'metrics.jsonl', 'a') as f:
    # The first process died writing a line; the second restored the checkpoint at 1000.
    f.write('\n' + json.dumps({'env_frames': 1000, 'phase': 'resume'}) + '\n')
    f.write(json.dumps({'env_frames': 2000, 'phase': 'test', 'test/return': 400}) + '\n')
  frames, values = plot.read_curve(tmp_path / 'run', 'test/return')
  np.testing.assert_array_equal(frames, [0, 1000, 2000])
  np.testing.assert_array_equal(values, [300, 100, 400])  # Not the mean of 200 and 400.


def test_compare_puts_tasks_side_by_side(tmp_path):
  for method, offset in (('dreamer', 0), ('planet', -5)):
    for seed in (1, 2):
      for task in ('walker_walk', 'cheetah_run'):
        fake_run(tmp_path / method / task / f'0000{seed}', task,
                 [(0, offset), (1000, offset + seed), (2000, offset + 2 * seed)])
  data = plot.load([tmp_path / 'dreamer', tmp_path / 'planet'], ['dreamer', 'planet'],
                   'test/return')
  assert sorted(data) == ['cheetah_run', 'walker_walk']
  assert sorted(data['walker_walk']) == ['dreamer', 'planet']
  assert len(data['walker_walk']['planet']) == 2
  for out in ('compare.pdf', 'compare.png'):
    result = cli(str(tmp_path / 'dreamer'), str(tmp_path / 'planet'), '--compare',
                 '--out', str(tmp_path / out), '--title', 'Two methods')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / out).stat().st_size > 1000
  assert (tmp_path / 'compare.pdf').read_bytes()[:4] == b'%PDF'


def test_empty_or_wrong_logdirs_fail_with_one_line(tmp_path):
  (tmp_path / 'empty').mkdir()
  fake_run(tmp_path / 'only_train' / '00001', 'dummy', [])
  cases = [
      ([str(tmp_path / 'empty')], 'no metrics.jsonl under'),
      ([str(tmp_path / 'missing')], 'does not exist'),
      ([str(tmp_path / 'only_train')], "no 'test/return' values"),
  ]
  for args, message in cases:
    result = cli(*args, '--out', str(tmp_path / 'x.png'))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
  assert not (tmp_path / 'x.png').exists()
  fake_run(tmp_path / 'ok' / '00001', 'dummy', [(0, 1.0), (10, 2.0)])
  result = cli(str(tmp_path / 'ok'), '--out', str(tmp_path / 'x.unknown'))
  assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_plot_script_does_not_import_tensorflow(tmp_path):
  fake_run(tmp_path / 'ok' / '00001', 'dummy', [(0, 1.0), (10, 2.0)])
  argv = ['plot.py', str(tmp_path / 'ok'), '--out', str(tmp_path / 'a.png')]
  code = (f'import runpy, sys\nsys.argv = {argv!r}\ntry:\n'
          f'  runpy.run_path({str(SCRIPT)!r}, run_name="__main__")\n'
          'except SystemExit:\n  pass\nprint("tensorflow" in sys.modules)')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
  assert result.stdout.strip().splitlines()[-1] == 'False', result.stderr
  assert (tmp_path / 'a.png').exists()


def evaluated_run(run_dir, task, seed_returns, evaluations):
  """A run with random seed episodes (updates 0) and evaluations at (frames, score)."""
  run_dir.mkdir(parents=True)
  (run_dir / 'config.yaml').write_text(config_lib.to_yaml({'tasks': [task]}))
  with open(run_dir / 'metrics.jsonl', 'w') as f:
    for index, value in enumerate(seed_returns):
      f.write(json.dumps({'env_frames': 1000 * index, 'phase': 'test', 'updates': 0,
                          'test/return': value}) + '\n')
    for frames, score in evaluations:
      for tag in ('test/return', 'test/score'):
        f.write(json.dumps({'env_frames': frames, 'phase': 'test', 'updates': frames // 10,
                            tag: score}) + '\n')


@pytest.fixture
def cheetah_logdir(tmp_path):
  """Two seeds of cheetah_run evaluated every 10k frames (one to 114k, one to 94k) and a
  dummy run, which has no published figures."""
  logdir = tmp_path / 'curve_cpu'
  evaluated_run(logdir / '00001', 'cheetah_run', [2, 4],
                [(f, f / 1000) for f in range(14000, 120000, 10000)])
  evaluated_run(logdir / '00002', 'cheetah_run', [3, 5],
                [(f, f / 500) for f in range(14000, 100000, 10000)])
  evaluated_run(logdir / 'dummy' / '00001', 'dummy', [1], [(2000, 3), (4000, 5)])
  return logdir


def test_evaluation_near_stays_within_one_evaluation_period():
  evals = [(14000, 1.0), (24000, 2.0), (34000, 3.0)]
  assert plot.evaluation_near(evals, 5000) == (14000, 1.0)  # 9000 from it: within 10000.
  assert plot.evaluation_near(evals, 30000) == (34000, 3.0)
  assert plot.evaluation_near(evals, 44000) == (34000, 3.0)
  assert plot.evaluation_near(evals, 44001) is None
  assert plot.evaluation_near([(5000, 7.0)], 10000) == (5000, 7.0)  # Period: its frames.
  assert plot.evaluation_near([(5000, 7.0)], 10001) is None
  assert plot.evaluation_near([], 5000) is None


def test_table_compares_each_run_with_the_published_seeds(cheetah_logdir, tmp_path):
  result = cli(str(cheetah_logdir), '--table')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0] == "No published figures for task 'dummy'; it is not in the table."
  rows = {line.split(' | ')[2]: line.split(' | ') for line in lines if 'cheetah_run' in line}
  assert sorted(rows) == ['105000', '5000']  # 205000 lies beyond both runs' reach.
  row = rows['105000']
  assert row[3] == '00001: 104 (104000), 00002: -'  # 00002 ends 11000 before it.
  assert row[4:7] == ['104', '79, 223, 109, 136, 91', '128']
  assert row[7] == '00001: 3, 00002: 4 |'  # The mean of each run's seed episodes.
  assert rows['5000'][3] == '00001: 14 (14000), 00002: 28 (14000)'
  assert not (tmp_path / 'curves.png').exists() and 'Wrote' not in result.stdout
  (tmp_path / 'none').mkdir()
  evaluated_run(tmp_path / 'none' / '00001', 'walker_walk', [1], [(500, 1.0), (1000, 2.0)])
  result = cli(str(tmp_path / 'none'), '--table')
  assert result.returncode == 0, result.stderr
  assert "reached none of its published frame counts (5000, ...)" in result.stdout
  assert 'there is nothing to compare' in result.stdout


def test_reference_draws_the_published_band_up_to_the_runs_reach(cheetah_logdir, tmp_path):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  data = plot.load([cheetah_logdir], ['curve_cpu'], 'test/return')
  assert plot.reached(data, 'cheetah_run') == 114000
  assert plot.reference_notes(data) == [
      "No published figures for task 'dummy'; it is drawn without them."]
  fig, ax = plt.subplots()
  plot.draw_reference(ax, 'cheetah_run', 114000)
  curve, = [line for line in ax.lines if line.get_label().startswith('Dreamer, published')]
  np.testing.assert_array_equal(curve.get_xdata(), [5000, 105000])  # Not 205000 and on.
  np.testing.assert_allclose(curve.get_ydata(), [2.42, 127.64])
  band, = ax.collections
  np.testing.assert_allclose(band.get_paths()[0].vertices[:, 1].max(), 223.0)  # Seed 1.
  labels = sorted(line.get_label() for line in ax.lines if line is not curve)
  assert labels == ['A3C, states, 1e8 frames: 214', 'D4PG, pixels, 1e8 frames: 524',
                    'PlaNet, pixels, 1e6 frames: 662', 'SLAC, pixels, 3e6 frames: 880']
  plt.close(fig)
  short = {'cheetah_run': {'m': [(np.array([0., 4000.]), np.array([1., 2.]))]}}
  assert 'before its first published point (5000)' in plot.reference_notes(short)[0]
  out = tmp_path / 'reference.png'
  result = cli(str(cheetah_logdir), '--reference', '--compare', '--out', str(out))
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == [
      "No published figures for task 'dummy'; it is drawn without them.", f'Wrote {out}.']
  assert out.stat().st_size > 10000
  result = cli(str(cheetah_logdir), '--reference', '--metric', 'model/loss')
  assert result.returncode == 2 and '--reference draws published test returns' in result.stderr
