"""The world model: encoder, RSSM and prediction heads, with its losses (SPEC 4, 5.1-5.4)."""

import tensorflow as tf

from dreamer import ops
from dreamer.models import rssm as rssm_lib
from dreamer.networks import conv
from dreamer.networks import heads
from dreamer.networks import layers


def preprocess_image(image, bits=8, noise=True):
  """uint8 [0, 255] -> float in [-0.5, 0.5), with uniform dequantisation noise (SPEC 4.1)."""
  bins = 2 ** bits
  x = tf.cast(image, tf.float32)
  if bits < 8:
    x = tf.floor(x / 2 ** (8 - bits))
  if noise:
    # (x + u) / bins with u ~ U[0, 1): the same as x / bins + U[0, 1 / bins), in fewer
    # passes over the batch's images.
    x = x + tf.random.uniform(tf.shape(x))
  return x * (1.0 / bins) - 0.5


def postprocess_image(x, bits=8):
  """Model space back to [0, 1) for summaries."""
  bins = 2 ** bits
  return tf.floor(bins * (x + 0.5)) / bins


class ProprioEncoder(tf.Module):
  """MLP (ReLU) over concatenated vector observations, for users without pixels."""

  def __init__(self, keys, num_layers=3, units=300, dtype=tf.float32, name='encoder'):
    super().__init__(name=name)
    self.keys = list(keys)
    with self.name_scope:
      self._layers = [layers.Dense(units, 'relu', dtype, name=f'h{i}') for i in range(num_layers)]

  def __call__(self, data):
    x = tf.concat([tf.cast(_flatten_obs(data[k]), tf.float32) for k in self.keys], -1)
    for layer in self._layers:
      x = layer(x)
    return tf.cast(x, tf.float32)


def _flatten_obs(x):
  # [B, T, ...] vector observations -> [B, T, N].
  shape = tf.shape(x)
  return tf.reshape(x, tf.concat([shape[:2], [-1]], 0)) if len(x.shape) > 2 else x[..., None]


