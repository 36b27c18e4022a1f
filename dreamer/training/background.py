"""Training collection in a thread beside the train step (`collect_in_background: True`)."""

import threading


class Stopped(Exception):
  """Raised inside a background collection that was asked to stop."""


class BackgroundCollector:
  """Runs one collection at a time in a thread, acting with a copy of the agent's policy.

  The trainer starts a collection where its schedule collects and, before it starts the
  next one or leaves the train phase, waits for the one in flight. So every collection
  of the serial schedule happens, in the same order, and the ratio of updates to env
  frames is the schedule's exactly; the collection's episodes reach the replay while the
  next updates run instead of before them. The policy acts with the weights of the update
  after which its collection started: they are copied into `acting`, a second agent of the
  same config, so the updates that run meanwhile do not change the acting policy.

  Args:
    agent: the agent that trains.
    acting: an agent built from the same config; only its policy is used.
  """

  def __init__(self, agent, acting):
    sources = _policy_variables(agent)
    targets = _policy_variables(acting)
    if [v.shape for v in sources] != [v.shape for v in targets]:
      raise ValueError('the acting agent was not built from the same config as the agent')
    self.acting = acting
    self._pairs = list(zip(sources, targets))
    self._thread = None
    self._error = None
    self._stop = threading.Event()

  @property
  def busy(self):
    return self._thread is not None

  @property
  def stopping(self):
    return self._stop.is_set()

  def start(self, collect):
    """Copies the agent's policy weights into `acting`, then runs collect() in a thread.

    A collection still in flight is waited for first (its errors are raised here)."""
    self.wait()
    for source, target in self._pairs:
      target.assign(source)
    self._stop.clear()
    self._thread = threading.Thread(target=self._run, args=(collect,), daemon=True,
                                    name='background-collection')
    self._thread.start()

  def _run(self, collect):
    try:
      collect()
    except BaseException as e:  # Raised in the trainer's thread by wait().
      self._error = e

  def wait(self):
    """Blocks until the collection in flight (if any) ends; raises what it raised."""
    if self._thread is None:
      return
    self._thread.join()
    self._thread = None
    error, self._error = self._error, None
    if error is not None and not isinstance(error, Stopped):
      raise error

  def stop(self, timeout=60.0):
    """Asks the collection in flight to end at its next step and waits for it (the run is
    ending: an error, Ctrl-C); its finished episodes are on disk already."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout)
      self._thread = None
      self._error = None


def _policy_variables(agent):
  """What acting reads: the world model (encoder, RSSM, heads a planner may use) and the
  actor-critic (actor, value, their targets)."""
  variables = list(agent.world_model.variables)
  if agent.actor_critic is not None:
    variables += list(agent.actor_critic.variables)
  return variables
