"""Factories: turn a Config into environments, datasets, the agent and the trainer.

This module and config.py are the only places that read config keys.
"""

import functools
import pathlib

from dreamer import config as config_lib
from dreamer import config_checks
from dreamer.envs import parallel
from dreamer.envs import registry


class BuildError(ValueError):
  """A config that cannot be built into a working agent, explained in one line."""


def rendered(config, task_name):
  """Whether the task's envs render with OpenGL (DMC without pixels does not)."""
  task = registry.get_task(task_name)
  if config.render_size == 0:
    if task.family != 'dmc':
      raise BuildError(f'render_size: 0 (no image observation) works only for DeepMind '
                       f'Control tasks, not {task_name}')
    return False
  return task.rendered


def isolation(config, task_name):
  """Where the task's envs run. Rendering with Mesa in the trainer's process crashes once
  TensorFlow is loaded; MuJoCo there without rendering trains, but the process aborts at
  exit (`free(): invalid pointer`, exit code 134). So DeepMind Control and every rendered
  task always run in spawned worker processes."""
  mode = config.isolate_envs
  if rendered(config, task_name) or registry.get_task(task_name).family == 'dmc':
    return 'process'
  return 'thread' if mode == 'auto' else mode


def action_repeat(config, task_name):
  return config.action_repeat or registry.get_task(task_name).action_repeat


# Seeds of different workers' envs lie this far apart, so that no two envs of a cluster
# replay the same episodes.
WORKER_SEED_STRIDE = 1_000_000


def worker_dir(run_dir, worker=0):
  """Where a worker of distribute: multi_worker keeps its episodes: the run directory itself
  for the chief (worker 0), so that a run looks the same with and without workers, and
  <run>/worker<k>/ for the others."""
  run_dir = pathlib.Path(run_dir)
  return run_dir if worker == 0 else run_dir / f'worker{worker}'


def env_constructor(config, task_name, mode, index, give_rewards=True, worker=0):
  task = registry.get_task(task_name)
  min_length = config.batch_shape[1] if task.family != 'dummy' else None
  return functools.partial(
      registry.make_env, task_name, mode=mode, action_repeat=action_repeat(config, task_name),
      render_size=config.render_size, min_length=min_length, max_length=config.max_length,
      camera_id=config.camera_id, normalize_actions=config.normalize_actions,
      seed=(config.seed + WORKER_SEED_STRIDE * worker + 1000 * index
            + (0 if mode == 'train' else 500)),
      atari_grayscale=config.atari_grayscale, atari_noops=config.atari_noops,
      atari_lifes=config.atari_lifes, atari_sticky=config.atari_sticky,
      atari_train_max_length=config.atari_train_max_length if mode == 'train' else None,
      dmlab_runfiles_path=config.dmlab_runfiles_path,
      image_only=len(config.tasks) > 1, give_rewards=give_rewards)


def batch_env(config, task_name, mode, count, give_rewards=True, worker=0):
  constructors = [env_constructor(config, task_name, mode, i, give_rewards, worker)
                  for i in range(count)]
  names = [f'{task_name} ({mode} {i})' for i in range(count)]
  return parallel.BatchEnv(constructors, names, isolation(config, task_name))


