"""Runs environments in-process, in threads or in spawned processes, stepped as a batch.

Process workers are spawned, never forked: Mesa's software renderer crashes in any
process that has TensorFlow loaded, so rendered tasks must live in a clean interpreter.
"""

import multiprocessing
import queue
import signal
import sys
import threading
import traceback

import numpy as np

from dreamer.envs import wrappers


class EnvError(RuntimeError):
  """An environment failed; the message names the task and carries the worker's error."""


class _Done:
  """A result that is already there."""

  def __init__(self, value=None, error=None):
    self._value, self._error = value, error

  def __call__(self):
    if self._error:
      raise self._error
    return self._value


class Direct:
  """Constructs and steps the env in the calling thread."""

  def __init__(self, constructor, name):
    self.name = name
    self._env = self._guarded('construct', constructor)
    self.obs_space, self.act_space = self._env.obs_space, self._env.act_space

  def call(self, method, *args):
    return _Done(self._guarded(method, lambda: getattr(self._env, method)(*args)))

  def _guarded(self, method, function):
    try:
      return function()
    except Exception as e:  # Wrapped so that every isolation mode fails the same way.
      raise EnvError(f"environment '{self.name}' failed in {method}: "
                     f'{type(e).__name__}: {e}') from e

  def close(self):
    self._env.close()


class Threaded:
  """Owns the env in a dedicated thread (some renderers need a fixed thread)."""

  def __init__(self, constructor, name):
    self.name = name
    self._requests = queue.Queue()
    self._results = queue.Queue()
    self._thread = threading.Thread(target=self._loop, args=(constructor,), daemon=True)
    self._thread.start()
    self.obs_space, self.act_space = self._receive('construct')

  def call(self, method, *args):
    self._requests.put((method, args))
    return lambda: self._receive(method)

  def close(self):
    self._requests.put(None)
    self._thread.join(timeout=5)

  def _receive(self, method):
    ok, value = self._results.get()
    if not ok:
      raise EnvError(f"environment '{self.name}' failed in {method}:\n{value}")
    return value

  def _loop(self, constructor):
    try:
      env = constructor()
      self._results.put((True, (env.obs_space, env.act_space)))
    except Exception:
      self._results.put((False, traceback.format_exc()))
      return
    while True:
      request = self._requests.get()
      if request is None:
        env.close()
        return
      method, args = request
      try:
        self._results.put((True, getattr(env, method)(*args)))
      except Exception:
        self._results.put((False, traceback.format_exc()))


def _process_main(conn, constructor, name):
  """Entry of a spawned worker: builds the env and serves calls until told to close."""
  # Ctrl-C reaches the whole process group; the trainer stops and closes its workers, so a
  # worker that quit on its own would only look like a crashed env.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    if 'tensorflow' in sys.modules:
      raise RuntimeError('TensorFlow is loaded in an environment worker; rendering would crash. '
                         'Import TensorFlow lazily in the entry script.')
    env = constructor()
    conn.send((True, (env.obs_space, env.act_space)))
  except Exception:
    conn.send((False, traceback.format_exc()))
    conn.close()
    return
  try:
    while True:
      request = conn.recv()
      if request is None:
        break
      method, args = request
      try:
        conn.send((True, getattr(env, method)(*args)))
      except Exception:
        conn.send((False, traceback.format_exc()))
  except (EOFError, KeyboardInterrupt, BrokenPipeError):
    pass
  finally:
    try:
      env.close()
    except Exception:
      pass
    conn.close()


