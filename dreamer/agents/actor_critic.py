"""Behaviour learning in imagination: rollouts, lambda-returns, actor and value losses."""

import tensorflow as tf

from dreamer import ops


def imagine(rssm, actor, start, horizon, stop_grad_pre_action=True):
  """Rolls the prior forward `horizon` steps from every start state (SPEC 5.5).

  Args:
    start: dict of [B, T, ...] (or [N, ...]) states; every element starts a trajectory.
  Returns:
    dict of [N, H, ...] states after each step (the start state is not included).
  """
  flat = {k: tf.reshape(v, [-1, v.shape[-1]]) for k, v in start.items()}

  def step(prev, _):
    feat = rssm.features(prev)
    if stop_grad_pre_action:
      feat = tf.stop_gradient(feat)
    action = actor(feat).sample()
    return rssm.img_step(prev, action)

  states = ops.static_scan(step, tf.range(horizon), flat)
  return {k: tf.experimental.numpy.swapaxes(v, 0, 1) for k, v in states.items()}


class ActorCritic(tf.Module):
  """The action model and value model with their objectives on imagined features.

  Optional target heads (SPEC 5.11) are slowly updated copies that are never trained:
  `value_target` gives the value targets, `action_target` drives the imagination that
  the value loss learns from. Their periods count trainer steps; `*_target_update` is the
  fraction moved towards the online head at each period (1: hard copy).

  `action_beta` (SPEC 5.11, the original's actor entropy bonus): every imagined reward the
  actor's objective sees gets `action_beta` times the entropy of the policy at that state
  (estimated from samples for the tanh-normal), so the returns favour a policy that keeps
  its spread; with `value_maxent` the value's targets include the same bonus.
  """

  def __init__(self, actor, value=None, value_target=None, action_target=None, *,
               discount=0.99, lambda_=0.95,
               bootstrap=True, loss_pcont=False, pcont_stop_grad=False, pcont_weight=True,
               value_discount=0.99, value_lambda=0.95, value_bootstrap=True,
               value_loss_pcont=False, value_pcont_weight=True, action_loss_scale=1.0,
               value_loss_scale=1.0, value_target_period=50000, value_target_update=1.0,
               action_target_period=50000, action_target_update=1.0, action_beta=0.0,
               value_maxent=False, name='actor_critic'):
    super().__init__(name=name)
    self.actor = actor
    self.value = value
    self.value_target = value_target
    self.action_target = action_target
    self._targets = []
    if value_target is not None:
      self._targets.append((value_target, value, value_target_period, value_target_update))
    if action_target is not None:
      self._targets.append((action_target, actor, action_target_period, action_target_update))
    self._action = dict(discount=discount, lambda_=lambda_, bootstrap=bootstrap,
                        loss_pcont=loss_pcont, weight=pcont_weight)
    self._pcont_stop_grad = pcont_stop_grad
    self._value = dict(discount=value_discount, lambda_=value_lambda,
                       bootstrap=value_bootstrap, loss_pcont=value_loss_pcont,
                       weight=value_pcont_weight)
    self._action_scale = action_loss_scale
    self._value_scale = value_loss_scale
    self.action_beta = action_beta
    self._value_maxent = value_maxent

  def losses(self, feat, reward_head, pcont_head, value_feat=None):
    """The actor's objective, the value loss (None without a value head) and the mean
    imagined reward, with each head evaluated once on the imagined features.

    The same numbers and gradients as `actor_objective` and `value_loss` (tests check it).
    The value's targets are the actor's lambda-returns under stop_gradient when both are
    computed alike (same discount, lambda, bootstrap and continuation settings, no target
    value head, the same rewards), as in the original; otherwise they are computed anew,
    still from the rewards and continuations already predicted.

    Args:
      value_feat: features of the trajectories the value learns from when they are not
        `feat` (those of the target actor), or None.
    """
    reward = reward_head(feat).mode()
    pcont = None
    if self._action['loss_pcont'] or (self._value['loss_pcont'] and value_feat is None):
      pcont = pcont_head(feat).mean()
    value = self.value(feat) if self.value is not None else None
    objective, returns, discount = self._actor_terms(
        feat, reward, pcont, value.mode() if value is not None else None)
    imagined_reward = tf.reduce_mean(reward)
    if value is None:
      return objective, None, imagined_reward
    if value_feat is not None:
      return objective, self.value_loss(value_feat, reward_head, pcont_head), imagined_reward
    feat = tf.stop_gradient(feat)
    if self._shared_targets():
      targets = returns
    else:
      reward = tf.stop_gradient(self._value_reward(feat, reward))
      discount = self._value['discount'] * tf.ones_like(reward)
      if self._value['loss_pcont']:
        discount *= tf.stop_gradient(pcont)
      target = self.value_target(feat).mode() if self.value_target else value.mode()
      targets, discount = self._returns(reward, target, discount, self._value)
    # The value loss trains only the value head's variables, so its predictions on `feat`
    # (not stop-gradient) give the same gradients as predictions on stop_gradient(feat).
    return objective, self._value_nll(value, targets, discount), imagined_reward

  def actor_objective(self, feat, reward_head, pcont_head):
    """Mean weighted lambda-return of imagined trajectories; gradients flow through all."""
    reward = reward_head(feat).mode()
    pcont = pcont_head(feat).mean() if self._action['loss_pcont'] else None
    value = self.value(feat).mode() if self.value is not None else None
    return self._actor_terms(feat, reward, pcont, value)[0]

  def _actor_terms(self, feat, reward, pcont, value):
    """The objective from predicted rewards, continuations and values, with the returns
    and discounts it weighed (None without a value head)."""
    cfg = self._action
    if self.action_beta:
      reward += self.entropy_bonus(self.actor, feat)
    discount = cfg['discount'] * tf.ones_like(reward)
    if cfg['loss_pcont']:
      discount *= tf.stop_gradient(pcont) if self._pcont_stop_grad else pcont
    if value is None:
      returns = ops.discounted_return(reward, discount, axis=1)
      return tf.reduce_mean(returns), None, None
    return self._weighted_return(reward, value, discount)

  def _shared_targets(self):
    """Whether the value's lambda-returns are the actor's: same settings and rewards."""
    same_reward = not self.action_beta or self._value_maxent
    return self.value_target is None and same_reward and self._action == self._value

  def objective(self, reward, value, discount=None):
    """The actor's objective from imagined [N, H] rewards, values and discounts (default:
    the constant discount); linear in the rewards and the values together."""
    if discount is None:
      discount = self._action['discount'] * tf.ones_like(reward)
    return self._weighted_return(reward, value, discount)[0]

  def _weighted_return(self, reward, value, discount):
    """The mean lambda-return weighted by the cumulative discount, with the returns and
    the discounts it weighed."""
    cfg = self._action
    returns, discount = self._returns(reward, value, discount, cfg)
    weight = ops.cumulative_discount(discount) if cfg['weight'] else 1.0
    return tf.reduce_mean(weight * returns), returns, discount

  def value_loss(self, feat, reward_head, pcont_head):
    """Negative log-likelihood of stop-gradient lambda-return targets under the value head."""
    cfg = self._value
    feat = tf.stop_gradient(feat)
    reward = self._value_reward(feat, reward_head(feat).mode())
    discount = cfg['discount'] * tf.ones_like(reward)
    if cfg['loss_pcont']:
      discount *= tf.stop_gradient(pcont_head(feat).mean())
    target_head = self.value_target or self.value
    targets, discount = self._returns(reward, target_head(feat).mode(), discount, cfg)
    return self._value_nll(self.value(feat), targets, discount)

  def _value_reward(self, feat, reward):
    if self._value_maxent and self.action_beta:
      reward += tf.stop_gradient(self.entropy_bonus(self.action_target or self.actor, feat))
    return reward

  def _value_nll(self, value, targets, discount):
    """Mean negative log-likelihood of the targets under the value distribution of the
    states that have one, weighted by the cumulative discount."""
    targets = tf.stop_gradient(targets)
    loss = -value[:, :targets.shape[1]].log_prob(targets)
    if self._value['weight']:
      loss *= ops.cumulative_discount(discount)
    return tf.reduce_mean(loss)

  def entropy_bonus(self, actor, feat):
    """[N, H] `action_beta` x the entropy of the policy at each imagined state.

    The policy sees the features as it does while imagining (without their gradient), so
    the bonus trains the action head's spread and mean, not the path to the state.
    """
    return self.action_beta * actor(tf.stop_gradient(feat)).entropy()

  def _returns(self, reward, value, discount, cfg):
    if cfg['bootstrap']:
      # Bootstrap from the value of the last imagined state. The original used the
      # second-to-last one (SPEC 5.7 quirk); this is the natural choice.
      bootstrap = value[:, -1]
      reward, value, discount = reward[:, :-1], value[:, :-1], discount[:, :-1]
    else:
      bootstrap = None
    returns = ops.lambda_return(reward, value, discount, bootstrap, cfg['lambda_'], axis=1)
    return returns, discount

  def update_targets(self, step, batch):
    """Moves every target head towards its source when its period comes round.

    Args:
      step: trainer step of the update that just ran (updates x B); the first update
        copies fully, later ones mix in the `*_target_update` fraction whenever
        `step mod period < B` (SPEC 5.11).
      batch: B.
    """
    first = tf.equal(step, 0)
    for target, source, period, fraction in self._targets:
      due = tf.logical_or(first, step % period < batch)
      mix = tf.where(first, 1.0, fraction)
      tf.cond(due, lambda t=target, s=source: _mix(t, s, mix), lambda: tf.constant(False))

  @property
  def loss_scales(self):
    return self._action_scale, self._value_scale


def _mix(target, source, fraction):
  """target <- (1 - fraction) target + fraction source, variable by variable."""
  for t, s in zip(target.variables, source.variables):
    f = tf.cast(fraction, t.dtype)
    t.assign((1 - f) * t + f * tf.cast(s, t.dtype))
  return tf.constant(True)