def collections(config, run_dir, on_episode, mode, worker=0):
  """Collections of one mode, one per (collect spec, task); plus their seed env batches.

  `worker` (distribute: multi_worker) picks the episode directory and the env seeds.
  """
  from dreamer.training import collect
  directory = worker_dir(run_dir, worker) / f'{mode}_episodes'
  result, seeds = [], []
  for spec in config_lib.collect_specs(config, mode):
    for task_name in config.tasks:
      envs = batch_env(config, task_name, spec['mode'], spec['num_envs'], spec['give_rewards'],
                       worker)
      name = f"{spec['prefix']}_{spec['name']}_{task_name}"
      result.append(collect.Collection(
          name, envs, on_episode, task=task_name, directory=directory, mode=mode,
          planner=planner_name(spec), num_episodes=spec['num_episodes'],
          num_steps=spec['num_steps'], steps_after=spec['steps_after'],
          steps_every=spec['steps_every'], steps_until=spec['steps_until'],
          noise_type=spec['action_noise_type'], noise_scale=spec['action_noise_scale'],
          noise_ramp=spec['action_noise_ramp'], noise_min=spec['action_noise_min'],
          noise_factors=spec['action_noise_factors'],
          action_repeat=action_repeat(config, task_name)))
      if not any(s[0] == f'{mode}-{task_name}' for s in seeds):
        seeds.append((f'{mode}-{task_name}', envs, directory, mode,
                      action_repeat(config, task_name)))
  if len(config.tasks) > 1:
    # One agent acts in every task: it sees the union of their action spaces.
    batches = list({id(c.envs): c.envs for c in result}.values())
    spaces = [b.act_space for b in batches]
    for b in batches:
      b.pad_actions(spaces)
  names = [c.name for c in result]
  if len(set(names)) != len(names):
    raise BuildError(f'{mode}_collects names must be unique, got {names}')
  return result, seeds


def planner_name(spec):
  """The agent's name for a collection's planner: CEM planners differ by objective and horizon."""
  if spec['planner'] != 'cem':
    return spec['planner']
  return f"cem_{spec['objective']}_h{spec['horizon']}"


def strategy(config):
  """The tf.distribute strategy of `distribute`, or None to train on one device.

  For multi_worker this connects to the cluster of TF_CONFIG or SLURM and waits until every
  worker has started; a process creates that strategy once.
  """
  from dreamer.agents import distribute
  if config.distribute == 'multi_worker' and config.jit:
    raise BuildError('jit: True is not supported with distribute: multi_worker (untested); '
                     'use jit with mirrored or on one device')
  if config.distribute == 'multi_worker' and config.collect_in_background:
    raise BuildError('collect_in_background: True is not supported with distribute: '
                     'multi_worker (the workers collect in lock-step); set it to False')
  cluster = None
  if config.distribute == 'multi_worker':
    try:
      cluster = distribute.resolve_cluster()
    except distribute.ClusterError as e:
      raise BuildError(str(e)) from None
  result = distribute.make_strategy(config.distribute, cluster=cluster)
  if result is not None and config.batch_shape[0] % result.num_replicas_in_sync:
    workers = distribute.Workers.of(result).count
    over = f' on {workers} workers' if workers > 1 else ''
    raise BuildError(
        f'batch_shape[0] = {config.batch_shape[0]} must be a multiple of the '
        f'{result.num_replicas_in_sync} replicas{over} of distribute: {config.distribute}; '
        'change batch_shape or the number of devices')
  # Without a strategy, the config's own check (train_chunks <= batch_shape[0]) holds.
  per_replica = config.batch_shape[0] // result.num_replicas_in_sync if result else None
  if per_replica is not None and config.train_chunks > per_replica:
    raise BuildError(
        f'train_chunks = {config.train_chunks} is more than the {per_replica} sequences of '
        f'each of the {result.num_replicas_in_sync} replicas of distribute: '
        f'{config.distribute}; lower train_chunks')
  return result


def prefetch_device(config):
  """The accelerator that input batches are copied to, or None."""
  import tensorflow as tf
  if config.gpu_prefetch and tf.config.list_logical_devices('GPU'):
    return tf.config.list_logical_devices('GPU')[0].name
  return None


