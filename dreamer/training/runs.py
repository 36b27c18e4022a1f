"""Experiment run manager (SPEC 1.4): turns one base directory into numbered runs that several
worker processes can share, with PING/DONE/FAIL marker files and a heartbeat thread."""

import contextlib
import datetime
import itertools
import os
import pickle
import random
import threading
import time
import traceback
import uuid


class RunDirError(ValueError):
  """The base log directory cannot hold run directories."""


class Resumable(Exception):
  """process_fn stopped for a reason after which the same command resumes the run, such as a
  lost worker of distribute: multi_worker: like a kill, it leaves no DONE or FAIL."""


class _Conflict(Exception):
  """Another worker owns the run, or its PING file could not be read or written."""


def run_experiments(logdir, process_fn, num_runs=1, resume_runs=True, ping_every=0,
                    start_fn=None, resume_fn=None, worker_name=None, log=print, check_fn=None,
                    reopen_fn=None):
  """Visits run dirs <logdir>/00001 ... and runs process_fn on each one this worker may claim.

  process_fn(run_dir, info) returns an iterable of scores (normally a generator); it is iterated
  to the end unless another worker takes the run over. `info` is the return value of
  start_fn(run_dir) for a new run or resume_fn(run_dir) for a resumed one (None without hooks).
  num_runs: N > 0 visits 1..N in random order (twice if ping_every > 0); 0 or None is unbounded.
  ping_every: heartbeat interval in seconds; a PING older than 2 * ping_every is stale.

  check_fn(run_dir), if given, runs before this worker claims a run it would start or resume;
  an exception from it propagates with nothing of the run written (no PING, FAIL or DONE), so
  that input the user can fix, such as a damaged config.yaml, leaves the run as it was.

  reopen_fn(run_dir), if given and resume_runs is on, is asked about every run that finished
  without a failure (DONE, no FAIL); when it returns True (a longer schedule, say) the run
  resumes like an unfinished one, and its DONE is removed once this worker has claimed it.

  Returns the list of run directories this call finished (wrote DONE for without a failure).
  An Exception from a hook or process_fn writes FAIL and DONE and is re-raised, except
  Resumable, which propagates without markers like the following. Any other
  BaseException (KeyboardInterrupt, SystemExit, ...) propagates without writing markers, so the
  run stays resumable: that is how a killed worker looks, and how tests simulate one.
  Raises RunDirError before any work when logdir is, or lies under, a file or is not writable.
  """
  logdir = os.path.abspath(os.path.expanduser(str(logdir)))
  check_logdir(logdir)
  if num_runs is not None and num_runs < 0:
    raise ValueError('num_runs must be >= 0 or None, got %r.' % (num_runs,))
  worker_name = worker_name or uuid.uuid4().hex
  ping_every = ping_every or 0
  finished = []
  for number in _run_numbers(num_runs, ping_every):
    run = _Run(os.path.join(logdir, '%05d' % number), worker_name, ping_every, log)
    try:
      mode = run.decide(resume_runs, reopen_fn)
      if mode is None:
        continue
      if check_fn:
        check_fn(run.dir)
      run.claim()
      if mode == 'reopen':
        with contextlib.suppress(FileNotFoundError):  # A worker that claimed it at once.
          os.remove(run.path('DONE'))
    except _Conflict:
      run.log('Leave to other worker.')
      continue
    run.log('Start.' if mode == 'start' else 'Resume.')
    if run.execute(start_fn if mode == 'start' else resume_fn, process_fn):
      finished.append(run.dir)
  log('All runs completed.')
  return finished


def check_logdir(logdir):
  """Raises RunDirError when logdir is, or lies under, a file or is not writable."""
  existing = logdir
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    where = 'is a file' if existing == logdir else "lies under the file '%s'" % existing
    raise RunDirError("Log directory '%s' %s, not a directory." % (logdir, where))
  where = '' if existing == logdir else " (its ancestor '%s')" % existing
  if not os.access(existing, os.W_OK | os.X_OK):
    raise RunDirError("Log directory '%s'%s is not writable." % (logdir, where))
  # Permission bits do not tell the whole story (root, read-only or special file
  # systems), so try to write for real.
  try:
    os.makedirs(logdir, exist_ok=True)
    probe = os.path.join(logdir, '.write-test-%s' % uuid.uuid4().hex)
    with open(probe, 'w') as f:
      f.write('x')
    os.remove(probe)
  except OSError as e:
    raise RunDirError("Log directory '%s'%s is not writable: %s." % (
        logdir, where, e.strerror or e)) from None


def _run_numbers(num_runs, ping_every):
  if num_runs:
    # A private generator: the training code may seed the global one, and identically seeded
    # workers would all walk the runs in the same order and collide on every claim.
    order = random.Random().sample(range(1, num_runs + 1), num_runs)
    yield from order
    if ping_every > 0:
      # Workers that died during the first pass leave PINGs that only now turn stale.
      time.sleep(2 * ping_every)
      yield from order
  else:
    # Unbounded: wait until dead workers' runs are stale so they are finished before new ones.
    if ping_every > 0:
      time.sleep(2 * ping_every)
    yield from itertools.count(1)


