"""The agent's tf.functions, exploration, and behaviour-learning math."""

import numpy as np
import pytest
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.agents import actor_critic
from dreamer.envs import registry
from dreamer.envs.spaces import Box
from dreamer.networks import distributions
from dreamer.scripts import build
from tests.agents import test_learning

OBS = {'image': Box(0, 255, (64, 64, 3), np.uint8)}


def make_agent(discrete=False, **params):
  params = dict({'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'cnn_depth': 4,
                 'imagination_horizon': 3}, **params)
  if discrete:
    params['defaults'] = ['dreamer', 'discrete', 'debug']
  config = config_lib.build_config(params, registry.state_components_checked)
  act = Box(0, 1, (4,), np.float32, discrete=True) if discrete else Box(-1, 1, (2,))
  return build.agent(config, OBS, act), config


def batch(agent, size=(5, 5)):
  rng = np.random.default_rng(0)
  shape = size
  return {
      'image': tf.constant(rng.integers(0, 256, shape + (64, 64, 3)), tf.uint8),
      'action': tf.constant(rng.uniform(-1, 1, shape + (agent.action_size,)), tf.float32),
      'reward': tf.constant(rng.normal(size=shape), tf.float32),
      'pcont': tf.fill(shape, 0.99), 'reward_mask': tf.ones(shape + (1,))}


def test_train_and_policy_are_traced_once():
  agent, _ = make_agent()
  data = batch(agent)
  for _ in range(3):
    metrics = agent.train(data)
  assert agent.train.experimental_get_tracing_count() == 1
  assert int(agent.updates.numpy()) == 3
  for key in ('loss/model', 'loss/action', 'loss/value', 'optimizer_model/grad_norm'):
    assert np.isfinite(metrics[key].numpy())
  state = None
  obs = {'image': np.zeros((2, 64, 64, 3), np.uint8)}
  for step in range(4):
    action, state = agent.policy(obs, state, np.array([step == 0, False]), [0.3, 0.3])
    assert action.shape == (2, 2) and np.all(np.abs(action.numpy()) <= 1)
  assert agent.policy_trace_count() == 1


def test_train_updates_every_objective_and_evaluate_does_not():
  agent, _ = make_agent()
  data = batch(agent)
  before = [v.numpy().copy() for v in agent.trainable_variables]
  agent.evaluate(data)
  assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, agent.trainable_variables))
  agent.train(data)
  changed = {name: any(not np.array_equal(b, v.numpy()) for b, v in zip(
      before, agent.trainable_variables) if v.ref() in {x.ref() for x in variables})
      for name, variables in agent._variables.items()}
  assert all(changed.values()), changed


def test_two_phase_gradients_equal_one_tape_over_all_losses():
  """Behaviour learning runs after the model's gradients (to free the image activations
  first); every objective's gradient must be the one a single tape over all losses gives."""
  agent, _ = make_agent(debug=False)
  data = batch(agent)
  tf.random.set_seed(3)
  _, _, grads = agent._replica_gradients(data)
  tf.random.set_seed(3)
  with tf.GradientTape(persistent=True) as tape:
    losses, _ = agent._losses(data)
  assert set(grads) == set(losses) >= {'model', 'action', 'value'}
  for name, loss in losses.items():
    expected = tape.gradient(loss, agent._variables[name])
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in expected), name
    for got, want in zip(grads[name], expected):
      np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_cut_imagination_gradient_leaves_actor_without_gradient(monkeypatch):
  """The cut of LEARN_CUT=1 and of the cut learning test reaches the actor's whole
  gradient, while the value head still learns."""
  test_learning.cut_imagination_gradient(monkeypatch)
  agent, _ = make_agent(debug=False)  # Debug mode would stop on the zero gradient.
  metrics = agent.train(batch(agent))
  assert float(metrics['optimizer_action/grad_norm']) == 0.0
  assert float(metrics['optimizer_value/grad_norm']) > 0.0


