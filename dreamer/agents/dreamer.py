"""The Dreamer agent: learns a world model and behaviours in its imagination (SPEC 5, 8.7)."""

import tensorflow as tf

from dreamer.agents import actor_critic as ac_lib
from dreamer.agents import distribute


class Dreamer(tf.Module):
  """World model + actor-critic + one optimiser per objective.

  Args:
    world_model: models.world_model.WorldModel.
    actor_critic: agents.actor_critic.ActorCritic, or None (PlaNet).
    optimizers: dict of name -> Optimizer for 'model', every non-gradient head, and
      'action' / 'value' when those exist.
    planners: dict of planner name -> object with plan(rssm_state) -> actions (CEM);
      `policy` uses one when given its name.
    batch_size: B; trainer steps advance by B per update.
    horizon: imagination horizon H (0: no behaviour learning).
    skip_last: drop this many last time steps of each posterior sequence as starts.
    discrete: actions are one-hot vectors.
    encoder_keys: observation keys the encoder reads when acting.
    openloop_sequences, openloop_context: how many sequences of a batch the image
      predictions show, and how many of their first frames the posterior sees (SPEC 9.3).
    chunks: each update goes through its (replica's) batch in this many parts of
      sequences, one after the other, and applies the sum of their gradients weighted by
      their share of the batch: the losses are means over sequences, so this is the
      whole batch's update (with other random draws) at a fraction of the peak memory.
    jit: XLA-compile the train step and the policy. Under a strategy XLA compiles each
      replica's losses and gradients; the all-reduce and the optimiser updates, which
      reach across devices, stay outside the compiled function.
    strategy: a tf.distribute strategy whose scope built all variables, or None. `train`
      and `evaluate` then take per-replica batches (see agents.distribute).
  """

  def __init__(self, world_model, actor_critic, optimizers, *, planners=None, batch_size=50,
               horizon=15, skip_last=None, stop_grad_pre_action=True, discrete=False,
               encoder_keys=('image',), debug=False, chunks=1, jit=False, strategy=None,
               openloop_sequences=6, openloop_context=5, name='agent'):
    super().__init__(name=name)
    self.world_model = world_model
    self.actor_critic = actor_critic
    self.optimizers = optimizers
    self.planners = dict(planners or {})
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
    self._batch = batch_size
    self._horizon = horizon
    self._skip_last = skip_last
    self._stop_grad = stop_grad_pre_action
    self._discrete = discrete
    self._encoder_keys = tuple(encoder_keys)
    self._debug = debug
    self._chunks = chunks
    self._openloop = (openloop_sequences, openloop_context)
    self._jit = jit or None
    self._strategy = strategy
    self._variables = self._partition()
    for name, optimizer in self.optimizers.items():
      optimizer.build(self._variables[name])
    # One XLA cluster must not touch another device's variables (compiling the whole step
    # under a strategy fails so), so there only the per-replica math is compiled; each
    # replica traces it under its own device, against its own copies of the variables.
    per_replica = bool(self._jit) and strategy is not None
    self._gradients = self._replica_gradients
    if per_replica:
      self._gradients = tf.function(self._replica_gradients, jit_compile=True, autograph=False)
    self.train = tf.function(self._train, jit_compile=None if per_replica else self._jit,
                             autograph=False)
    self.evaluate = tf.function(self._evaluate, autograph=False)
    self.predict_images = None
    if 'image' in world_model.heads:
      predict = tf.function(self._predict_images, autograph=False)
      self.predict_images = lambda data: predict(self._local_batch(data))
    self._policies = _Untracked()

  @property
  def action_size(self):
    return self.world_model.action_size

  def _partition(self):
    wm = self.world_model
    variables = {'model': wm.model_variables}
    for name in wm.other_heads:
      variables[name] = tuple(wm.heads[name].trainable_variables)
    if self.actor_critic is not None:
      variables['action'] = tuple(self.actor_critic.actor.trainable_variables)
      if self.actor_critic.value is not None:
        variables['value'] = tuple(self.actor_critic.value.trainable_variables)
    missing = set(variables) ^ set(self.optimizers)
    if missing:
      raise ValueError(f"optimizers and objectives differ: {', '.join(sorted(missing))}")
    return variables

  def _losses(self, data):
    losses, post, metrics = self._model_losses(data)
    behaviour, behaviour_metrics = self._behaviour_losses(post)
    return dict(losses, **behaviour), dict(metrics, **behaviour_metrics)

  def _model_losses(self, data):
    wm = self.world_model
    losses, post, metrics = wm.loss(wm.preprocess(data))
    self._check_losses(losses)
    return losses, post, metrics

  def _behaviour_losses(self, post):
    """Actor and value losses on trajectories imagined from the posterior states `post`."""
    losses, metrics = {}, {}
    if self.actor_critic is None or self._horizon <= 0:
      return losses, metrics
    wm = self.world_model
    start = post
    if self._skip_last:
      start = {k: v[:, :-self._skip_last] for k, v in post.items()}
    states = ac_lib.imagine(
        wm.rssm, self.actor_critic.actor, start, self._horizon, self._stop_grad)
    feat = wm.rssm.features(states)
    action_scale, value_scale = self.actor_critic.loss_scales
    value_feat = None
    if self.actor_critic.value is not None and self.actor_critic.action_target is not None:
      # The value model learns from trajectories of the slowly updated target actor.
      value_feat = wm.rssm.features(ac_lib.imagine(
          wm.rssm, self.actor_critic.action_target, start, self._horizon, self._stop_grad))
    objective, value_loss, imagined_reward = self.actor_critic.losses(
        feat, wm.heads['reward'], wm.heads['pcont'], value_feat)
    metrics['action'] = objective
    losses['action'] = -objective * action_scale
    if value_loss is not None:
      metrics['value'] = value_loss
      losses['value'] = value_loss * value_scale
    metrics['imagined_reward'] = imagined_reward
    self._check_losses(losses)
    return losses, metrics

  def _check_losses(self, losses):
    if self._debug:
      for name, loss in losses.items():
        tf.debugging.check_numerics(loss, f'{name} loss')

  def _train(self, data):
    result = distribute.run(self._strategy, self._update, data)
    self._update_targets()
    self.updates.assign_add(1)
    return result

  def _update(self, data):
    """One optimisation step of every objective, on this replica's part of the batch."""
    losses, metrics, grads = self._gradients(data)
    result = {f'objectives/{k}': v for k, v in metrics.items()}
    for name, optimizer in self.optimizers.items():
      stats = optimizer.apply_gradients(grads[name], self._variables[name])
      if self._debug:
        # A non-finite norm under float16 is an overflow, whose step loss scaling skips.
        norm = stats['grad_norm']
        norm = tf.where(tf.math.is_finite(norm), norm, 1.0) if optimizer.mixed else norm
        tf.debugging.assert_greater(norm, 0.0, f'zero gradient for {name}')
      for key, value in stats.items():
        result[f'optimizer_{name}/{key}'] = value
    for name, loss in losses.items():
      result[f'loss/{name}'] = loss
    return result

  def _replica_gradients(self, data):
    """Losses, metrics and this replica's gradients of every objective, from its batch in
    `chunks` parts one after the other (see the class docstring)."""
    if self._chunks == 1:
      return self._part_gradients(data)
    size = next(iter(data.values())).shape[0]
    if size is None or size < self._chunks:
      raise ValueError(f'a batch of {size} sequences does not split into {self._chunks} parts')
    sizes = [size // self._chunks + (i < size % self._chunks) for i in range(self._chunks)]
    parts = zip(*(tf.split(value, sizes) for value in data.values()))
    total, done = None, []
    for count, values in zip(sizes, parts):
      # Each part starts when the previous one's gradients exist, so that its activations
      # are freed first and only one part's are held at a time.
      with tf.control_dependencies(done):
        part = {key: tf.identity(value) for key, value in zip(data, values)}
      losses, metrics, grads = self._part_gradients(part)
      done = [g for name in grads for g in grads[name]]
      weighted = tf.nest.map_structure(lambda x: x * (count / size), (losses, metrics, grads))
      total = weighted if total is None else tf.nest.map_structure(tf.add, total, weighted)
    return total

  def _part_gradients(self, data):
    """Losses, metrics and gradients of every objective on (part of) a batch.

    Two phases: the world model's losses and gradients, then behaviour learning from its
    posterior states. Every optimiser takes gradients only of its own variables, so the
    imagination starting from stop_gradient(post) changes no gradient; ordering it after
    the model's gradients frees the encoder's and decoder's activations before the
    imagined trajectories' are made (a 50x50 update's peak memory 4.4 -> 3 GB on CPU).
    """
    with tf.GradientTape(persistent=True) as tape:
      losses, post, metrics = self._model_losses(data)
      scaled = self._scaled(losses)
    grads = self._loss_gradients(tape, scaled)
    del tape
    done = [g for name in grads for g in grads[name]]
    with tf.control_dependencies(done):
      post = {k: tf.identity(tf.stop_gradient(v)) for k, v in post.items()}
    with tf.GradientTape(persistent=True) as tape:
      behaviour, behaviour_metrics = self._behaviour_losses(post)
      scaled = self._scaled(behaviour)
    grads.update(self._loss_gradients(tape, scaled))
    del tape
    return dict(losses, **behaviour), dict(metrics, **behaviour_metrics), grads

  def _scaled(self, losses):
    """Each loss as its optimiser differentiates it (replica share, mixed-precision scale);
    made under the tape, so that the scaling is recorded."""
    return {name: self.optimizers[name].scale(loss) for name, loss in losses.items()}

  def _loss_gradients(self, tape, scaled):
    return {name: self.optimizers[name].gradients(tape, loss, self._variables[name])
            for name, loss in scaled.items()}

  def _evaluate(self, data):
    return distribute.run(self._strategy, self._evaluate_replica, data)

  def _evaluate_replica(self, data):
    losses, metrics = self._losses(data)
    result = {f'objectives/{k}': v for k, v in metrics.items()}
    for name, loss in losses.items():
      result[f'loss/{name}'] = loss
    return result

  def _local_batch(self, data):
    """The first replica's part of a per-replica batch; a plain batch as it is."""
    if self._strategy is None:
      return data
    return {k: self._strategy.experimental_local_results(v)[0] for k, v in data.items()}

  def _predict_images(self, data):
    """Truth, reconstructions and open-loop predictions of the first sequences (SPEC 9.3)."""
    sequences, context = self._openloop
    wm = self.world_model
    data = {k: v[:sequences] for k, v in data.items()}
    return wm.predict_images(wm.preprocess(data, noise=False), context)

  def _update_targets(self):
    if self.actor_critic is not None:
      self.actor_critic.update_targets(self.updates * self._batch, self._batch)

  def initial_state(self, num_envs):
    latent = self.world_model.rssm.initial(num_envs)
    return latent, tf.zeros([num_envs, self.action_size], tf.float32)

  def policy(self, obs, state, reset, noise_scale, planner='policy_sample',
             noise_type='additive_normal'):
    """One acting step for a batch of envs (SPEC 8.7). See the module docstring."""
    key = (planner, noise_type)
    if key not in self._policies:
      self._policies[key] = tf.function(
          lambda o, s, r, n: self._policy(o, s, r, n, planner, noise_type),
          jit_compile=self._jit, autograph=False)
    if state is None:
      state = self.initial_state(len(reset))
    obs = {k: tf.convert_to_tensor(obs[k]) for k in self._encoder_keys}
    return self._policies[key](
        obs, state, tf.convert_to_tensor(reset, tf.bool),
        tf.convert_to_tensor(noise_scale, tf.float32))

  def policy_trace_count(self):
    return sum(int(fn.experimental_get_tracing_count()) for fn in self._policies.values())

  def _policy(self, obs, state, reset, noise_scale, planner, noise_type):
    wm = self.world_model
    latent, prev_action = state
    keep = 1.0 - tf.cast(reset, tf.float32)[:, None]
    # Only the envs that reset start from a blank state (the original zeroed the
    # previous action of every env in the batch).
    latent = {k: v * keep for k, v in latent.items()}
    prev_action = prev_action * keep
    data = wm.preprocess({k: v[:, None] for k, v in obs.items()})
    embed = wm.embed(data)[:, 0]
    post, _ = wm.rssm.obs_step(latent, prev_action, embed)
    feat = wm.rssm.features(post)
    if planner in self.planners:
      action = self.planners[planner].plan(post)
    elif planner == 'policy_mode':
      action = self.actor_critic.actor(feat).mode()
    elif planner == 'policy_sample':
      action = self.actor_critic.actor(feat).sample()
    else:
      raise ValueError(f"no planner '{planner}'; this agent has policy_sample, policy_mode"
                       + ''.join(f', {name}' for name in self.planners))
    action = tf.cast(action, tf.float32)
    finite = tf.logical_and(tf.reduce_all(tf.math.is_finite(feat), -1),
                            tf.reduce_all(tf.math.is_finite(action), -1))
    action = self._explore(action, noise_scale, noise_type)
    # A diverged model must not act, and its actions may look valid: clipping turns NaN
    # into a bound on some CPUs, and the argmax of NaN logits is a one-hot vector. An env
    # whose state or action is not finite gets an all-NaN action, which the caller's host
    # copy shows without another device round trip.
    action = tf.where(finite[:, None], action, tf.fill(tf.shape(action), float('nan')))
    return action, (post, action)

  def _explore(self, action, scale, noise_type):
    if noise_type == 'epsilon_greedy':
      size = self.action_size
      random = tf.one_hot(
          tf.random.uniform(tf.shape(action)[:1], 0, size, tf.int32), size)
      explore = tf.random.uniform(tf.shape(action)[:1]) < scale
      return tf.where(explore[:, None], random, action)
    action = action + scale[:, None] * tf.random.normal(tf.shape(action))
    return tf.clip_by_value(action, -1.0, 1.0)


class _Untracked:
  """Holds traced policy functions out of the checkpoint's object graph."""

  def __init__(self):
    self._items = {}

  def __contains__(self, key):
    return key in self._items

  def __getitem__(self, key):
    return self._items[key]

  def __setitem__(self, key, value):
    self._items[key] = value

  def values(self):
    return self._items.values()
