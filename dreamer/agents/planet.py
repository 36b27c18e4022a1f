"""PlaNet's online planner: the cross-entropy method over action sequences in latent space."""

import tensorflow as tf

from dreamer import ops


class CEMPlanner(tf.Module):
  """Plans from a batch of RSSM states by refitting a Gaussian over action sequences.

  Args:
    world_model: has .rssm (imagine, features) and .heads['reward'].
    value: value head for the 'reward_value' objective, else None.
    objective: 'reward' (sum of predicted rewards) or 'reward_value' (lambda-return
      over the horizon, bootstrapped with the value of the last state).
    discrete: one-hot actions: the Gaussian is over action scores, each candidate is
      scored with the one-hot of its argmax, and the plan's first action is one-hot.
  """

  def __init__(self, world_model, value=None, *, action_size, discrete=False, horizon=12,
               beams=1000, iterations=10, topk=100, objective='reward', discount=0.99,
               lambda_=0.95, name='cem'):
    super().__init__(name=name)
    if objective == 'reward_value' and value is None:
      raise ValueError("planner objective 'reward_value' needs a value head")
    self._wm = world_model
    self._value = value
    self._size = action_size
    self._discrete = discrete
    self._horizon, self._beams = horizon, beams
    self._iterations, self._topk = iterations, topk
    self._objective = objective
    self._discount, self._lambda = discount, lambda_

  def plan(self, state):
    """Returns the first action of the planned sequence for every state, [N, A]."""
    n = tf.shape(state['belief'])[0]
    beams, horizon, size = self._beams, self._horizon, self._size
    tiled = {k: tf.repeat(v, beams, axis=0) for k, v in state.items()}
    mean = tf.zeros([n, horizon, size])
    std = tf.ones([n, horizon, size])
    for _ in range(self._iterations):
      noise = tf.random.normal([n, beams, horizon, size])
      actions = tf.clip_by_value(mean[:, None] + std[:, None] * noise, -1.0, 1.0)
      candidates = tf.reshape(actions, [n * beams, horizon, size])
      if self._discrete:
        candidates = tf.one_hot(tf.argmax(candidates, -1), size)
      score = self.score(tiled, candidates)
      score = tf.reshape(score, [n, beams])
      _, indices = tf.math.top_k(score, self._topk, sorted=False)
      elite = tf.gather(actions, indices, axis=1, batch_dims=1)
      mean, variance = tf.nn.moments(elite, 1)
      std = tf.sqrt(variance + 1e-6)
    if self._discrete:
      return tf.one_hot(tf.argmax(mean[:, 0], -1), size)
    return mean[:, 0]

  def score(self, state, actions):
    """Objective of each action sequence [N, H, A] from the matching states."""
    states = self._wm.rssm.imagine(actions, state)
    feat = self._wm.rssm.features(states)
    reward = self._wm.heads['reward'](feat).mode()
    if self._objective == 'reward':
      return tf.reduce_sum(reward, 1)
    value = self._value(feat).mode()
    discount = self._discount * tf.ones_like(reward[:, :-1])
    returns = ops.lambda_return(
        reward[:, :-1], value[:, :-1], discount, value[:, -1], self._lambda, axis=1)
    return returns[:, 0]
