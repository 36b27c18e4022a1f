"""Every term of the behaviour losses against plain numpy, and where their gradients go.

A hand-built imagined trajectory of N = 2 starts and H = 5 states, with heads whose
outputs are simple functions of the features, so that each reward, value, discount
weight and the bootstrap can be written down (SPEC 5.6-5.8).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from dreamer.agents import actor_critic
from tests.agents.test_dreamer import batch, make_agent

tfd = tfp.distributions
RNG = np.random.default_rng(3)
FEAT = RNG.normal(size=(2, 5, 3)).astype(np.float32)  # [N, H, features]


class LinearHead(tf.Module):
  """Normal(w . feat + b, 1): a value head with variables; mode() is the mean."""

  def __init__(self, w, b=0.0):
    super().__init__()
    self.w = tf.Variable(np.asarray(w, np.float32))
    self.b = tf.Variable(np.float32(b))

  def __call__(self, feat):
    return tfd.Normal(tf.reduce_sum(feat * self.w, -1) + self.b, 1.0)


class FixedHead:
  """A head without variables: Deterministic(fn(feat)); mean() = mode() = fn(feat)."""

  def __init__(self, fn):
    self._fn = fn

  def __call__(self, feat):
    return tfd.Deterministic(self._fn(feat))


def reward_of(feat):
  return feat[..., 0]


def pcont_of(feat):
  return tf.sigmoid(feat[..., 2])


def numpy_terms(discount, lambda_, pcont=None, value_w=(0.0, 1.0, 0.0), value_b=0.5,
                bonus=0.0):
  """Rewards (plus an entropy `bonus` per state), values, per-step discounts, bootstrap,
  lambda-returns and weights."""
  reward = FEAT[..., 0] + bonus
  value = FEAT @ np.asarray(value_w, np.float32) + value_b
  gamma = discount * np.ones_like(reward)
  if pcont is not None:
    gamma = gamma * pcont
  steps = reward.shape[1] - 1  # The last imagined state only bootstraps.
  returns = np.zeros((reward.shape[0], steps), np.float32)
  for n in range(reward.shape[0]):
    following = value[n, -1]  # G_H-1 = bootstrap = value of the last imagined state.
    for i in reversed(range(steps)):
      next_value = value[n, i + 1]  # v_{i+1}; for i = H-2 that is the bootstrap itself.
      following = reward[n, i] + gamma[n, i] * ((1 - lambda_) * next_value + lambda_ * following)
      returns[n, i] = following
  weights = np.cumprod(np.concatenate([np.ones((2, 1)), gamma[:, :steps - 1]], 1), 1)
  return reward, value, returns, weights


@pytest.mark.parametrize('discount, lambda_', [(0.99, 0.95), (0.5, 0.0), (0.9, 1.0)])
def test_actor_objective_matches_numpy(discount, lambda_):
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, discount=discount, lambda_=lambda_)
  objective = ac.actor_objective(tf.constant(FEAT), FixedHead(reward_of), None)
  _, _, returns, weights = numpy_terms(discount, lambda_)
  assert weights[0, 0] == 1 and weights[0, 1] == pytest.approx(discount)
  assert float(objective) == pytest.approx(float(np.mean(weights * returns)), rel=1e-5)


def test_objective_splits_into_reward_and_value_parts():
  # learning_study's actor_push_reward / actor_push_value rest on this: the objective from
  # rewards and values equals actor_objective, and is the sum of its reward-only and
  # value-only parts.
  value = LinearHead([0.0, 10.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, discount=0.9, lambda_=0.8)
  feat = tf.constant(FEAT)
  rewards, values = reward_of(feat), value(feat).mode()
  whole = ac.objective(rewards, values)
  parts = (ac.objective(rewards, tf.zeros_like(values))
           + ac.objective(tf.zeros_like(rewards), values))
  np.testing.assert_allclose(float(whole), float(ac.actor_objective(
      feat, FixedHead(reward_of), None)), rtol=1e-6)
  np.testing.assert_allclose(float(parts), float(whole), rtol=1e-5)
  assert abs(float(ac.objective(tf.zeros_like(rewards), values))) > 0.1


@pytest.mark.parametrize('discount, lambda_', [(0.99, 0.95), (0.9, 0.5)])
def test_value_loss_matches_numpy(discount, lambda_):
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, value_discount=discount, value_lambda=lambda_)
  loss = ac.value_loss(tf.constant(FEAT), FixedHead(reward_of), None)
  _, predicted, returns, weights = numpy_terms(discount, lambda_)
  # -log N(G_i | v_i, 1) for the states i = 0..H-2 that have a target.
  nll = 0.5 * (returns - predicted[:, :-1]) ** 2 + 0.5 * np.log(2 * np.pi)
  assert float(loss) == pytest.approx(float(np.mean(weights * nll)), rel=1e-5)


def test_pcont_discounts_returns_and_weights():
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, discount=1.0, lambda_=0.95, loss_pcont=True,
                                value_discount=1.0, value_lambda=0.95, value_loss_pcont=True)
  feat = tf.constant(FEAT)
  pcont = pcont_of(FEAT).numpy()
  _, predicted, returns, weights = numpy_terms(1.0, 0.95, pcont=pcont)
  objective = ac.actor_objective(feat, FixedHead(reward_of), FixedHead(pcont_of))
  assert float(objective) == pytest.approx(float(np.mean(weights * returns)), rel=1e-5)
  loss = ac.value_loss(feat, FixedHead(reward_of), FixedHead(pcont_of))
  nll = 0.5 * (returns - predicted[:, :-1]) ** 2 + 0.5 * np.log(2 * np.pi)
  assert float(loss) == pytest.approx(float(np.mean(weights * nll)), rel=1e-5)


def test_without_bootstrap_the_last_state_counts_as_a_reward():
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, discount=0.9, lambda_=1.0, bootstrap=False)
  objective = ac.actor_objective(tf.constant(FEAT), FixedHead(reward_of), None)
  reward = FEAT[..., 0]
  returns = np.zeros_like(reward)
  following = np.zeros(2)
  for i in reversed(range(5)):
    following = reward[:, i] + 0.9 * following
    returns[:, i] = following
  weights = 0.9 ** np.arange(5)
  assert float(objective) == pytest.approx(float(np.mean(weights * returns)), rel=1e-5)


def test_value_loss_trains_the_value_head_only():
  """Targets and features are under stop_gradient: no gradient reaches the features (the
  world model and the actor behind them) or the reward head."""
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  reward = LinearHead([1.0, 0.0, 0.0])
  ac = actor_critic.ActorCritic(None, value, discount=0.99)
  feat = tf.Variable(FEAT)
  with tf.GradientTape(persistent=True) as tape:
    loss = ac.value_loss(feat, lambda f: tfd.Deterministic(reward(f).mean()), None)
  assert tape.gradient(loss, feat) is None
  assert all(g is None for g in tape.gradient(loss, reward.trainable_variables))
  grads = tape.gradient(loss, value.trainable_variables)
  assert all(g is not None and np.any(g.numpy() != 0) for g in grads)
  # The value's gradient is that of the weighted squared error to fixed targets.
  _, predicted, returns, weights = numpy_terms(0.99, 0.95)
  expected_b = -np.mean(weights * (returns - predicted[:, :-1]))
  assert float(tape.gradient(loss, value.b)) == pytest.approx(float(expected_b), rel=1e-4)


def test_actor_objective_gradient_flows_through_rewards_values_and_features():
  value = LinearHead([0.0, 1.0, 0.0], 0.5)
  ac = actor_critic.ActorCritic(None, value, discount=0.99, lambda_=0.95)
  feat = tf.Variable(FEAT)
  with tf.GradientTape() as tape:
    objective = ac.actor_objective(feat, FixedHead(reward_of), None)
  grad = tape.gradient(objective, feat).numpy()
  # Rewards of states 0..H-2 and values of states 1..H-1 carry the objective; the
  # discount weights are constants.
  assert np.all(grad[:, :-1, 0] > 0) and np.all(grad[:, -1, 0] == 0)
  assert np.all(grad[:, 0, 1] == 0) and np.all(grad[:, 1:, 1] > 0)
  assert np.all(grad[..., 2] == 0)


class NormalActor(tf.Module):
  """Normal(feat[1], softplus(w feat[2] + b)) over one action dimension: its entropy,
  0.5 log(2 pi e std^2), is exact, and only the std's weights receive its gradient."""

  def __init__(self):
    super().__init__()
    self.w = tf.Variable(0.7)
    self.b = tf.Variable(0.2)

  def std(self, feat):
    return tf.nn.softplus(self.w * feat[..., 2] + self.b)

  def __call__(self, feat):
    return tfd.Independent(tfd.Normal(feat[..., 1:2], self.std(feat)[..., None]), 1)


