"""Tests of the experiment run manager: markers, claiming, resuming, takeover, shared base dirs."""

import datetime
import glob
import os
import pickle
import random
import re
import shutil
import tempfile
import threading
import time

import pytest

from dreamer.training import runs


class _Died(BaseException):
  """Stands for a killed worker: not an Exception, so the manager writes no DONE or FAIL."""


def _start_fn(run_dir):
  assert not os.path.exists(os.path.join(run_dir, 'DONE'))
  assert not os.path.exists(os.path.join(run_dir, 'started'))
  assert not os.path.exists(os.path.join(run_dir, 'resumed'))
  _write(run_dir, 'started', '\n')
  _save_numbers(run_dir, [])
  return []


def _resume_fn(run_dir):
  assert not os.path.exists(os.path.join(run_dir, 'DONE'))
  assert os.path.exists(os.path.join(run_dir, 'started'))
  _write(run_dir, 'resumed', '\n')
  return _load_numbers(run_dir)


def _process_fn(run_dir, numbers):
  """Continues from the numbers already on disk, like training continues from a checkpoint."""
  assert os.path.exists(os.path.join(run_dir, 'started'))
  while len(numbers) < 10:
    number = random.uniform(0, 0.01)
    time.sleep(number)
    numbers.append(number)
    _save_numbers(run_dir, numbers)
    yield number


def _dying_process_fn(die_at):
  produced = [0]

  def process_fn(run_dir, numbers):
    for number in _process_fn(run_dir, numbers):
      produced[0] += 1
      if produced[0] >= die_at:
        raise _Died()
      yield number
  return process_fn


