"""Where a run's wall time goes: seconds per phase of the training loop, each second counted
in exactly one phase, and the rest.

No TensorFlow: the trainer wraps its calls in phases, and what a phase waits for (an
accelerator's results, a thread) has to be waited for inside it.
"""

import contextlib
import threading
import time

# The order of the console line and of the time/ scalars.
PHASES = ('updates', 'env', 'policy', 'episodes', 'loading', 'summaries', 'checkpoint')


class Timings:
  """Accumulates exclusive seconds per phase; phases nest.

  A phase opened inside another pauses the outer one's clock until it closes, so a policy
  call inside a collection counts as policy and not as env too, and the phases' seconds
  never add up to more than the wall time. The rest is the wall time that no phase holds.
  Only the thread that called start() (or built this) counts: phases entered in another
  thread overlap the owner's own time and are ignored.

  Several readers (the scalars, the console) each get the split since their own last
  call to split().

  Args:
    phases: the names phase() accepts.
    clock: seconds of a monotonic clock.
  """

  def __init__(self, phases=PHASES, clock=time.perf_counter):
    self.phases = tuple(phases)
    self._clock = clock
    self.start()

  def start(self):
    """Counts from here: every reader's next split begins now."""
    self._owner = threading.get_ident()
    self._totals = dict.fromkeys(self.phases, 0.0)
    self._open = []  # [phase, when its clock last (re)started] of each open phase, innermost last.
    self._origin = (self._clock(), dict(self._totals))
    self._marks = {}

  @contextlib.contextmanager
  def phase(self, name):
    """Counts the time inside the block as `name`, less that of phases nested in it."""
    if name not in self._totals:
      raise KeyError(f'unknown phase {name!r}; phases are {", ".join(self.phases)}')
    if threading.get_ident() != self._owner:
      yield
      return
    now = self._clock()
    if self._open:
      outer = self._open[-1]
      self._totals[outer[0]] += now - outer[1]
    self._open.append([name, now])
    try:
      yield
    finally:
      now = self._clock()
      inner, started = self._open.pop()
      self._totals[inner] += now - started
      if self._open:
        self._open[-1][1] = now  # The outer phase's clock runs again.

  def wrap(self, name, fn):
    """fn, counted as phase `name` whenever it is called."""

    def wrapped(*args, **kwargs):
      with self.phase(name):
        return fn(*args, **kwargs)

    return wrapped

  def split(self, reader='default'):
    """The Split since this reader's last call (or since start()); an open phase counts up
    to now."""
    now = self._clock()
    totals = dict(self._totals)
    if self._open:
      inner, started = self._open[-1]
      totals[inner] += now - started
    last_time, last_totals = self._marks.get(reader, self._origin)
    self._marks[reader] = (now, totals)
    seconds = {name: totals[name] - last_totals[name] for name in self.phases}
    wall = now - last_time
    # Exclusive phases of one thread fit in the wall time; max() only absorbs rounding.
    seconds['rest'] = max(0.0, wall - sum(seconds.values()))
    return Split(wall, seconds)


class Split:
  """Seconds per phase and 'rest' over `wall` seconds of wall time."""

  def __init__(self, wall, seconds):
    self.wall = wall
    self.seconds = seconds

  @property
  def shares(self):
    """Each phase's part of the wall time; they sum to 1 (all 0 for no time at all)."""
    total = sum(self.seconds.values())
    return {name: value / total if total > 0 else 0.0 for name, value in self.seconds.items()}

  def tags(self):
    """`time/<phase>_seconds` and `time/<phase>_share` scalars, and `time/wall_seconds`."""
    values = {'time/wall_seconds': self.wall}
    shares = self.shares
    for name, value in self.seconds.items():
      values[f'time/{name}_seconds'] = value
      values[f'time/{name}_share'] = shares[name]
    return values

  def line(self):
    """`time: updates 82% env 9% ... rest 1% (of 312.4 s)` for the console."""
    parts = ' '.join(f'{name} {share:.0%}' for name, share in self.shares.items())
    return f'time: {parts} (of {self.wall:.1f} s)'