@pytest.mark.parametrize('beta', [0.0, 0.3])
def test_entropy_bonus_is_added_to_every_imagined_reward(beta):
  # action_beta (SPEC 5.11): r_i + beta H[pi(.|f_i)] wherever the actor's returns use r_i;
  # the value's targets only with value_maxent.
  actor, value = NormalActor(), LinearHead([0.0, 1.0, 0.0], 0.5)
  feat = tf.constant(FEAT)
  entropy = 0.5 * np.log(2 * np.pi * np.e * actor.std(feat).numpy() ** 2)
  bonus = beta * entropy
  for maxent in (False, True):
    ac = actor_critic.ActorCritic(actor, value, discount=0.9, lambda_=0.8,
                                  value_discount=0.9, value_lambda=0.8, action_beta=beta,
                                  value_maxent=maxent)
    _, _, returns, weights = numpy_terms(0.9, 0.8, bonus=bonus)
    objective = ac.actor_objective(feat, FixedHead(reward_of), None)
    assert float(objective) == pytest.approx(float(np.mean(weights * returns)), rel=1e-5)
    _, predicted, targets, weights = numpy_terms(0.9, 0.8, bonus=bonus if maxent else 0.0)
    nll = 0.5 * (targets - predicted[:, :-1]) ** 2 + 0.5 * np.log(2 * np.pi)
    loss = ac.value_loss(feat, FixedHead(reward_of), None)
    assert float(loss) == pytest.approx(float(np.mean(weights * nll)), rel=1e-5)
  if beta:
    # The bonus is a real term: the objective without it differs.
    plain = actor_critic.ActorCritic(actor, value, discount=0.9, lambda_=0.8)
    assert abs(float(plain.actor_objective(feat, FixedHead(reward_of), None))
               - float(objective)) > 0.05