class WorldModel(tf.Module):
  """Learns to represent observations and predict images, rewards and continuation.

  Heads listed in `gradient_heads` train the encoder and RSSM; the others see
  stop-gradient features and have optimisers of their own.
  """

  def __init__(self, *, action_size, obs_shapes, state_components=None,
               encoder='conv', proprio_keys=(), proprio_layers=3, proprio_units=300,
               stoch=30, deter=200, model_layers=1, act='elu', min_stddev=0.1,
               future_rnn=True, mean_only=False, num_units=400, reward_layers=2,
               pcont_layers=3, image_std=1.0, gradient_heads=('image', 'reward'),
               free_nats=3.0, divergence_scale=1.0, loss_scales=None, image_bits=8,
               pcont_label_weight=None, overshooting_distance=0, overshooting_scale=0.0,
               os_stop_posterior_grad=True, cnn_depth=32, dtype=tf.float32,
               name='world_model'):
    super().__init__(name=name)
    state_components = dict(state_components or {})
    self._free_nats = free_nats
    self._divergence_scale = divergence_scale
    self._loss_scales = dict(loss_scales or {})
    self._image_bits = image_bits
    self._pcont_label_weight = pcont_label_weight
    self._os_distance = overshooting_distance
    self._os_scale = overshooting_scale
    self._os_stop_grad = os_stop_posterior_grad
    self.action_size = action_size
    image_channels = obs_shapes['image'][-1] if 'image' in obs_shapes else 3
    with self.name_scope:
      if encoder == 'conv':
        self.encoder = conv.ConvEncoder(cnn_depth, dtype=dtype)
      else:
        self.encoder = ProprioEncoder(proprio_keys, proprio_layers, proprio_units, dtype)
      self.rssm = rssm_lib.RSSM(stoch, deter, deter, model_layers, act, min_stddev,
                                future_rnn, mean_only, dtype)
      self.heads = {}
      if encoder == 'conv' or 'image' in gradient_heads:
        self.heads['image'] = conv.ConvDecoder(image_channels, cnn_depth, image_std, dtype)
      self.heads['reward'] = heads.DenseHead(
          (), reward_layers, num_units, act, dtype=dtype, name='head_reward')
      self.heads['pcont'] = heads.DenseHead(
          (), pcont_layers, num_units, act, dist='binary', dtype=dtype, name='head_pcont')
      for key, (shape, num_layers) in sorted(state_components.items()):
        if key in self.heads:
          continue  # 'reward' listed as a state component re-declares the reward head.
        self.heads[key] = heads.DenseHead(
            shape, num_layers, num_units, act, dtype=dtype, name=f'head_{key}')
    missing = [h for h in gradient_heads if h not in self.heads]
    if missing:
      raise ValueError(f"gradient_heads names heads that do not exist: {', '.join(missing)}")
    self.gradient_heads = [h for h in self.heads if h in gradient_heads]
    self.other_heads = [h for h in self.heads if h not in gradient_heads]
    # Build every variable now so optimisers and checkpoints see them all and the
    # train step is traced only once.
    dummy = {k: tf.zeros((1, 1) + tuple(shape)) for k, shape in obs_shapes.items()}
    embed = self.embed(dummy)[:, 0]
    state = self.rssm.initial(1)
    self.rssm.obs_step(state, tf.zeros([1, action_size]), embed)
    feat = tf.zeros([1, 1, self.rssm.feature_size])
    for head in self.heads.values():
      head(feat)

  @property
  def model_variables(self):
    """Variables trained by the model objective: encoder, RSSM and gradient heads."""
    modules = [self.encoder, self.rssm] + [self.heads[h] for h in self.gradient_heads]
    return tuple(v for m in modules for v in m.trainable_variables)

  def preprocess(self, data, noise=True):
    data = dict(data)
    if 'image' in data:
      data['image'] = preprocess_image(data['image'], self._image_bits, noise)
    return data

  def embed(self, data):
    if isinstance(self.encoder, conv.ConvEncoder):
      return tf.cast(self.encoder(data['image']), tf.float32)
    return self.encoder(data)

  def loss(self, data):
    """Losses to minimise for the model and each non-gradient head, on a preprocessed batch.

    Returns:
      losses: {'model': scalar, <other head>: scalar}.
      post: posterior states [B, T, ...] (imagination starts here).
      metrics: raw objective values (log-likelihoods, clipped KL) and model statistics.
    """
    embed = self.embed(data)
    post, prior = self.rssm.observe(embed, data['action'])
    feat = self.rssm.features(post)
    kl = self.rssm.kl(post, prior)
    divergence = ops.free_nats_kl(kl, self._free_nats)
    metrics = {'divergence': divergence, 'kl': tf.reduce_mean(kl),
               'prior_entropy': tf.reduce_mean(self.rssm.dist(prior).entropy()),
               'posterior_entropy': tf.reduce_mean(self.rssm.dist(post).entropy())}
    model_loss = self._divergence_scale * divergence
    losses = {}
    for name, head in self.heads.items():
      gradient = name in self.gradient_heads
      likelihood = self._likelihood(name, head, feat if gradient else tf.stop_gradient(feat),
                                    data)
      metrics[name] = likelihood
      scaled = -likelihood * self._loss_scales.get(name, 1.0)
      if gradient:
        model_loss += scaled
      else:
        losses[name] = scaled
    if self._os_scale and self._os_distance > 1:
      overshooting = self._overshooting(post, data['action'])
      metrics['overshooting'] = overshooting
      model_loss += self._os_scale * overshooting
    losses['model'] = model_loss
    return losses, post, metrics

  def predict_images(self, data, context=5):
    """What the model sees and dreams, for summaries (SPEC 9.3), on a preprocessed batch.

    The posterior runs over the whole sequence; its decoded means are the reconstructions.
    From the posterior at step `context` - 1 the prior rolls forward with the recorded
    actions; the prediction is the first `context` reconstructions and then that rollout.

    Returns:
      dict of [B, T, H, W, C] float32 images in [0, 1]: truth, reconstruction, prediction.
    """
    decoder = self.heads['image']
    length = data['action'].shape[1]
    context = max(1, min(context, length))
    post, _ = self.rssm.observe(self.embed(data), data['action'])
    reconstruction = decoder(self.rssm.features(post)).mode()
    parts = [reconstruction[:, :context]]
    if length > context:
      start = {k: v[:, context - 1] for k, v in post.items()}
      prior = self.rssm.imagine(data['action'][:, context:], start)
      parts.append(decoder(self.rssm.features(prior)).mode())
    prediction = tf.concat(parts, 1)
    show = lambda x: tf.clip_by_value(postprocess_image(x, self._image_bits), 0.0, 1.0)
    return {'truth': show(data['image']), 'reconstruction': show(reconstruction),
            'prediction': show(prediction)}

  def _likelihood(self, name, head, feat, data):
    dist = head(feat)
    if name == 'reward':
      mask = tf.reshape(data['reward_mask'], tf.shape(data['reward']))
      return tf.reduce_mean(mask * dist.log_prob(data['reward']))
    if name == 'pcont' and self._pcont_label_weight:
      target = data['pcont']
      weight = tf.where(target < 0.5, self._pcont_label_weight, 1.0)
      return tf.reduce_mean(weight * dist.log_prob(target))
    return tf.reduce_mean(dist.log_prob(tf.cast(data[name], tf.float32)))

  def _overshooting(self, post, action):
    """Latent overshooting (PlaNet): open-loop priors from every start step vs posteriors."""
    target = tf.nest.map_structure(
        tf.stop_gradient if self._os_stop_grad else tf.identity, post)
    length = action.shape[1]
    terms = []
    state = {k: v[:, :-1] for k, v in post.items()}
    for distance in range(1, min(self._os_distance, length)):
      # Priors `distance` steps ahead of each posterior, compared to the posterior there.
      steps = length - distance
      state = {k: v[:, :steps] for k, v in state.items()}
      flat = {k: tf.reshape(v, [-1, v.shape[-1]]) for k, v in state.items()}
      act = tf.reshape(action[:, distance:distance + steps], [-1, action.shape[-1]])
      flat = self.rssm.img_step(flat, act)
      state = {k: tf.reshape(v, [-1, steps, v.shape[-1]]) for k, v in flat.items()}
      goal = {k: v[:, distance:] for k, v in target.items()}
      if distance > 1:  # Distance 1 is the ordinary KL term.
        terms.append(ops.free_nats_kl(self.rssm.kl(goal, state), self._free_nats))
    return tf.add_n(terms) / len(terms) if terms else tf.constant(0.0)
