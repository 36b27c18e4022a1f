"""Stops a run whose training diverged before NaN acts in an env or reaches a checkpoint.

Every check ends in the same one-line `training diverged: ...` message, naming what was not
finite, the env frames and the last good checkpoint.
"""

import re

import numpy as np
import tensorflow as tf


class Diverged(RuntimeError):
  """A loss became NaN or infinite; the weights in memory are not worth saving."""


class Guard:
  """The trainer's NaN and inf checks, each made where the host has the values anyway.

  Args:
    checkpoints: a dreamer.training.checkpoints.Checkpoints (for its latest checkpoint).
    frames: a callable returning the env frames so far.
  """

  def __init__(self, checkpoints, frames):
    self._checkpoints = checkpoints
    self._frames = frames
    self._unchecked = []  # Train losses (tensors) not yet checked for NaN and inf.

  def train(self, train_fn, batch):
    """Runs train_fn(batch) and keeps its losses to check later; returns its metrics."""
    try:
      metrics = train_fn(batch)
    except tf.errors.InvalidArgumentError as e:
      # With `debug: True` the agent checks its losses itself before applying gradients.
      match = re.search(r'(\w+) loss : Tensor had (NaN|Inf) values', e.message)
      if not match:
        raise
      self.stop(f'{match.group(1)} loss is {match.group(2).lower()}')
    self._unchecked.append({k[len('loss/'):]: v for k, v in metrics.items()
                            if k.startswith('loss/')})
    return metrics

  def check_losses(self):
    """Raises Diverged if a train loss since the last call is NaN or inf.

    One host round trip for all of them, made only where the loop waits for the host anyway
    (before collecting, at the end of a train phase, before saving).
    """
    if not self._unchecked:
      return
    names = [name for losses in self._unchecked for name in losses]
    values = tf.stack([value if value.dtype == tf.float32 else tf.cast(value, tf.float32)
                       for losses in self._unchecked for value in losses.values()])
    self._unchecked = []
    values = values.numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
      self.stop(f'{names[bad[0]]} loss is {values[bad[0]]}')

  def check_weights(self, variables):
    """Before a save: the losses, then every floating variable."""
    self.check_losses()
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables
                            if v.dtype.is_floating])
    if not finite.numpy():
      self.stop('the weights hold NaN or inf')

  def check_policy(self, name, action, state):
    """On the host copy of a policy step's actions: the run stops before the env steps.

    Args:
      name: the collection's name.
      action: [envs, A] numpy actions (the agent makes a diverged env's action NaN).
      state: the policy state (latent dict of [envs, ...] arrays, anything).
    """
    if np.isfinite(action).all():
      return
    env = int(np.flatnonzero(~np.isfinite(action).all(-1))[0])
    latent, _ = state
    values = np.concatenate([np.asarray(v)[env].ravel() for v in latent.values()])
    if not np.isfinite(values).all():
      what = f"the policy's recurrent state is {_first_bad(values)}"
    else:
      what = f"the policy's action is {_first_bad(action[env])}"
    self.stop(f'{what} in env {env} of {name}')

  def stop(self, what):
    latest = self._checkpoints.latest
    kept = (f'the last good checkpoint is kept at {latest}' if latest else
            'no checkpoint was saved yet')
    raise Diverged(f'training diverged: {what} at {self._frames()} env frames; {kept}')


def _first_bad(values):
  bad = values[~np.isfinite(values)]
  return str(bad[0]) if len(bad) else 'finite'
