"""scripts/benchmark.py runs on CPU at a tiny shape and reports every measurement."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
METRICS = {'build_seconds', 'parameters', 'trace_seconds', 'update_seconds',
           'updates_per_second', 'policy_trace_seconds', 'policy_step_seconds',
           'collect_steps_per_second', 'collect_frames_per_second', 'peak_memory'}


def test_benchmark_prints_one_json_line_per_measurement():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
  params = '{defaults: [dreamer, debug], cnn_depth: 4, imagination_horizon: 2, num_envs: 2}'
  process = subprocess.run(
      [sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), '--params', params,
       '--batch', '2', '4', '--updates', '2', '--warmup', '1', '--policy_steps', '3',
       '--collect_steps', '10'],
      capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
  assert process.returncode == 0, process.stderr[-3000:]
  lines = [json.loads(line) for line in process.stdout.splitlines()]
  records = {r['metric']: r for r in lines}
  assert len(records) == len(lines) and set(records) == METRICS
  for record in lines:
    assert record['value'] > 0, record
    assert record['batch'] == [2, 4] and record['task'] == 'dummy'
    assert record['precision'] == 32 and record['jit'] is False and record['replicas'] == 1
    assert record['device'] and record['tensorflow']
  assert records['peak_memory']['unit'] == 'MiB' and records['peak_memory']['value'] > 100
  # The debug preset repeats each action 50 times.
  ratio = records['collect_frames_per_second']['value'] / records['collect_steps_per_second'][
      'value']
  assert abs(ratio - 50) < 1e-3


def test_env_sweep_covers_every_isolation_and_count_without_tensorflow():
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
  code = ('import sys, runpy; sys.argv = ["benchmark.py", "--env_sweep", "dummy", '
          '"--sweep_steps", "3"]; runpy.run_path("scripts/benchmark.py", run_name="__main__"); '
          'assert "tensorflow" not in sys.modules')
  process = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           env=env, timeout=300, cwd=ROOT)
  assert process.returncode == 0, process.stderr[-3000:]
  lines = [json.loads(line) for line in process.stdout.splitlines()]
  assert {(r['isolation'], r['envs']) for r in lines} == {
      (i, n) for i in ('none', 'thread', 'process') for n in (1, 2, 4)}
  assert all(r['metric'] == 'env_steps_per_second' and r['value'] > 0 for r in lines)
