"""Recurrent state-space model (SPEC 4.3): deterministic GRU path plus a Gaussian latent.

A state is a dict of [batch, ...] tensors: mean, stddev, sample (S each) and belief (D).
"""

import tensorflow as tf
import tensorflow_probability as tfp

from dreamer import ops
from dreamer.networks import layers

tfd = tfp.distributions


class RSSM(tf.Module):
  """initial / observe / imagine / obs_step / img_step over dict states."""

  def __init__(self, stoch=30, deter=200, hidden=200, num_layers=1, act='elu',
               min_stddev=0.1, future_rnn=True, mean_only=False, dtype=tf.float32,
               name='rssm'):
    super().__init__(name=name)
    self._stoch, self._deter = stoch, deter
    self._min_stddev = min_stddev
    self._future_rnn = future_rnn
    self._mean_only = mean_only
    self._dtype = dtype
    with self.name_scope:
      self._img_in = [layers.Dense(hidden, act, dtype, name=f'img_in{i}')
                      for i in range(num_layers)]
      self._cell = layers.GRUCell(deter, dtype, name='gru')
      self._img_out = [layers.Dense(hidden, act, dtype, name=f'img_out{i}')
                       for i in range(num_layers)]
      self._img_stats = layers.Dense(2 * stoch, dtype=dtype, name='img_stats')
      self._obs_hidden = [layers.Dense(hidden, act, dtype, name=f'obs{i}')
                          for i in range(num_layers)]
      self._obs_stats = layers.Dense(2 * stoch, dtype=dtype, name='obs_stats')

  @property
  def feature_size(self):
    return self._stoch + self._deter

  def initial(self, batch_size):
    zeros = lambda size: tf.zeros([batch_size, size], tf.float32)
    return dict(mean=zeros(self._stoch), stddev=zeros(self._stoch),
                sample=zeros(self._stoch), belief=zeros(self._deter))

  def observe(self, embed, action, state=None):
    """Closed loop over [B, T]: posterior at every step. Returns (posterior, prior)."""
    if state is None:
      state = self.initial(tf.shape(action)[0])
    embed, action = _time_major(embed), _time_major(action)
    post, prior = ops.static_scan(
        lambda prev, inputs: self.obs_step(prev[0], *inputs),
        (action, embed), (state, state))
    return _batch_major(post), _batch_major(prior)

  def imagine(self, action, state=None):
    """Open loop over [B, T] with the given actions: prior at every step."""
    if state is None:
      state = self.initial(tf.shape(action)[0])
    prior = ops.static_scan(self.img_step, _time_major(action), state)
    return _batch_major(prior)

  def obs_step(self, prev_state, prev_action, embed):
    """Posterior given the previous state, the action that led here and the embedding."""
    prior = self.img_step(prev_state, prev_action)
    x = tf.concat([tf.cast(prior['belief'], self._dtype), tf.cast(embed, self._dtype)], -1)
    for layer in self._obs_hidden:
      x = layer(x)
    post = self._stats(self._obs_stats(x))
    post['belief'] = prior['belief']
    return post, prior

  def img_step(self, prev_state, prev_action):
    """Prior transition from the previous state under an action."""
    x = tf.concat([prev_state['sample'], tf.cast(prev_action, tf.float32)], -1)
    x = tf.cast(x, self._dtype)
    for layer in self._img_in:
      x = layer(x)
    belief = self._cell(x, prev_state['belief'])
    if self._future_rnn:
      x = belief
    for layer in self._img_out:
      x = layer(x)
    state = self._stats(self._img_stats(x))
    state['belief'] = tf.cast(belief, tf.float32)
    return state

  def _stats(self, x):
    mean, std = tf.split(tf.cast(x, tf.float32), 2, -1)
    std = tf.nn.softplus(std) + self._min_stddev
    if self._mean_only:
      sample = mean
    else:
      sample = mean + std * tf.random.normal(tf.shape(mean))
    return dict(mean=mean, stddev=std, sample=sample)

  def features(self, state):
    return tf.concat([state['sample'], state['belief']], -1)

  def dist(self, state):
    return tfd.MultivariateNormalDiag(state['mean'], state['stddev'])

  def kl(self, post, prior):
    """KL(posterior || prior) summed over the latent dims: one value per element."""
    return ops.gaussian_kl(post['mean'], post['stddev'], prior['mean'], prior['stddev'])


def _time_major(x):
  return tf.nest.map_structure(lambda t: tf.experimental.numpy.swapaxes(t, 0, 1), x)


def _batch_major(x):
  return _time_major(x)