def test_entropy_bonus_trains_the_actor_not_the_path_to_the_state():
  actor, value = NormalActor(), LinearHead([0.0, 1.0, 0.0], 0.5)
  feat = tf.Variable(FEAT)
  with tf.GradientTape(persistent=True) as tape:
    with_bonus = actor_critic.ActorCritic(actor, value, action_beta=0.3).actor_objective(
        feat, FixedHead(reward_of), None)
    without = actor_critic.ActorCritic(actor, value).actor_objective(
        feat, FixedHead(reward_of), None)
    value_loss = actor_critic.ActorCritic(
        actor, value, action_beta=0.3, value_maxent=True).value_loss(
            feat, FixedHead(reward_of), None)
  # A wider policy scores higher (d objective / d b > 0) and the features get the same
  # gradient as without the bonus: it reaches the actor's weights only.
  assert float(tape.gradient(with_bonus, actor.b)) > 0
  assert tape.gradient(without, actor.b) is None
  np.testing.assert_allclose(tape.gradient(with_bonus, feat).numpy(),
                             tape.gradient(without, feat).numpy(), rtol=1e-5, atol=1e-7)
  assert tape.gradient(value_loss, actor.b) is None


def test_tanh_normal_entropy_pulls_a_saturated_policy_back():
  # Why the bonus resists the actor's saturation (docs/results.md §2): the tanh-normal's
  # entropy, estimated from samples as the original did, matches numerical integration,
  # and its gradient keeps pointing away from the bound where the gradient of any reward
  # through tanh vanishes.
  from dreamer.networks import distributions
  x = np.linspace(-12, 12, 200001)
  for m, s in [(0.0, 1.0), (1.5, 0.5)]:
    density = np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    log_det = 2 * (np.log(2) - x - np.logaddexp(0, -2 * x))  # log(1 - tanh(x)^2)
    exact = np.trapezoid(density * (-np.log(density) + log_det), x)
    tf.random.set_seed(0)
    dist = distributions.tanh_normal(tf.fill([4000, 1], m), tf.fill([4000, 1], s),
                                     squash_mean=False)
    assert float(tf.reduce_mean(dist.entropy())) == pytest.approx(exact, abs=0.02)
  mean = tf.Variable(tf.fill([256, 1], 4.0))
  with tf.GradientTape() as tape:
    entropy = tf.reduce_mean(distributions.tanh_normal(mean, 0.05, squash_mean=False).entropy())
  grad_entropy, = tape.gradient(entropy, [mean])
  assert float(tf.reduce_sum(grad_entropy)) < -1.0  # about -2 per unit of the mean at 4