def _workers(count, prefix, make_process_fn, **kwargs):
  """Runs `count` workers in threads sharing one base dir; returns the errors they raised."""
  errors = []

  def target(name):
    try:
      runs.run_experiments(
          process_fn=make_process_fn(), worker_name=name, log=lambda message: None, **kwargs)
    except _Died:
      pass
    except BaseException as error:  # pylint: disable=broad-except
      errors.append(error)

  threads = [threading.Thread(target=target, args=('%s%d' % (prefix, i),)) for i in range(count)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  return errors


def _count(basedir, name):
  return len(glob.glob(os.path.join(basedir, '*', name)))


def _write(run_dir, name, text):
  with open(os.path.join(run_dir, name), 'w') as file_:
    file_.write(text)


def _read(run_dir, name):
  with open(os.path.join(run_dir, name)) as file_:
    return file_.read()


def _save_numbers(run_dir, numbers):
  with open(os.path.join(run_dir, 'numbers'), 'wb') as file_:
    pickle.dump(numbers, file_)


def _load_numbers(run_dir):
  with open(os.path.join(run_dir, 'numbers'), 'rb') as file_:
    return pickle.load(file_)


def _write_ping(run_dir, worker, age=0.0, truncate=False):
  os.makedirs(run_dir, exist_ok=True)
  stamp = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
  data = pickle.dumps((worker, stamp))
  with open(os.path.join(run_dir, 'PING'), 'wb') as file_:
    file_.write(data[:len(data) // 2] if truncate else data)


def _ping_owner(run_dir):
  with open(os.path.join(run_dir, 'PING'), 'rb') as file_:
    return pickle.load(file_)[0]


def _finish_fn(calls):
  def process_fn(run_dir, info):
    calls.append(os.path.basename(run_dir))
    yield 1.0
  return process_fn


@pytest.fixture
def live_dir(tmp_path):
  """A base dir for tests whose live workers must never look stale to each other.

  Staleness is 2 x ping_every of wall time, 1 s in these tests. On a disk that is busy writing
  back (other tests' replays and checkpoints, or `dd` beside the test), creating and renaming
  one small file was measured to take up to 2.4 s, so a worker's PING turned stale while the
  worker was alive and another resumed its run. A live worker that stalls for longer than the
  threshold is taken over by design (the README says to choose ping_every well above such
  pauses); these tests are about the protocol, so they use memory-backed /dev/shm where it can
  be written, and tmp_path elsewhere.
  """
  if os.path.isdir('/dev/shm') and os.access('/dev/shm', os.W_OK | os.X_OK):
    path = tempfile.mkdtemp(prefix='test_runs_', dir='/dev/shm')
    yield path
    shutil.rmtree(path, ignore_errors=True)
  else:
    yield str(tmp_path)


def test_no_kills(live_dir):
  basedir = live_dir
  errors = _workers(
      20, 'worker', lambda: _process_fn, logdir=basedir, start_fn=_start_fn,
      resume_fn=_resume_fn, num_runs=100, ping_every=0.5)
  assert errors == []
  assert _count(basedir, 'DONE') == 100
  assert _count(basedir, 'PING') == 100
  assert _count(basedir, 'started') == 100
  assert _count(basedir, 'resumed') == 0
  assert _count(basedir, 'FAIL') == 0
  for run_dir in glob.glob(os.path.join(basedir, '*', '')):
    assert len(_load_numbers(run_dir)) == 10
  assert glob.glob(os.path.join(basedir, '*', '.*')) == []  # No temp files left behind.


def test_dying_workers(live_dir):
  basedir = live_dir
  # Dying workers do not resume each other's runs, so each leaves exactly one run half done.
  errors = _workers(
      20, 'dying', lambda: _dying_process_fn(15), logdir=basedir, start_fn=_start_fn,
      resume_fn=_resume_fn, num_runs=100, ping_every=0.5, resume_runs=False)
  assert errors == []
  unfinished = {
      run_dir: _load_numbers(run_dir)
      for run_dir in glob.glob(os.path.join(basedir, '*', ''))
      if not os.path.exists(os.path.join(run_dir, 'DONE'))}
  assert len(unfinished) == 20
  assert all(len(numbers) == 5 for numbers in unfinished.values())
  assert all(os.path.exists(os.path.join(run_dir, 'PING')) for run_dir in unfinished)
  assert _count(basedir, 'DONE') == 20
  assert _count(basedir, 'FAIL') == 0

  errors = _workers(
      20, 'fresh', lambda: _process_fn, logdir=basedir, start_fn=_start_fn,
      resume_fn=_resume_fn, num_runs=100, ping_every=0.5)
  assert errors == []
  assert _count(basedir, 'DONE') == 100
  assert _count(basedir, 'PING') == 100
  assert _count(basedir, 'FAIL') == 0
  assert _count(basedir, 'started') == 100
  resumed = {os.path.dirname(path) for path in glob.glob(os.path.join(basedir, '*', 'resumed'))}
  assert resumed == {run_dir.rstrip(os.sep) for run_dir in unfinished}
  for run_dir in glob.glob(os.path.join(basedir, '*', '')):
    numbers = _load_numbers(run_dir)
    assert len(numbers) == 10
    if run_dir in unfinished:
      assert numbers[:5] == unfinished[run_dir]  # Continued where the dead worker stopped.


def test_default_flags_use_run_one_and_resume_it(tmp_path):
  run_dir = os.path.join(str(tmp_path), '00001')
  logs = []

  def dying(run_dir, info):
    yield 1.0
    raise KeyboardInterrupt()

  with pytest.raises(KeyboardInterrupt):
    runs.run_experiments(str(tmp_path), dying, start_fn=_start_fn, worker_name='a', log=logs.append)
  assert logs == [
      "Worker a run 00001: Create directory '%s'." % run_dir, 'Worker a run 00001: Start.']
  assert sorted(os.listdir(str(tmp_path))) == ['00001']
  assert os.path.exists(os.path.join(run_dir, 'PING'))
  assert not os.path.exists(os.path.join(run_dir, 'DONE'))
  assert not os.path.exists(os.path.join(run_dir, 'FAIL'))

  logs = []
  finished = runs.run_experiments(
      str(tmp_path), _process_fn, resume_fn=lambda run_dir: [], worker_name='b', log=logs.append)
  assert finished == [run_dir]
  assert logs == ['Worker b run 00001: Resume.', 'Worker b run 00001: Done.', 'All runs completed.']
  assert _read(run_dir, 'DONE') == '\n'
  assert len(_load_numbers(run_dir)) == 10

  logs, calls = [], []
  assert runs.run_experiments(str(tmp_path), _finish_fn(calls), log=logs.append) == []
  assert calls == [] and logs == ['All runs completed.']


def test_default_worker_name_is_uuid_hex(tmp_path):
  logs = []
  runs.run_experiments(str(tmp_path), _finish_fn([]), log=logs.append)
  assert re.fullmatch(r'Worker [0-9a-f]{32} run 00001: Start\.', logs[1])


def test_without_resume_every_run_starts_fresh(tmp_path):
  basedir = str(tmp_path)
  calls = []
  _write_ping(os.path.join(basedir, '00003'), 'dead', age=100)
  finished = runs.run_experiments(basedir, _finish_fn(calls), num_runs=5, resume_runs=False)
  assert sorted(calls) == ['00001', '00002', '00004', '00005']
  assert sorted(finished) == [os.path.join(basedir, name) for name in sorted(calls)]
  assert _count(basedir, 'DONE') == 4
  assert not os.path.exists(os.path.join(basedir, '00003', 'DONE'))
  calls.clear()
  assert runs.run_experiments(basedir, _finish_fn(calls), num_runs=5, resume_runs=False) == []
  assert calls == []


def test_unbounded_runs_count_up(tmp_path):
  basedir = str(tmp_path)
  calls = []

  def stop_at(last):
    def process_fn(run_dir, info):
      calls.append(os.path.basename(run_dir))
      if len(calls) == last:
        raise _Died()
      yield 1.0
    return process_fn

  with pytest.raises(_Died):
    runs.run_experiments(basedir, stop_at(3), num_runs=0, resume_runs=False, log=lambda m: None)
  assert calls == ['00001', '00002', '00003']
  # 00003 is unfinished, but without resuming the next invocation moves on to a fresh number.
  with pytest.raises(_Died):
    runs.run_experiments(basedir, stop_at(5), num_runs=None, resume_runs=False, log=lambda m: None)
  assert calls == ['00001', '00002', '00003', '00004', '00005']
  assert sorted(os.listdir(basedir)) == ['00001', '00002', '00003', '00004', '00005']
  assert _count(basedir, 'DONE') == 3


@pytest.mark.parametrize('where', ['process_fn', 'start_fn'])
def test_exception_writes_fail_and_done_then_reraises(tmp_path, where):
  run_dir = os.path.join(str(tmp_path), '00001')
  logs = []

  def broken(run_dir):
    raise ValueError('boom in hook')

  def process_fn(run_dir, info):
    yield 1.0
    raise ValueError('boom in process')

  with pytest.raises(ValueError, match='boom'):
    runs.run_experiments(
        str(tmp_path), process_fn, start_fn=broken if where == 'start_fn' else None,
        worker_name='w', log=logs.append)
  fail = _read(run_dir, 'FAIL')
  assert fail.startswith('Traceback (most recent call last):')
  assert 'ValueError: boom in %s' % ('hook' if where == 'start_fn' else 'process') in fail
  assert _read(run_dir, 'DONE') == '\n'
  assert logs[-2:] == ['Worker w run 00001: Exception:\n' + fail, 'Worker w run 00001: Failed.']


def test_takeover_of_stale_run_stops_first_worker_without_done(live_dir):
  basedir = live_dir
  run_dir = os.path.join(basedir, '00001')
  running, released, gave_up = threading.Event(), threading.Event(), threading.Event()
  first_logs, first_result, cleaned_up = [], [], []

  def first_log(message):
    first_logs.append(message)
    if message.endswith('Taken over by other worker.'):
      gave_up.set()

  def slow_process_fn(run_dir, info):
    running.set()
    try:
      deadline = time.time() + 10
      while not released.is_set() and time.time() < deadline:
        time.sleep(0.01)
        yield 0.0
    finally:
      cleaned_up.append(True)

  # The first worker's heartbeat is slow (every 2 s, so that it does not refresh the stale
  # PING below before the second worker reads it), the second's stale threshold short.
  first = threading.Thread(target=lambda: first_result.append(runs.run_experiments(
      basedir, slow_process_fn, ping_every=2.0, worker_name='first', log=first_log)))
  first.start()
  assert running.wait(10)
  # Pretend the first worker stalled: its last heartbeat is long ago.
  _write_ping(run_dir, 'first', age=60)

  def second_process_fn(run_dir, info):
    yield 1.0
    # The first worker's next heartbeat sees our name and it gives up, without writing DONE.
    assert gave_up.wait(10)
    assert not os.path.exists(os.path.join(run_dir, 'DONE'))
    yield 2.0

  second_logs = []
  try:
    finished = runs.run_experiments(
        basedir, second_process_fn, ping_every=0.05, worker_name='second', log=second_logs.append)
  finally:
    released.set()
    first.join()
  assert finished == [run_dir] and first_result == [[]]
  assert second_logs[0] == 'Worker second run 00001: Resume.'
  assert 'Worker first run 00001: Taken over by other worker.' in first_logs
  assert not any(log.endswith('Done.') for log in first_logs)
  assert cleaned_up == [True]
  assert _ping_owner(run_dir) == 'second'
  assert _read(run_dir, 'DONE') == '\n'


def test_live_run_of_other_worker_is_left_alone(tmp_path):
  run_dir = os.path.join(str(tmp_path), '00001')
  _write_ping(run_dir, 'other')
  stop = threading.Event()

  def heartbeat():
    while not stop.wait(0.01):
      _write_ping(run_dir, 'other')

  thread = threading.Thread(target=heartbeat)
  thread.start()
  calls = []
  try:  # Stale after 1 s without a heartbeat: far beyond a busy machine's thread stalls.
    assert runs.run_experiments(str(tmp_path), _finish_fn(calls), ping_every=0.5) == []
  finally:
    stop.set()
    thread.join()
  assert calls == [] and _ping_owner(run_dir) == 'other'


@pytest.mark.parametrize('truncate', [True, False])
def test_truncated_ping_is_stale(tmp_path, monkeypatch, truncate):
  # A fresh, valid ping only turns stale for the second pass (after sleeping 2 * 0.3 s); a
  # truncated one is resumed on the first. The order of events shows which, whatever the
  # machine's speed.
  run_dir = os.path.join(str(tmp_path), '00001')
  _write_ping(run_dir, 'other', truncate=truncate)
  events = []
  real_sleep = time.sleep

  def sleep(seconds):
    if seconds == pytest.approx(0.6):
      events.append('second pass')
    real_sleep(seconds)

  monkeypatch.setattr(runs.time, 'sleep', sleep)
  finished = runs.run_experiments(
      str(tmp_path), _finish_fn([]), ping_every=0.3, resume_fn=lambda d: events.append('resume'),
      log=lambda m: None)
  assert finished == [run_dir]
  assert events == (['resume', 'second pass'] if truncate else ['second pass', 'resume'])


def test_logdir_that_is_a_file_is_rejected(tmp_path):
  path = tmp_path / 'file'
  path.write_text('')
  for logdir, problem in [(path, 'is a file'), (path / 'sub', "lies under the file '%s'" % path)]:
    with pytest.raises(runs.RunDirError) as info:
      runs.run_experiments(str(logdir), _finish_fn([]), log=pytest.fail)
    message = str(info.value)
    assert '\n' not in message and str(logdir) in message and problem in message
  assert isinstance(info.value, ValueError)


def test_logdir_that_is_not_writable_is_rejected(tmp_path, monkeypatch):
  # Faked, because root (as in containers) may write anywhere whatever the mode bits say.
  monkeypatch.setattr(os, 'access', lambda path, mode: False)
  logdir = tmp_path / 'logdir'
  with pytest.raises(runs.RunDirError) as info:
    runs.run_experiments(str(logdir), _finish_fn([]), log=pytest.fail)
  assert str(info.value) == "Log directory '%s' (its ancestor '%s') is not writable." % (
      logdir, tmp_path)
  assert not logdir.exists()


def test_a_failing_check_leaves_the_run_unclaimed_and_unmarked(tmp_path):
  logdir = str(tmp_path)
  run_dir = os.path.join(logdir, '00001')
  _write_ping(run_dir, 'dead', age=3600)  # A killed worker's run: it would be resumed.
  ping = open(os.path.join(run_dir, 'PING'), 'rb').read()
  checked = []

  def check_fn(path):
    checked.append(path)
    raise ValueError('config.yaml is damaged')

  def process_fn(path, info):
    raise AssertionError('must not run')

  with pytest.raises(ValueError, match='damaged'):
    runs.run_experiments(logdir, process_fn, num_runs=1, check_fn=check_fn, log=lambda m: None)
  assert checked == [run_dir]
  assert sorted(os.listdir(run_dir)) == ['PING']
  assert open(os.path.join(run_dir, 'PING'), 'rb').read() == ping
  # A run that would be skipped is not checked.
  _write(run_dir, 'DONE', '\n')
  assert runs.run_experiments(logdir, process_fn, num_runs=1, check_fn=check_fn,
                              log=lambda m: None) == []
  assert checked == [run_dir]


def test_reopen_fn_resumes_a_finished_run_but_not_a_failed_one(tmp_path):
  logdir = str(tmp_path)
  finished, failed = os.path.join(logdir, '00001'), os.path.join(logdir, '00002')
  for run_dir in (finished, failed):
    _write_ping(run_dir, 'old', age=3600)
    _write(run_dir, 'DONE', '\n')
  _write(failed, 'FAIL', 'Traceback ...')
  asked, calls, logs = [], [], []

  def reopen_fn(run_dir):
    asked.append(os.path.basename(run_dir))
    assert os.path.exists(os.path.join(run_dir, 'DONE'))  # Asked before anything changes.
    return True

  def process_fn(run_dir, info):
    assert not os.path.exists(os.path.join(run_dir, 'DONE'))
    calls.append((os.path.basename(run_dir), info))
    yield 1.0

  done = runs.run_experiments(logdir, process_fn, num_runs=2, resume_fn=lambda d: 'resumed',
                              reopen_fn=reopen_fn, worker_name='w', log=logs.append)
  assert done == [finished] and asked == ['00001'] and calls == [('00001', 'resumed')]
  assert 'Worker w run 00001: Resume.' in logs
  assert _read(finished, 'DONE') == '\n' and _read(failed, 'FAIL') == 'Traceback ...'
  # Declined, or with --resume_runs False, a finished run stays as it is, unasked.
  asked.clear()
  assert runs.run_experiments(logdir, process_fn, num_runs=1, reopen_fn=lambda d: False,
                              log=logs.append) == []
  assert runs.run_experiments(logdir, process_fn, num_runs=1, resume_runs=False,
                              reopen_fn=reopen_fn, log=logs.append) == []
  assert asked == [] and len(calls) == 1
