"""The trainer's NaN checks, one message each (end to end in tests/scripts/test_failures.py)."""

import types

import numpy as np
import pytest
import tensorflow as tf

from dreamer.training import divergence


def guard(latest=None, frames=3000):
  return divergence.Guard(types.SimpleNamespace(latest=latest), lambda: frames)


def test_losses_are_checked_together_and_the_first_bad_one_is_named():
  checks = guard(latest='/run/model.ckpt-40')
  losses = iter([{'loss/model': tf.constant(1.0), 'loss/value': tf.constant(2.0)},
                 {'loss/model': tf.constant(np.nan), 'loss/value': tf.constant(np.inf)}])
  checks.train(lambda batch: next(losses), None)
  checks.check_losses()  # Finite so far.
  checks.train(lambda batch: next(losses), None)
  with pytest.raises(divergence.Diverged) as error:
    checks.check_losses()
  assert str(error.value) == ('training diverged: model loss is nan at 3000 env frames; '
                              'the last good checkpoint is kept at /run/model.ckpt-40')
  checks.check_losses()  # Each loss is checked once.


def test_debug_checks_inside_the_graph_give_the_same_line():
  def train(batch):
    raise tf.errors.InvalidArgumentError(None, None, 'value loss : Tensor had Inf values')
  with pytest.raises(divergence.Diverged, match=r'^training diverged: value loss is inf at '
                     r'3000 env frames; no checkpoint was saved yet$'):
    guard().train(train, None)
  def other(batch):
    raise tf.errors.InvalidArgumentError(None, None, 'shapes do not match')
  with pytest.raises(tf.errors.InvalidArgumentError):
    guard().train(other, None)


def test_weights_with_nan_are_not_saved():
  weights = [tf.Variable([1.0, 2.0]), tf.Variable([3], dtype=tf.int64)]
  guard().check_weights(weights)
  weights[0].assign([1.0, np.nan])
  with pytest.raises(divergence.Diverged, match='the weights hold NaN or inf at 3000'):
    guard().check_weights(weights)


def test_a_policy_step_names_the_state_or_the_action_and_the_env():
  state = ({'belief': np.zeros((2, 3)), 'sample': np.zeros((2, 2))}, None)
  action = np.zeros((2, 4), np.float32)
  guard().check_policy('train_main_dummy', action, state)
  action[1, 2] = np.nan
  with pytest.raises(divergence.Diverged, match=r"the policy's action is nan in env 1 of "
                     r'train_main_dummy at 3000 env frames'):
    guard().check_policy('train_main_dummy', action, state)
  state[0]['belief'][1, 0] = -np.inf
  with pytest.raises(divergence.Diverged, match=r"the policy's recurrent state is -inf in "
                     r'env 1 of train_main_dummy'):
    guard().check_policy('train_main_dummy', action, state)