def test_actor_gradient_reaches_the_actor_only_through_the_dynamics(monkeypatch):
  """In the agent, the actor objective changes the actor's weights through the imagined
  states; cutting the gradient of those states leaves it exactly zero (the actor's input
  features are stop-gradient), and the value loss sends the actor and model nothing."""
  agent, _ = make_agent(debug=False)
  data = batch(agent)
  wm, ac = agent.world_model, agent.actor_critic
  with tf.GradientTape(persistent=True) as tape:
    processed = wm.preprocess(data)
    _, post, _ = wm.loss(processed)
    states = actor_critic.imagine(wm.rssm, ac.actor, post, 3)
    feat = wm.rssm.features(states)
    objective = ac.actor_objective(feat, wm.heads['reward'], wm.heads['pcont'])
    value_loss = ac.value_loss(feat, wm.heads['reward'], wm.heads['pcont'])
    cut = ac.actor_objective(tf.stop_gradient(feat), wm.heads['reward'], wm.heads['pcont'])
  actor_vars = ac.actor.trainable_variables
  assert tf.linalg.global_norm(tape.gradient(objective, actor_vars)) > 0
  assert all(g is None for g in tape.gradient(cut, actor_vars))
  assert all(g is None for g in tape.gradient(value_loss, actor_vars))
  assert all(g is None for g in tape.gradient(value_loss, wm.model_variables))
  assert tf.linalg.global_norm(
      [g for g in tape.gradient(value_loss, ac.value.trainable_variables)]) > 0


@pytest.mark.parametrize('discrete', [False, True])
def test_entropy_bonus_trains_in_the_agent(discrete):
  """With action_beta (and value_maxent) the agent trains with finite losses, continuous
  (sampled entropy of the tanh-normal) and discrete (exact), and the bonus alone reaches
  the actor: with the imagined states' gradient cut, only it is left."""
  agent, _ = make_agent(discrete=discrete, action_beta=0.1, value_maxent=True)
  data = batch(agent)
  for _ in range(2):
    metrics = agent.train(data)
  assert np.isfinite(metrics['loss/action'].numpy()) and np.isfinite(metrics['loss/value'])
  wm, ac = agent.world_model, agent.actor_critic
  _, post, _ = wm.loss(wm.preprocess(data))
  feat = tf.stop_gradient(wm.rssm.features(actor_critic.imagine(wm.rssm, ac.actor, post, 3)))
  with tf.GradientTape() as tape:
    cut = ac.actor_objective(feat, wm.heads['reward'], wm.heads['pcont'])
  assert tf.linalg.global_norm(tape.gradient(cut, ac.actor.trainable_variables)) > 0