def datasets(config, run_dir, strategy=None, replay_stats=None, worker=0):
  """Callables that return iterators of train and test batches.

  Under a strategy the iterators yield per-replica batches, one input pipeline per
  worker (each replica draws its own B / replicas chunks) from that worker's episodes.
  `replay_stats`, a loaders.ReplayStats, follows what the train pipeline keeps in memory.
  """
  from dreamer.agents import distribute
  from dreamer.data import pipeline
  run_dir = worker_dir(run_dir, worker)
  batch, length = config.batch_shape
  common = dict(length=length, num_chunks=config.num_chunks,
                clip_rewards=config.clip_rewards, pcont_scale=config.pcont_scale,
                prefetch=config.batch_prefetch)
  device = None if strategy else prefetch_device(config)

  def make(directory, size, seed, **kwargs):
    if strategy is None:
      return iter(pipeline.make_dataset(
          directory, batch=size, seed=seed, device=device, **common, **kwargs))
    return iter(distribute.distribute_dataset(strategy, lambda per_replica, index: (
        pipeline.make_dataset(directory, batch=per_replica, seed=seed + 7919 * index,
                              **common, **kwargs)), size))

  cache_episodes, cache_bytes = config_checks.cache_size(config.loader_cache_size)

  def train():
    return make(run_dir / 'train_episodes', batch, config.seed, loader=config.loader,
                every=config.loader_every, window=config.loader_window,
                cache_size=cache_episodes, cache_bytes=cache_bytes, stats=replay_stats)

  def test():
    return make(run_dir / 'test_episodes', batch, config.seed + 1, loader='cache',
                every=batch, cache_size=cache_episodes, cache_bytes=cache_bytes,
                spec_directory=run_dir / 'train_episodes')

  return train, test


PRECISIONS = {16: 'float16', 32: 'float32', 'bfloat16': 'bfloat16'}


def cpu_flags():
  """The CPU's feature flags (empty where /proc/cpuinfo is not there)."""
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    return set()
  for line in text.splitlines():
    if line.startswith('flags'):
      return set(line.split(':', 1)[1].split())
  return set()


def check_cpu_bfloat16(log):
  """precision: bfloat16 on a CPU: a one-line error where TensorFlow cannot run it, a
  one-line notice where it runs emulated (docs/benchmarks.md: 2.2x slower than fp32)."""
  import tensorflow as tf
  try:
    # oneDNN has no bfloat16 convolution below AVX-512: the first update would abort.
    tf.nn.conv2d(tf.zeros([1, 4, 4, 2], tf.bfloat16), tf.zeros([2, 2, 2, 2], tf.bfloat16),
                 1, 'VALID')
  except tf.errors.OpError:
    raise BuildError('precision: bfloat16 cannot run on this CPU (TensorFlow has no '
                     'bfloat16 convolution without AVX-512); use precision: 32') from None
  if not cpu_flags() & {'avx512_bf16', 'amx_bf16'}:
    log('Note: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), so precision: '
        'bfloat16 is emulated and about 2x slower than precision: 32.')


def agent(config, obs_space, act_space, strategy=None, log=print):
  """The Dreamer agent for the given observation and action spaces.

  With a tf.distribute strategy every variable is created under its scope.
  """
  if strategy is not None:
    with strategy.scope():
      return _agent(config, obs_space, act_space, strategy, log)
  return _agent(config, obs_space, act_space, None, log)