def test_straight_through_onehot_gradient_is_the_gradient_through_the_probabilities():
  """d/dlogits of w . (sample + p - sg(p)) = d/dlogits of w . p = p * (w - w . p), the
  softmax's Jacobian by hand; the sample itself is an exact one-hot vector."""
  logits = tf.Variable([[0.1, 0.5, -0.2], [2.0, -1.0, 0.0]])
  weights = tf.constant([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
  with tf.GradientTape() as tape:
    sample = distributions.OneHotDist(logits).sample()
    objective = tf.reduce_sum(sample * weights)
  grad = tape.gradient(objective, logits).numpy()
  exp = np.exp(logits.numpy())
  probs = exp / exp.sum(-1, keepdims=True)
  w = weights.numpy()
  expected = probs * (w - (probs * w).sum(-1, keepdims=True))
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(np.sort(sample.numpy(), -1), [[0.0, 0.0, 1.0]] * 2)


def test_epsilon_greedy_rate():
  tf.random.set_seed(0)
  agent, _ = make_agent(discrete=True)
  count, epsilon = 4000, 0.3
  greedy = tf.one_hot(tf.fill([count], 2), 4)
  noisy = agent._explore(greedy, tf.fill([count], epsilon), 'epsilon_greedy').numpy()
  assert np.all(noisy.sum(-1) == 1)
  changed = np.mean(np.argmax(noisy, -1) != 2)
  expected = epsilon * (1 - 1 / 4)  # A random action can be the greedy one.
  assert abs(changed - expected) < 4 * np.sqrt(expected * (1 - expected) / count)
  unexplored = agent._explore(greedy, tf.zeros([count]), 'epsilon_greedy').numpy()
  np.testing.assert_array_equal(unexplored, greedy.numpy())


@pytest.mark.parametrize('planner, noise', [
    ('policy_sample', 0.0), ('policy_sample', 0.5), ('policy_mode', 0.0), ('policy_mode', 1.0)])
def test_discrete_policy_acts_with_one_hot_vectors(planner, noise):
  """Exactly one 1 and zeros: sampled, mode and epsilon-greedy random actions alike."""
  agent, _ = make_agent(discrete=True)
  obs = {'image': np.zeros((8, 64, 64, 3), np.uint8)}
  state = None
  for _ in range(3):
    action, state = agent.policy(obs, state, np.zeros(8, bool), np.full(8, noise), planner,
                                 'epsilon_greedy')
    action = action.numpy()
    assert action.shape == (8, 4) and action.dtype == np.float32
    np.testing.assert_array_equal(np.sort(action, -1), np.tile([0.0, 0.0, 0.0, 1.0], (8, 1)))


class _Head:
  def __init__(self, fn):
    self._fn = fn

  def __call__(self, feat):
    import tensorflow_probability as tfp
    return tfp.distributions.Deterministic(self._fn(feat))


def poison_posterior(agent):
  """NaN in the bias of the posterior's output layer: additions keep a NaN on every CPU
  (relu, tanh and clipping may not: they are min/max operations)."""
  for variable in agent.world_model.rssm.trainable_variables:
    if 'obs_stats' in variable.name and 'bias' in variable.name:
      variable.assign(variable * np.nan)


class _NanAction:
  """Wraps the actor's distribution so that the envs in `mask` sample NaN actions."""

  def __init__(self, dist, mask):
    self._dist, self._mask = dist, mask

  def sample(self):
    action = self._dist.sample()
    return tf.where(self._mask[:, None], tf.fill(tf.shape(action), np.nan), action)

  mode = sample


@pytest.mark.parametrize('discrete', [False, True])
@pytest.mark.parametrize('poison', ['weights', 'state', 'action'])
def test_a_diverged_model_acts_with_nan_whatever_the_cpu(monkeypatch, discrete, poison):
  """Clipping may turn NaN into a bound and argmax turns NaN logits into a valid one-hot
  action, depending on the CPU; the policy must give NaN for exactly the diverged envs."""
  agent, _ = make_agent(discrete)
  obs = {'image': np.zeros((3, 64, 64, 3), np.uint8)}
  latent, prev_action = agent.initial_state(3)
  diverged = [True, True, True]
  if poison == 'action':
    diverged = [False, False, True]
    actor = agent.actor_critic.actor
    monkeypatch.setattr(agent.actor_critic, 'actor', lambda feat: _NanAction(
        actor(feat), tf.constant(diverged)))
  action, _ = agent.policy(obs, (latent, prev_action), np.zeros(3, bool), [0.3] * 3)
  if poison == 'weights':
    assert np.isfinite(action.numpy()).all()
    poison_posterior(agent)
  elif poison == 'state':  # Only env 1 carries a NaN belief from its previous step.
    latent = dict(latent, belief=tf.tensor_scatter_nd_update(
        latent['belief'], [[1, 0]], [np.nan]))
    diverged = [False, True, False]
  action, (post, _) = agent.policy(obs, (latent, prev_action), np.zeros(3, bool), [0.3] * 3)
  action = action.numpy()
  assert np.isnan(action).all(-1).tolist() == diverged
  assert np.isfinite(action[np.logical_not(diverged)]).all()
  state_finite = np.isfinite(post['sample'].numpy()).all(-1).tolist()
  assert state_finite == ([True] * 3 if poison == 'action' else np.logical_not(diverged).tolist())


def test_pcont_terminal_step_zeroes_later_weights():
  ac = actor_critic.ActorCritic(
      actor=None, value=_Head(lambda f: tf.zeros(tf.shape(f)[:-1])),
      discount=1.0, lambda_=1.0, loss_pcont=True, pcont_weight=True)
  feat = tf.constant([[[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]]])
  reward = _Head(lambda f: f[..., 0])
  pcont = _Head(lambda f: f[..., 1])  # The second imagined state is terminal.
  objective = ac.actor_objective(feat, reward, pcont)
  # Returns over 3 steps (bootstrap from the 4th): [1 + 1 * (1 + 0), 1 + 0, 1 + 1 * 0];
  # weights [1, 1, 0]: the step after the terminal one counts for nothing.
  assert float(objective) == pytest.approx((2 + 1 + 0) / 3)


class _ActionRewardModel:
  """A mock world model whose state is the last action and whose reward is fn(action)."""

  class _Rssm:
    def imagine(self, actions, state):
      return {'action': actions}

    def features(self, state):
      return state['action']

  def __init__(self, reward_fn):
    self.rssm = self._Rssm()
    self.heads = {'reward': _Head(reward_fn)}


def test_cem_finds_the_optimum_of_a_quadratic_reward():
  from dreamer.agents import planet
  target = tf.constant([0.5, -0.3])
  model = _ActionRewardModel(lambda a: -tf.reduce_sum((a - target) ** 2, -1))
  planner = planet.CEMPlanner(model, action_size=2, horizon=4, beams=500, iterations=8,
                              topk=50, objective='reward')
  tf.random.set_seed(1)
  action = planner.plan({'belief': tf.zeros([3, 1])})
  np.testing.assert_allclose(action.numpy(), np.tile(target.numpy(), (3, 1)), atol=0.05)


def test_cem_picks_the_best_one_hot_action():
  from dreamer.agents import planet
  best = 2
  model = _ActionRewardModel(lambda a: a[..., best] - 0.1 * tf.reduce_sum(a, -1))
  planner = planet.CEMPlanner(model, action_size=4, discrete=True, horizon=3, beams=200,
                              iterations=4, topk=20, objective='reward')
  tf.random.set_seed(2)
  action = planner.plan({'belief': tf.zeros([2, 1])}).numpy()
  np.testing.assert_array_equal(action, np.eye(4)[[best, best]])


def test_tanh_normal_mode_and_log_prob_are_finite_at_the_bounds():
  dist = distributions.tanh_normal(tf.zeros([2, 3]), tf.ones([2, 3]))
  assert np.all(np.abs(dist.mode().numpy()) <= 1)
  assert np.all(np.isfinite(dist.log_prob(tf.ones([2, 3])).numpy()))
  assert dist.entropy().shape == (2,)


def test_actor_only_maximises_imagined_rewards_without_bootstrap():
  # value_head: False (the `actor` preset): the objective is the plain discounted return
  # of predicted rewards at every imagined step, R_i = r_i + g R_{i+1} with R_H = 0,
  # averaged without discount weights (SPEC 5.7 step 3).
  ac = actor_critic.ActorCritic(actor=None, value=None, discount=0.5, lambda_=0.95)
  feat = tf.constant([[[1.0], [2.0], [3.0]]])
  reward = _Head(lambda f: f[..., 0])
  objective = ac.actor_objective(feat, reward, pcont_head=None)
  # Returns [1 + 0.5 * 3.5, 2 + 0.5 * 3, 3]; a bootstrap or weights would change this.
  assert float(objective) == pytest.approx((2.75 + 3.5 + 3.0) / 3)
  agent, _ = make_agent(defaults=['actor', 'debug'])
  assert agent.actor_critic.value is None and 'value' not in agent.optimizers
  metrics = agent.train(batch(agent))
  assert 'loss/value' not in metrics and np.isfinite(float(metrics['loss/action']))


def _weights(module):
  return [v.numpy().copy() for v in module.variables]


def _assert_weights(actual, expected):
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


def test_target_heads_lag_and_move_at_their_period():
  # B = 5: updates run at trainer steps 0, 5, 10, 15. The value target copies fully
  # every 10 steps; the action target moves halfway every 15 steps.
  agent, _ = make_agent(value_target_head=True, action_target_head=True,
                        value_target_period=10, action_target_period=15,
                        action_target_update=0.5)
  ac = agent.actor_critic
  data = batch(agent)
  assert all(v.ref() not in {w.ref() for ws in agent._variables.values() for w in ws}
             for v in ac.action_target.variables + ac.value_target.variables)
  agent.train(data)  # Step 0: both copied fully.
  actor_1 = _weights(ac.actor)
  _assert_weights(_weights(ac.action_target), actor_1)
  _assert_weights(_weights(ac.value_target), _weights(ac.value))
  value_1 = _weights(ac.value)
  agent.train(data)  # Step 5: neither is due; both lag their online heads.
  _assert_weights(_weights(ac.action_target), actor_1)
  _assert_weights(_weights(ac.value_target), value_1)
  assert any(not np.allclose(a, b) for a, b in zip(_weights(ac.actor), actor_1))
  assert any(not np.allclose(a, b) for a, b in zip(_weights(ac.value), value_1))
  agent.train(data)  # Step 10: the value target copies, the action target still lags.
  _assert_weights(_weights(ac.value_target), _weights(ac.value))
  _assert_weights(_weights(ac.action_target), actor_1)
  agent.train(data)  # Step 15: the action target moves halfway to the actor.
  _assert_weights(_weights(ac.action_target),
                  [0.5 * a + 0.5 * b for a, b in zip(actor_1, _weights(ac.actor))])


def test_value_model_imagines_with_the_target_actor(monkeypatch):
  used = []
  original = actor_critic.imagine

  def spy(rssm, actor, start, horizon, stop_grad):
    used.append(actor)
    return original(rssm, actor, start, horizon, stop_grad)

  monkeypatch.setattr(actor_critic, 'imagine', spy)
  agent, _ = make_agent(action_target_head=True)
  agent.train(batch(agent))
  assert used == [agent.actor_critic.actor, agent.actor_critic.action_target]
  used.clear()
  agent, _ = make_agent()
  agent.train(batch(agent))
  assert used == [agent.actor_critic.actor]


def test_cem_plans_inside_one_tf_function_batched_over_envs(monkeypatch):
  agent, config = make_agent(defaults=['planet', 'debug'], planner_beams=30,
                             planner_iterations=2, planner_topk=5, planner_horizon=4)
  assert agent.actor_critic is None and config.test_planner == 'cem'
  (name, planner), = agent.planners.items()  # Train and test collections share it.
  assert name == 'cem_reward_h4'
  batch_sizes = []
  plan = planner.plan

  def spy(state):
    batch_sizes.append(state['belief'].shape[0])
    return plan(state)

  monkeypatch.setattr(planner, 'plan', spy)
  obs = {'image': np.zeros((2, 64, 64, 3), np.uint8)}
  state = None
  for step in range(3):
    action, state = agent.policy(obs, state, np.array([step == 0, False]), [0.0, 0.0], name)
    assert action.shape == (2, 2) and np.all(np.abs(action.numpy()) <= 1)
  # Traced once for both envs together; later steps run the graph without Python.
  assert agent.policy_trace_count() == 1 and batch_sizes == [2]


def test_train_and_test_collections_plan_with_their_own_objective():
  agent, _ = make_agent(train_planner='cem', test_planner='cem',
                        train_planner_objective='reward', test_planner_objective='reward_value',
                        planner_beams=10, planner_topk=2)
  assert sorted(agent.planners) == ['cem_reward_h12', 'cem_reward_value_h12']
  assert agent.planners['cem_reward_value_h12']._value is agent.actor_critic.value
  with pytest.raises(build.BuildError, match='reward_value needs value_head'):
    make_agent(defaults=['planet', 'debug'], test_planner_objective='reward_value')


def test_an_update_in_parts_sums_the_parts_gradients_by_their_share():
  """train_chunks: 3 over 5 sequences (parts of 2, 2, 1) gives each objective's losses,
  metrics and gradients as the parts' weighted sum; with the same random draws in the
  same order, exactly what the parts give one by one."""
  agent, _ = make_agent(debug=False, train_chunks=3)
  data = batch(agent)
  tf.random.set_seed(5)
  losses, metrics, grads = agent._replica_gradients(data)
  tf.random.set_seed(5)
  parts = [agent._part_gradients({k: v[start:stop] for k, v in data.items()})
           for start, stop in ((0, 2), (2, 4), (4, 5))]
  shares = (0.4, 0.4, 0.2)
  for name in losses:
    want = sum(share * part[0][name] for share, part in zip(shares, parts))
    np.testing.assert_allclose(losses[name].numpy(), want.numpy(), rtol=1e-5, err_msg=name)
  for key in metrics:
    want = sum(share * part[1][key] for share, part in zip(shares, parts))
    np.testing.assert_allclose(metrics[key].numpy(), want.numpy(), rtol=1e-5, atol=1e-6,
                               err_msg=key)
  assert set(grads) >= {'model', 'action', 'value'}
  for name in grads:
    for index, got in enumerate(grads[name]):
      want = sum(share * part[2][name][index] for share, part in zip(shares, parts))
      np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-7, err_msg=name)
  # The parts differ, so a wrong share or a dropped part would show above.
  assert not np.allclose(parts[0][0]['model'].numpy(), parts[2][0]['model'].numpy())
  metrics = agent.train(data)  # Traced: the parts run one after another in the graph.
  assert np.isfinite(metrics['loss/model'].numpy()) and int(agent.updates.numpy()) == 1