class Counted:
  """A head that counts its calls."""

  def __init__(self, head):
    self.head, self.calls = head, 0

  def __call__(self, feat):
    self.calls += 1
    return self.head(feat)

  def __getattr__(self, name):
    return getattr(self.head, name)


LOSSES_SETTINGS = {
    'default': dict(),
    'value_target_head': dict(value_target=True),
    'value_lambda_differs': dict(value_lambda=0.5),
    'pcont': dict(loss_pcont=True, value_loss_pcont=True),
    'pcont_stop_grad_value_only': dict(value_loss_pcont=True, pcont_stop_grad=True),
    'entropy_bonus': dict(action_beta=0.3),
    'entropy_bonus_maxent': dict(action_beta=0.3, value_maxent=True),
    'no_value_head': dict(value=False),
}


@pytest.mark.parametrize('setting', sorted(LOSSES_SETTINGS))
def test_losses_equal_the_separate_objectives_with_each_head_evaluated_once(setting):
  """`losses` (what the agent trains with) gives actor_objective's and value_loss's numbers
  and gradients, evaluating the reward, continuation and value heads once each where the
  separate objectives evaluated them up to three times."""
  options = dict(LOSSES_SETTINGS[setting])
  value = LinearHead([0.0, 1.0, 0.0], 0.5) if options.pop('value', True) else None
  if options.pop('value_target', False):
    options['value_target'] = Counted(LinearHead([0.5, 0.3, 0.0], -0.2))
  actor = NormalActor()
  feat = tf.Variable(FEAT)
  reward = LinearHead([1.0, 0.0, 0.5])
  reward_head = Counted(lambda f: tfd.Deterministic(reward(f).mean()))
  pcont_head = Counted(FixedHead(pcont_of))
  counted_value = Counted(value) if value is not None else None
  ac = actor_critic.ActorCritic(actor, counted_value, discount=0.9, lambda_=0.8,
                                value_discount=0.9, **options)
  with tf.GradientTape(persistent=True) as tape:
    objective, value_loss, imagined_reward = ac.losses(feat, reward_head, pcont_head)
  counts = (reward_head.calls, pcont_head.calls, counted_value.calls if value else 0)
  with tf.GradientTape(persistent=True) as separate:
    want_objective = ac.actor_objective(feat, reward_head, pcont_head)
    want_value_loss = ac.value_loss(feat, reward_head, pcont_head) if value else None
  assert counts[0] == 1 and counts[2] == (1 if value else 0)
  assert counts[1] == (1 if ac._action['loss_pcont'] or ac._value['loss_pcont'] else 0)
  assert float(imagined_reward) == pytest.approx(float(np.mean(reward(FEAT).mean())))
  assert float(objective) == pytest.approx(float(want_objective), rel=1e-6)
  sources = [feat] + list(actor.trainable_variables) + list(reward.trainable_variables)
  for got, want in zip(tape.gradient(objective, sources),
                       separate.gradient(want_objective, sources)):
    assert (got is None) == (want is None)
    if got is not None:
      np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
  if value is None:
    assert value_loss is None
    return
  assert float(value_loss) == pytest.approx(float(want_value_loss), rel=1e-6)
  for got, want in zip(tape.gradient(value_loss, value.trainable_variables),
                       separate.gradient(want_value_loss, value.trainable_variables)):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
  # Nothing but the value head learns from it (its predictions are shared with the actor's
  # objective, so they are not on stop-gradient features; the agent differentiates the
  # value loss with respect to the value head's variables only).
  assert all(g is None for g in tape.gradient(value_loss, sources[1:]))