def _agent(config, obs_space, act_space, strategy, log):
  import numpy as np
  import tensorflow as tf
  from dreamer.agents import actor_critic
  from dreamer.agents import dreamer
  from dreamer.agents import optimizer
  from dreamer.agents import planet
  from dreamer.models import world_model
  from dreamer.networks import heads

  # Variables stay float32; layers compute in `dtype`; distributions and losses in float32.
  dtype = tf.as_dtype(PRECISIONS[config.precision])
  mixed = dtype == tf.float16  # Loss scaling; bfloat16 has float32's range and needs none.
  if dtype == tf.bfloat16 and not tf.config.list_physical_devices('GPU'):
    check_cpu_bfloat16(log)
  components = _state_components(config, obs_space)
  gradient_heads = list(config.gradient_heads)
  if gradient_heads == ['all_but_image']:
    # The reward and every state component, as the original's task lists had them.
    gradient_heads = ['reward'] + [k for k in components if k != 'reward']
  discrete = act_space.discrete
  onehot = config.action_head_dist.startswith('onehot')
  if config.action_head and discrete and not onehot:
    raise BuildError(
        f'action_head_dist {config.action_head_dist} does not fit the one-hot actions of '
        f'{config.tasks[0]}; use the discrete preset')
  if config.action_head and onehot and not discrete:
    # The original trained one-hot heads on continuous tasks (its dummy smoke tests do):
    # fine wherever every one-hot vector is a valid action.
    if not (np.all(act_space.low <= 0) and np.all(act_space.high >= 1)):
      raise BuildError(
          f'action_head_dist {config.action_head_dist} gives one-hot actions, which lie '
          f'outside the action space {act_space} of {config.tasks[0]}; use tanh_normal_tanh')
    log(f'Warning: action_head_dist {config.action_head_dist} on {config.tasks[0]}, whose '
        'actions are continuous: the agent acts with one-hot vectors only.')
  if 'image' not in obs_space and config.encoder == 'conv':
    raise BuildError(f'{config.tasks[0]} has no image observation; use encoder: proprio')
  if 'image' not in obs_space and 'image' in gradient_heads:
    raise BuildError(f'{config.tasks[0]} has no image observation to decode; list its vector '
                     'observations in gradient_heads (or use all_but_image)')
  proprio_keys = config.proprio_encoder_keys or [
      k for k, v in sorted(obs_space.items()) if k not in ('image', 'reward_mask')
      and v.dtype.kind == 'f']
  if config.encoder == 'proprio':
    unknown = [k for k in proprio_keys if k not in obs_space]
    if unknown or not proprio_keys:
      raise BuildError(f"proprio_encoder_keys {unknown or '[]'} are not observations of "
                       f"{config.tasks[0]}; available: {', '.join(sorted(obs_space))}")
  loss_scales = {'image': config.image_loss_scale, 'reward': config.reward_loss_scale,
                 'pcont': config.pcont_loss_scale}
  for key in components:
    loss_scales[key] = config.get(f'{key}_loss_scale', 1.0)
  size = act_space.shape[0]
  wm = world_model.WorldModel(
      action_size=size, obs_shapes={k: v.shape for k, v in obs_space.items()},
      state_components=components, encoder=config.encoder, proprio_keys=proprio_keys,
      proprio_layers=config.proprio_encoder_num_layers,
      proprio_units=config.proprio_encoder_units, stoch=config.state_size,
      deter=config.model_size, model_layers=config.model_layers, act=config.activation,
      min_stddev=config.min_stddev, future_rnn=config.future_rnn, mean_only=config.mean_only,
      num_units=config.num_units, reward_layers=config.reward_layers,
      pcont_layers=config.pcont_layers, image_std=config.image_head_std,
      gradient_heads=gradient_heads, free_nats=config.free_nats,
      divergence_scale=config.divergence_scale, loss_scales=loss_scales,
      image_bits=config.image_bits, pcont_label_weight=config.pcont_label_weight,
      overshooting_distance=config.overshooting_distance,
      overshooting_scale=config.overshooting_scale,
      os_stop_posterior_grad=config.os_stop_posterior_grad, cnn_depth=config.cnn_depth,
      dtype=dtype)
  feat = tf.zeros([1, 1, wm.rssm.feature_size])

  def make_actor(name):
    head = heads.DenseHead(
        (size,), config.action_layers, config.num_units, config.activation,
        dist=config.action_head_dist, std=config.action_head_std,
        min_std=config.action_head_min_std, init_std=config.action_head_init_std,
        mean_act=config.action_mean_activation, dtype=dtype, name=name)
    head(feat)
    return head

  def make_value(name):
    head = heads.DenseHead((), config.value_layers, config.num_units, config.activation,
                           dist=config.value_dist, dtype=dtype, name=name)
    head(feat)
    return head

  if config.action_target_head and not config.value_head:
    raise BuildError('action_target_head needs value_head: True; the target actor only '
                     "drives the value model's imagination")
  behaviour = None
  if config.action_head:
    value = make_value('head_value') if config.value_head else None
    target = make_value('head_value_target') if config.value_head and \
        config.value_target_head else None
    action_target = make_actor('head_action_target') if config.action_target_head else None
    behaviour = actor_critic.ActorCritic(
        make_actor('head_action'), value, target, action_target,
        discount=config.action_discount, lambda_=config.action_lambda,
        bootstrap=config.action_bootstrap, loss_pcont=config.action_loss_pcont,
        pcont_stop_grad=config.action_pcont_stop_grad,
        pcont_weight=config.action_pcont_weight, value_discount=config.value_discount,
        value_lambda=config.value_lambda, value_bootstrap=config.value_bootstrap,
        value_loss_pcont=config.value_loss_pcont, value_pcont_weight=config.value_pcont_weight,
        action_loss_scale=config.action_loss_scale, value_loss_scale=config.value_loss_scale,
        value_target_period=config.value_target_period,
        value_target_update=config.value_target_update,
        action_target_period=config.action_target_period,
        action_target_update=config.action_target_update, action_beta=config.action_beta,
        value_maxent=config.value_maxent)
  if config.value_head and not config.action_head:
    raise BuildError('value_head: True needs action_head: True')
  optimizers = {'model': optimizer.Optimizer(
      'model', config.model_lr, config.optimizer_epsilon, config.model_gradient_clipping,
      mixed)}
  for name in wm.other_heads:
    optimizers[name] = optimizer.Optimizer(
        name, config.default_lr, config.optimizer_epsilon, config.default_gradient_clipping,
        mixed)
  if behaviour is not None:
    optimizers['action'] = optimizer.Optimizer(
        'action', config.action_lr, config.optimizer_epsilon,
        config.action_gradient_clipping, mixed)
    if behaviour.value is not None:
      optimizers['value'] = optimizer.Optimizer(
          'value', config.value_lr, config.optimizer_epsilon,
          config.value_gradient_clipping, mixed)
  planners = {}
  for spec in config_lib.collect_specs(config, 'train') + config_lib.collect_specs(
      config, 'test'):
    name = planner_name(spec)
    if spec['planner'] != 'cem' or name in planners:
      continue
    value = behaviour.value if behaviour else None
    if spec['objective'] == 'reward_value' and value is None:
      raise BuildError("planner objective reward_value needs value_head: True (PlaNet plans "
                       'with planner_objective: reward)')
    planners[name] = planet.CEMPlanner(
        wm, value, action_size=size, discrete=discrete, horizon=spec['horizon'],
        beams=config.planner_beams, iterations=config.planner_iterations,
        topk=config.planner_topk, objective=spec['objective'],
        discount=config.planner_discount, lambda_=config.planner_lambda)
  encoder_keys = ['image'] if config.encoder == 'conv' else proprio_keys
  return dreamer.Dreamer(
      wm, behaviour, optimizers, planners=planners, batch_size=config.batch_shape[0],
      horizon=config.imagination_horizon, skip_last=config.imagination_skip_last,
      stop_grad_pre_action=config.stop_grad_pre_action, discrete=discrete,
      encoder_keys=encoder_keys, debug=config.debug, chunks=config.train_chunks, jit=config.jit,
      strategy=strategy)


def _state_components(config, obs_space):
  """{name: (shape, layers)} for the state-diagnostic heads of the (single) task."""
  names = registry.state_components(config.tasks)
  wanted = config.state_diagnostics or config.gradient_heads == ['all_but_image'] or any(
      n in config.gradient_heads for n in names)
  if not wanted:
    return {}
  result = {}
  for name in names:
    if name == 'reward' or name not in obs_space:
      continue
    layers = config.get(f'{name}_layers', config.num_layers)
    result[name] = (obs_space[name].shape, layers)
  return result