class Subprocess:
  """Owns the env in its own spawned process; a dead worker raises instead of hanging."""

  def __init__(self, constructor, name, timeout=600):
    self.name = name
    self._timeout = timeout
    context = multiprocessing.get_context('spawn')
    self._conn, child = context.Pipe()
    self._process = context.Process(
        target=_process_main, args=(child, constructor, name), daemon=True)
    self._process.start()
    child.close()
    self.obs_space, self.act_space = self._receive('construct')

  def call(self, method, *args):
    try:
      self._conn.send((method, args))
    except (BrokenPipeError, OSError):
      raise EnvError(self._dead_message(method)) from None
    return lambda: self._receive(method)

  def close(self):
    try:
      self._conn.send(None)
    except (BrokenPipeError, OSError):
      pass
    self._process.join(timeout=5)
    if self._process.is_alive():
      self._process.kill()
      self._process.join(timeout=5)

  def _receive(self, method):
    waited = 0.0
    while not self._conn.poll(0.1):
      waited += 0.1
      if not self._process.is_alive() and not self._conn.poll(0):
        raise EnvError(self._dead_message(method))
      if waited > self._timeout:
        raise EnvError(f"environment '{self.name}' did not answer {method} within "
                       f'{self._timeout} s')
    try:
      ok, value = self._conn.recv()
    except (EOFError, OSError):
      raise EnvError(self._dead_message(method)) from None
    if not ok:
      raise EnvError(f"environment '{self.name}' failed in {method}:\n{value}")
    return value

  def _dead_message(self, method):
    # The pipe closes a moment before the process is reaped; wait for its exit code.
    self._process.join(timeout=2)
    code = self._process.exitcode
    return (f"environment worker for '{self.name}' died during {method} "
            f'(exit code {code}); see its output above')


ISOLATIONS = {'none': Direct, 'thread': Threaded, 'process': Subprocess}


def _check_finite(name, method, obs, reward=0.0):
  """A NaN or inf from a task would only reach the replay and the losses: stop here."""
  if not np.isfinite(reward):
    raise EnvError(f"environment '{name}' returned the reward {reward} from {method}; "
                   'rewards must be finite')
  for key, value in obs.items():
    value = np.asarray(value)
    if value.dtype.kind == 'f' and not np.isfinite(value).all():
      raise EnvError(f"environment '{name}' returned a non-finite observation '{key}' from "
                     f'{method}; observations must be finite')


class BatchEnv:
  """A fixed list of envs stepped in lock-step; observations stacked per key."""

  def __init__(self, constructors, names, isolation):
    if isolation not in ISOLATIONS:
      raise ValueError(f"isolate_envs must be one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    self.workers = []
    try:
      for constructor, name in zip(constructors, names):
        self.workers.append(ISOLATIONS[isolation](constructor, name))
    except BaseException:
      self.close()
      raise
    self.obs_space = self.workers[0].obs_space
    self.act_space = self.workers[0].act_space
    self._padded = False

  def pad_actions(self, spaces):
    """Exposes the union of `spaces` (multi-task runs); each env gets the part it needs."""
    self.act_space = wrappers.union_space(list(spaces) + [self.workers[0].act_space])
    self._padded = True

  def __len__(self):
    return len(self.workers)

  def reset(self, indices=None):
    """Resets the given envs (all by default); returns their observations in order."""
    indices = range(len(self.workers)) if indices is None else indices
    promises = [self.workers[i].call('reset') for i in indices]
    observations = [promise() for promise in promises]
    for i, obs in zip(indices, observations):
      _check_finite(self.workers[i].name, 'reset', obs)
    return observations

  def step(self, actions):
    """Steps every env; returns lists of obs, rewards, dones, infos."""
    if self._padded:
      actions = [wrappers.unpad_action(a, w.act_space) for w, a in zip(self.workers, actions)]
    for worker, action in zip(self.workers, actions):
      if not worker.act_space.contains(action):
        raise EnvError(f"action {np.asarray(action)} is outside the action space "
                       f"{worker.act_space} of '{worker.name}'")
    promises = [w.call('step', np.asarray(a)) for w, a in zip(self.workers, actions)]
    results = [promise() for promise in promises]
    for worker, (obs, reward, _, _) in zip(self.workers, results):
      _check_finite(worker.name, 'step', obs, reward)
    return tuple(list(x) for x in zip(*results))

  def close(self):
    for worker in self.workers:
      try:
        worker.close()
      except Exception:
        pass
    self.workers = []
