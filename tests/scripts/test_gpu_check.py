"""scripts/gpu_check.py, the prepared GPU check, runs end to end on the CPU with --quick."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def gpu_check(tmp_path, *args):
  out = tmp_path / 'check.json'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  process = subprocess.run(
      [sys.executable, str(ROOT / 'scripts' / 'gpu_check.py'), '--quick', '--out', str(out),
       *args], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
  return process, json.loads(out.read_text()) if out.exists() else None


def test_quick_check_measures_updates_collection_and_training(tmp_path):
  process, report = gpu_check(tmp_path)
  assert process.returncode == 0, (process.stdout + process.stderr)[-3000:]
  assert report['quick'] is True and report['errors'] == []
  updates = report['parts']['updates']['result']
  assert [(u['precision'], u['jit']) for u in updates] == [('bfloat16', False)]
  for update in updates:
    assert update['update_seconds'] > 0 and update['policy_step_seconds'] > 0, update
    assert update['batch'] == [2, 4] and update['device'] and update['error'] is None
  collection = report['parts']['collection']['result']
  assert [(c['envs'], c['isolation']) for c in collection] == [(1, 'process'), (2, 'process')]
  assert all(c['env_steps_per_second'] > 0 for c in collection)
  training = report['parts']['training']['result']
  assert training['env_frames'] >= 2000 and training['updates'] > 0
  assert training['frames_per_minute'] > 0 and not training['interrupted']
  assert training['test_returns'] and all(len(t) == 2 for t in training['test_returns'])
  assert report['seconds'] >= sum(p['seconds'] for p in report['parts'].values()) - 1


def test_a_failing_part_is_reported_in_one_line_and_the_others_still_run(tmp_path):
  process, report = gpu_check(tmp_path, '--parts', 'training', 'collection',
                              '--train_params', '{tasks: [no_such_task]}')
  assert process.returncode == 1, process.stderr[-3000:]
  assert set(report['parts']) == {'training', 'collection'}
  [error] = report['errors']
  assert error.startswith('training: exit code 2: error: ') and 'no_such_task' in error, error
  assert len(report['parts']['collection']['result']) == 2
