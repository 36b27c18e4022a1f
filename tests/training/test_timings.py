"""timings: a run's wall time split into exclusive phases and the rest, in metrics.jsonl and
on the console."""

import contextlib
import io
import json
import re
import threading
import time

import pytest

from dreamer.training import checkpoints
from dreamer.training import timings


class Clock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now

  def advance(self, seconds):
    self.now += seconds


def test_nested_phases_count_exclusive_time_and_the_rest_is_the_remainder():
  clock = Clock()
  timer = timings.Timings(clock=clock)
  clock.advance(1.0)  # No phase: rest.
  with timer.phase('env'):
    clock.advance(2.0)
    with timer.phase('policy'):
      clock.advance(3.0)
    clock.advance(1.0)
    with timer.phase('episodes'):
      with timer.phase('summaries'):
        clock.advance(0.25)
      clock.advance(0.5)
  clock.advance(1.5)
  split = timer.split()
  assert split.wall == pytest.approx(9.25)
  assert split.seconds == pytest.approx({
      'updates': 0.0, 'env': 3.0, 'policy': 3.0, 'episodes': 0.5, 'loading': 0.0,
      'summaries': 0.25, 'checkpoint': 0.0, 'rest': 2.5})
  assert sum(split.shares.values()) == pytest.approx(1.0)
  assert split.shares['env'] == pytest.approx(3.0 / 9.25)


def test_each_reader_gets_the_time_since_its_last_split_and_an_open_phase_counts_to_now():
  clock = Clock()
  timer = timings.Timings(clock=clock)
  with timer.phase('updates'):
    clock.advance(4.0)
    first = timer.split('scalars')
    clock.advance(2.0)
  clock.advance(1.0)
  second = timer.split('scalars')
  console = timer.split('console')
  assert first.seconds['updates'] == 4.0 and first.wall == 4.0 and first.seconds['rest'] == 0
  assert second.seconds['updates'] == 2.0 and second.seconds['rest'] == 1.0
  assert console.seconds['updates'] == 6.0 and console.wall == 7.0
  timer.start()  # A new start forgets what came before.
  clock.advance(3.0)
  assert timer.split('scalars').seconds['rest'] == 3.0


def test_a_phase_that_raises_is_closed_and_the_outer_clock_runs_on():
  clock = Clock()
  timer = timings.Timings(clock=clock)
  with timer.phase('summaries'):
    with pytest.raises(ValueError):
      with timer.phase('checkpoint'):
        clock.advance(2.0)
        raise ValueError('disk full')
    clock.advance(1.0)
  split = timer.split()
  assert split.seconds['checkpoint'] == 2.0 and split.seconds['summaries'] == 1.0
  with pytest.raises(KeyError, match='unknown phase'):
    with timer.phase('dinner'):
      pass


def test_phases_of_another_thread_are_not_counted():
  clock = Clock()
  timer = timings.Timings(clock=clock)
  wrapped = timer.wrap('policy', lambda seconds: clock.advance(seconds))

  def background():
    with timer.phase('env'):  # Beside the owner's own time: it would count twice.
      wrapped(5.0)

  thread = threading.Thread(target=background)
  thread.start()
  thread.join()
  wrapped(1.0)
  split = timer.split()
  assert split.seconds['env'] == 0.0 and split.seconds['policy'] == 1.0
  assert split.seconds['rest'] == 5.0


def test_tags_and_the_console_line():
  split = timings.Split(10.0, {'updates': 8.2, 'env': 0.9, 'policy': 0.2, 'episodes': 0.1,
                               'loading': 0.1, 'summaries': 0.3, 'checkpoint': 0.1,
                               'rest': 0.1})
  assert split.line() == ('time: updates 82% env 9% policy 2% episodes 1% loading 1% '
                          'summaries 3% checkpoint 1% rest 1% (of 10.0 s)')
  tags = split.tags()
  assert tags['time/wall_seconds'] == 10.0
  assert tags['time/updates_seconds'] == 8.2
  assert tags['time/updates_share'] == pytest.approx(0.82)
  assert len(tags) == 1 + 2 * 8
  assert timings.Split(0.0, dict.fromkeys(split.seconds, 0.0)).shares['rest'] == 0.0


def time_records(run_dir):
  records = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
  return [r for r in records if 'time/wall_seconds' in r]


def check_shares(record):
  names = timings.PHASES + ('rest',)
  shares = [record[f'time/{name}_share'] for name in names]
  assert all(0 <= share <= 1 for share in shares), record
  assert sum(shares) == pytest.approx(1.0, abs=1e-6)
  seconds = sum(record[f'time/{name}_seconds'] for name in names)
  assert seconds == pytest.approx(record['time/wall_seconds'], rel=1e-6)


def test_a_run_reports_its_time_split_in_metrics_and_on_the_console(debug_run):
  logdir, _, output = debug_run
  records = time_records(logdir / '00001')
  assert len(records) == 2  # One per train log (train_log_every: train_steps), two epochs.
  assert all(r['phase'] == 'train' for r in records)
  for record in records:
    check_shares(record)
    assert record['time/updates_share'] > 0 and record['time/loading_share'] > 0
    assert record['time/summaries_share'] > 0  # The open-loop GIF of the first train log.
  # The second spans the first epoch's test phase (a test episode, a checkpoint) and the
  # second's train phase, which collects a train episode.
  last = records[-1]
  for name in ('env', 'policy', 'episodes', 'checkpoint'):
    assert last[f'time/{name}_share'] > 0, name
  lines = re.findall(r'^time: .*$', output, re.M)
  assert len(lines) == 4  # After each test iteration: two per test phase.
  pattern = (r'time: updates \d+% env \d+% policy \d+% episodes \d+% loading \d+% '
             r'summaries \d+% checkpoint \d+% rest \d+% \(of \d+\.\d s\)')
  assert all(re.fullmatch(pattern, line) for line in lines), lines


def test_a_slow_checkpoint_shows_in_its_share(debug_run, tmp_path, monkeypatch):
  from tests.scripts.test_train import SMOKE, run

  delay = 1.0
  save = checkpoints.Checkpoints.save

  def slow_save(self, number):
    time.sleep(delay)
    return save(self, number)

  monkeypatch.setattr(checkpoints.Checkpoints, 'save', slow_save)
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    run(tmp_path, dict(SMOKE, checkpoint_every=10))  # A checkpoint per test phase.
  slow = time_records(tmp_path / '00001')[-1]
  check_shares(slow)
  base = time_records(debug_run[0] / '00001')[-1]
  assert slow['time/checkpoint_seconds'] >= delay
  assert slow['time/checkpoint_share'] > base['time/checkpoint_share'] + 0.05
  first = re.findall(r'^time: .*$', out.getvalue(), re.M)[1]  # The first test phase's end.
  assert int(re.search(r'checkpoint (\d+)%', first).group(1)) >= 5
