"""The numbered-run manager spreads runs over machines: 3 training processes, one logdir."""

import collections
import json
import re
import subprocess
import sys

import pytest

from tests.scripts.test_multi_worker import worker_env
from tests.scripts.test_train import SMOKE

# One update per run (B = 5 trainer steps), so that five runs stay short.
TINY = dict(SMOKE, max_steps=5)


@pytest.mark.timeout(600)
def test_three_workers_finish_each_of_five_runs_exactly_once(tmp_path):
  logdir = tmp_path / 'logdir'
  command = [sys.executable, '-m', 'dreamer.scripts.train', '--logdir', str(logdir),
             '--params', json.dumps(TINY), '--num_runs', '5', '--ping_every', '3']
  logs = [open(tmp_path / f'worker{i}.out', 'w') for i in range(3)]
  processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                env=worker_env(tmp_path)) for log in logs]
  try:
    for process in processes:
      process.wait(timeout=540)
  finally:
    for process, log in zip(processes, logs):
      process.kill()
      process.wait()
      log.close()
  outputs = [(tmp_path / f'worker{i}.out').read_text() for i in range(3)]
  assert [p.returncode for p in processes] == [0, 0, 0], [o[-2000:] for o in outputs]
  runs = ['00001', '00002', '00003', '00004', '00005']
  assert sorted(p.name for p in logdir.iterdir()) == runs
  for run in runs:
    assert (logdir / run / 'DONE').exists() and not (logdir / run / 'FAIL').exists(), run
  events = collections.Counter()
  for output in outputs:
    assert 'All runs completed.' in output
    for run, event in re.findall(r'Worker \w+ run (\d{5}): (Start|Resume|Done)\.',
                                         output):
      events[run, event] += 1
  for run in runs:
    # Started by one worker, finished by one; a run that a worker took over (its PING went
    # stale on a starved machine) would resume, and still finish once.
    assert events[run, 'Start'] == 1 and events[run, 'Done'] == 1, (run, events)