def _write_atomic(path, data):
  # Replace, never rewrite in place: a worker killed mid-write must not leave a half file. The
  # leading dot keeps leftovers of such a kill out of globs like */PING.
  directory, name = os.path.split(path)
  temp = os.path.join(directory, '.%s.%s.tmp' % (name, uuid.uuid4().hex))
  try:
    with open(temp, 'wb') as file_:
      file_.write(data)
    os.replace(temp, path)
  except BaseException:
    try:
      os.remove(temp)
    except OSError:
      pass
    raise


class _Run:
  """One run directory seen from one worker: decision, claim, heartbeat and markers."""

  def __init__(self, run_dir, worker, ping_every, log):
    self.dir = run_dir
    self._worker = worker
    self._ping_every = ping_every
    self._log = log

  def log(self, message):
    self._log('Worker %s run %s: %s' % (self._worker, os.path.basename(self.dir), message))

  def decide(self, resume_runs, reopen_fn=None):
    """Returns 'start', 'resume', 'reopen' (resume a finished run) or None (skip); raises
    _Conflict when PING cannot be read."""
    has_ping = os.path.exists(self.path('PING'))
    has_done = os.path.exists(self.path('DONE'))
    if not has_ping and not has_done:
      return 'start'
    if not resume_runs:
      return None
    if has_done:
      failed = os.path.exists(self.path('FAIL'))
      return 'reopen' if reopen_fn and not failed and reopen_fn(self.dir) else None
    try:
      owner, age = self._read_ping()
    except OSError as error:
      raise _Conflict() from error
    # With heartbeats off every unfinished run counts as abandoned, whatever the clocks say.
    stale = self._ping_every <= 0 or age >= 2 * self._ping_every
    return 'resume' if owner == self._worker or stale else None

  def claim(self):
    try:
      if not os.path.isdir(self.dir):
        self.log("Create directory '%s'." % self.dir)
        os.makedirs(self.dir, exist_ok=True)
      self._write_ping()
      # Workers that decided at the same moment all wrote their name; the last write wins.
      time.sleep(self._ping_every)
      if self._read_ping()[0] != self._worker:
        raise _Conflict()
      self._write_ping()
    except OSError as error:
      raise _Conflict() from error

  def execute(self, init_fn, process_fn):
    """Runs the hook and process_fn; returns True when this worker wrote DONE normally."""
    stop, taken = threading.Event(), threading.Event()
    heartbeat = None
    if self._ping_every > 0:
      heartbeat = threading.Thread(target=self._heartbeat, args=(stop, taken), daemon=True)
      heartbeat.start()
    try:
      info = init_fn(self.dir) if init_fn else None
      scores = process_fn(self.dir, info)
      for _ in scores:
        if taken.is_set():
          break
      if taken.is_set():
        # Let the generator run its cleanup now rather than whenever it is collected.
        if hasattr(scores, 'close'):
          scores.close()
        # Deliberate fix of the original: the new owner decides when the run is DONE.
        self.log('Taken over by other worker.')
        return False
      self._write_marker('DONE', b'\n')
      self.log('Done.')
      return True
    except Resumable:
      self.log('Stopped; the run stays resumable.')
      raise
    except Exception:
      message = traceback.format_exc()
      if not taken.is_set():
        self.log('Exception:\n' + message)
        self.log('Failed.')
        try:
          # FAIL before DONE: whoever sees DONE can rely on FAIL being there already.
          self._write_marker('FAIL', message.encode('utf-8'))
          self._write_marker('DONE', b'\n')
        except OSError:
          self.log('Exception in exception handler:\n' + traceback.format_exc())
      raise
    finally:
      stop.set()
      if heartbeat:
        heartbeat.join()

  def _heartbeat(self, stop, taken):
    while not stop.wait(self._ping_every):
      try:
        if self._read_ping()[0] != self._worker:
          raise _Conflict()
        self._write_ping()
      except (OSError, _Conflict):
        taken.set()
        return

  def path(self, name):
    return os.path.join(self.dir, name)

  def _read_ping(self):
    """Returns (worker, age in seconds); a PING that does not decode is of unknown, stale age."""
    with open(self.path('PING'), 'rb') as file_:
      data = file_.read()
    try:
      worker, stamp = pickle.loads(data)
      if stamp.tzinfo is None:  # Written by the original, with naive UTC times.
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
      age = (datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()
    except Exception:  # Truncated or foreign content: any decoding error means the same.
      return None, float('inf')
    return worker, age

  def _write_ping(self):
    stamp = datetime.datetime.now(datetime.timezone.utc)
    self._write_marker('PING', pickle.dumps((self._worker, stamp)))

  def _write_marker(self, name, data):
    _write_atomic(self.path(name), data)
