"""Measures how fast Dreamer trains and acts; prints one JSON object per line.

    python scripts/benchmark.py                     # paper sizes: B = T = 50, dummy task
    python scripts/benchmark.py --params '{defaults: [dreamer, debug]}' --batch 4 8 --updates 3
    python scripts/benchmark.py --params '{precision: 16, jit: True}'   # on a GPU
    python scripts/benchmark.py --env_sweep walker_walk   # env stepping: 1, 2, 4 envs x isolation
    python scripts/benchmark.py --resize_sweep atari_pong # OpenCV vs scikit-image frame resizing
    python scripts/benchmark.py --pipeline_sweep          # replay -> batches, no model
    python scripts/benchmark.py --collect_overhead        # collection's own cost per step
    python scripts/benchmark.py --batch 50 50 --profile /tmp/profile  # where an update's time goes

Updates run on synthetic batches (random uint8 images and so on, in the layout of the
replay), so no episodes on disk are needed. The agent, the batch of environments and the
collection come from the same factories as in training (dreamer.scripts.build).
"""

import argparse
import json
import os
import pathlib
import platform
import re
import resource
import sys
import tempfile
import time

import numpy as np

from dreamer.data import episodes as episodes_lib
from dreamer.scripts import train as train_script


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--params', default='{}',
                      help="YAML overrides as for training; tasks default to [dummy]")
  parser.add_argument('--batch', type=int, nargs=2, metavar=('B', 'T'), default=None,
                      help='batch shape of an update (default: batch_shape of the config)')
  parser.add_argument('--updates', type=int, default=20, help='timed updates')
  parser.add_argument('--warmup', type=int, default=2, help='untimed updates after tracing')
  parser.add_argument('--policy_steps', type=int, default=50, help='timed policy calls')
  parser.add_argument('--collect_steps', type=int, default=200,
                      help='agent steps of the timed collection (all envs together)')
  parser.add_argument('--env_sweep', metavar='TASK', default=None,
                      help='only measure env stepping of TASK with random actions for 1, 2 '
                      'and 4 envs in each isolation mode (no TensorFlow is loaded)')
  parser.add_argument('--sweep_steps', type=int, default=100,
                      help='timed agent steps per env and setting of --env_sweep')
  parser.add_argument('--sweep_envs', type=int, nargs='+', default=None,
                      help='env counts of --env_sweep (default 1 2 4) and --collect_overhead '
                      '(default 1 8)')
  parser.add_argument('--sweep_isolation', nargs='+', default=['none', 'thread', 'process'],
                      choices=['none', 'thread', 'process'],
                      help='isolation modes of --env_sweep')
  parser.add_argument('--resize_sweep', metavar='TASK', default=None,
                      help='only time resizing real frames of the Atari TASK to 64x64 with '
                      "OpenCV's INTER_AREA and scikit-image's anti-aliased resize, and how far "
                      'apart their outputs are (needs scikit-image; no TensorFlow is loaded)')
  parser.add_argument('--resize_frames', type=int, default=1000,
                      help='frames of --resize_sweep')
  parser.add_argument('--pipeline_sweep', action='store_true',
                      help='only time the input pipeline of training (episodes on disk -> '
                      'loader -> chunks -> batches) at batch shapes 50x50 and 16x50, or at '
                      '--batch, without any model')
  parser.add_argument('--pipeline_episodes', type=int, default=100,
                      help='episodes in the replay of --pipeline_sweep')
  parser.add_argument('--pipeline_length', type=int, default=500,
                      help='steps per episode of --pipeline_sweep')
  parser.add_argument('--pipeline_batches', type=int, default=200,
                      help='timed batches per shape of --pipeline_sweep')
  parser.add_argument('--collect_overhead', action='store_true',
                      help="only time what collection costs beside the environments and the "
                      "policy's compiled call, on the dummy task for 1 and 8 envs in each "
                      'isolation mode')
  parser.add_argument('--overhead_steps', type=int, default=200,
                      help='timed agent steps per env and setting of --collect_overhead')
  parser.add_argument('--profile', metavar='DIR', default=None,
                      help='after the timed updates, trace --profile_updates more with '
                      "tf.profiler into DIR (TensorBoard's Profile tab) and print the update's "
                      'graph nodes, FLOPs, achieved share of the CPU peak and the top op '
                      'types by share of the kernels\' time')
  parser.add_argument('--profile_updates', type=int, default=3, help='updates of --profile')
  parser.add_argument('--profile_top', type=int, default=12, help='op types --profile prints')
  args = parser.parse_args(argv)
  for name in ('profile_updates', 'profile_top', 'updates', 'policy_steps', 'collect_steps', 'sweep_steps', 'resize_frames',
               'pipeline_episodes', 'pipeline_length', 'pipeline_batches', 'overhead_steps'):
    if getattr(args, name) < 1:
      parser.error(f'--{name} must be positive')
  if args.sweep_envs and min(args.sweep_envs) < 1:
    parser.error('--sweep_envs must be positive')
  return args


def make_config(args):
  from dreamer import config as config_lib
  params = config_lib.parse_params(args.params)
  params.setdefault('tasks', ['dummy'])
  if args.batch:
    params['batch_shape'] = list(args.batch)
  config = train_script.build_config(params)
  # Time a fixed number of agent steps rather than whole episodes.
  spec = dict(config.train_collects[0], num_episodes=0, num_steps=args.collect_steps)
  return train_script.build_config(dict(params, train_collects=[spec]))


def synthetic_batch(config, obs_space, act_space, rng):
  """Random [B, T] arrays with the keys and dtypes the input pipeline yields."""
  batch, length = config.batch_shape
  count = batch * length
  episode = {k: np.stack([space.sample(rng) for _ in range(count)])
             for k, space in obs_space.items()}
  episode['action'] = np.stack([act_space.sample(rng) for _ in range(count)])
  episode['reward'] = rng.uniform(0, 1, count).astype(np.float32)
  episode['pcont'] = np.ones(count, np.float32)
  episode = episodes_lib.process_episode(episode, config.clip_rewards, config.pcont_scale)
  return {k: v.reshape((batch, length) + v.shape[1:]) for k, v in episode.items()}


def device_name(tf):
  gpus = tf.config.list_physical_devices('GPU') if tf else []
  if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"{len(gpus)} x {details.get('device_name', gpus[0].name)}"
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def peak_memory_mib():
  # ru_maxrss is in KiB on Linux and in bytes on macOS.
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / (2 ** 20 if sys.platform == 'darwin' else 2 ** 10)


def env_sweep(task, steps, counts=(1, 2, 4), isolations=('none', 'thread', 'process')):
  """Agent steps per second of a batch of `task` envs stepped with random actions.

  Runs without TensorFlow in this process, so that even rendered tasks can be stepped
  in-process ('none') and in threads: this measures what isolation costs and how process
  workers scale, not the agent.
  """
  import functools
  from dreamer.envs import parallel
  from dreamer.envs import registry
  rng = np.random.default_rng(0)
  for isolation in isolations:
    for count in counts:
      constructors = [functools.partial(registry.make_env, task, seed=i) for i in range(count)]
      envs = parallel.BatchEnv(constructors, [f'{task} {i}' for i in range(count)], isolation)
      try:
        envs.reset()
        envs.step([envs.act_space.sample(rng) for _ in range(count)])  # Warm up renderers.
        start = time.perf_counter()
        for _ in range(steps):
          _, _, dones, _ = envs.step([envs.act_space.sample(rng) for _ in range(count)])
          done = [i for i, d in enumerate(dones) if d]
          if done:
            envs.reset(done)
        seconds = time.perf_counter() - start
      finally:
        envs.close()
      print(json.dumps(dict(
          metric='env_steps_per_second', value=round(count * steps / seconds, 2), unit='1/s',
          task=task, envs=count, isolation=isolation, cores=os.cpu_count(),
          device=device_name(None))), flush=True)


class SweepError(ValueError):
  """A sweep that cannot run here, explained in one line."""


def cpu_flags():
  """The vector extensions that decide how fast OpenCV and numpy kernels run here."""
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    return []
  return sorted(set(re.findall(r'\b(avx512f|avx2)\b', text)))


def atari_frames(task, count, seed=0):
  """`count` raw screens (210x160x3) of an Atari task played with random actions."""
  import ale_py
  import gymnasium
  from dreamer.envs import registry
  game = dict(registry.get_task(task).options)['game']
  gymnasium.register_envs(ale_py)
  # Every fourth screen, as the agent sees them with action_repeat 4.
  env = gymnasium.make(f'ALE/{game}-v5', frameskip=4, repeat_action_probability=0.0,
                       full_action_space=False)
  rng = np.random.default_rng(seed)
  frames = []
  env.reset(seed=seed)
  while len(frames) < count:
    frame, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
    frames.append(frame)
    if terminated or truncated:
      env.reset()
  env.close()
  return frames


def resize_sweep(task, count, size=64):
  """Milliseconds per frame of two ways to shrink Atari screens, and how much they differ.

  OpenCV's INTER_AREA is what dreamer.envs uses; scikit-image's resize with anti_aliasing
  (Gaussian blur, then bilinear) is the original's choice. Both end as uint8, like an
  observation. The difference is in uint8 levels (0-255), over every pixel of every frame.
  """
  from dreamer.envs import registry
  if registry.get_task(task).family != 'atari':
    raise SweepError(f'--resize_sweep needs an Atari task such as atari_pong, not {task}')
  registry.check_dependencies(task)
  import cv2
  try:
    import skimage
    import skimage.transform
  except ImportError:
    raise SweepError('--resize_sweep needs scikit-image, which the pinned stack leaves out: '
                      'pip install scikit-image') from None
  frames = atari_frames(task, count)

  def opencv(frame):
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)

  def scikit(frame):
    image = skimage.transform.resize(frame, (size, size), anti_aliasing=True,
                                     preserve_range=True)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)

  context = dict(task=task, frames=count, source=list(frames[0].shape),
                 target=[size, size, frames[0].shape[-1]], cores=os.cpu_count(),
                 cpu_flags=cpu_flags(), device=device_name(None),
                 opencv=cv2.__version__, skimage=skimage.__version__)
  outputs = {}
  for method, resize in (('opencv_inter_area', opencv), ('skimage_anti_aliasing', scikit)):
    resize(frames[0])  # Warm up: first calls load code and allocate.
    start = time.perf_counter()
    outputs[method] = np.stack([resize(frame) for frame in frames])
    milliseconds = 1000 * (time.perf_counter() - start) / count
    print(json.dumps(dict(metric='resize_ms_per_frame', value=round(milliseconds, 4),
                          unit='ms', method=method, **context)), flush=True)
  difference = np.abs(outputs['opencv_inter_area'].astype(np.int16) -
                      outputs['skimage_anti_aliasing'].astype(np.int16))
  for metric, value in (('resize_mean_abs_difference', difference.mean()),
                        ('resize_max_abs_difference', difference.max())):
    print(json.dumps(dict(metric=metric, value=round(float(value), 4), unit='uint8 levels',
                          **context)), flush=True)


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.env_sweep:
    return env_sweep(args.env_sweep, args.sweep_steps, args.sweep_envs or [1, 2, 4],
                     args.sweep_isolation)
  if args.collect_overhead:
    return collect_overhead(args.params, args.overhead_steps, args.sweep_envs or [1, 8],
                            args.sweep_isolation)
  if args.pipeline_sweep:
    shapes = [tuple(args.batch)] if args.batch else [(50, 50), (16, 50)]
    return pipeline_sweep(args.params, shapes, args.pipeline_episodes, args.pipeline_length,
                          args.pipeline_batches)
  if args.resize_sweep:
    from dreamer.envs import registry
    try:
      return resize_sweep(args.resize_sweep, args.resize_frames)
    except (SweepError, registry.UnknownTaskError, registry.MissingDependencyError) as e:
      print(f'error: {e}', file=sys.stderr)
      return 2
  config = make_config(args)
  import tensorflow as tf
  from dreamer.agents import distribute
  from dreamer.scripts import build

  for gpu in tf.config.list_physical_devices('GPU'):
    tf.config.experimental.set_memory_growth(gpu, True)
  tf.random.set_seed(config.seed)
  rng = np.random.default_rng(config.seed)
  strategy = build.strategy(config)
  context = dict(
      task=config.tasks[0], batch=list(config.batch_shape), precision=config.precision,
      jit=config.jit, distribute=config.distribute,
      replicas=strategy.num_replicas_in_sync if strategy else 1,
      device=device_name(tf), tensorflow=tf.__version__)

  def report(metric, value, unit, **extra):
    print(json.dumps(dict(metric=metric, value=round(float(value), 6), unit=unit, **extra,
                          **context)), flush=True)

  with tempfile.TemporaryDirectory() as run_dir:
    collections, _ = build.collections(config, run_dir, lambda c, e: None, 'train')
    collection = collections[0]
    try:
      envs = collection.envs
      start = time.perf_counter()
      agent = build.agent(config, envs.obs_space, envs.act_space, strategy)
      report('build_seconds', time.perf_counter() - start, 's')
      report('parameters', sum(int(np.prod(v.shape)) for v in agent.trainable_variables),
             'count')
      data = synthetic_batch(config, envs.obs_space, envs.act_space, rng)
      data = distribute.split_batch(strategy, {k: tf.constant(v) for k, v in data.items()})
      seconds = time_updates(agent, data, args, report)
      if args.profile:
        profile_updates(agent, data, args, seconds, report, config.precision)
      time_policy(agent, collection, args, report)
      time_collection(agent, collection, report)
    finally:
      for other in collections:
        other.envs.close()
  report('peak_memory', peak_memory_mib(), 'MiB')


def write_replay(directory, episodes, length, rng, size=64, actions=6):
  """Episodes in the layout collection writes (uint8 images, float actions and rewards).

  The images vary per step but compress well, so that writing the replay is quick; the
  pipeline's cost does not depend on their content.
  """
  base = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
  for _ in range(episodes):
    steps = np.arange(length, dtype=np.uint8)[:, None, None, None]
    episodes_lib.save_episode(directory, {
        'image': base + steps,
        'action': rng.uniform(-1, 1, (length, actions)).astype(np.float32),
        'reward': rng.uniform(0, 1, length).astype(np.float32),
        'pcont': np.ones(length, np.float32)})


def pipeline_sweep(params, shapes, episodes, length, batches, warmup=5):
  """Batches per second of the train input pipeline as training builds it.

  Times the steady state: the warm-up batches make the cache loader read every episode,
  and the dataset's prefetching runs in the background as it does beside the train step.
  """
  import tensorflow as tf
  from dreamer import config as config_lib
  from dreamer.scripts import build
  rng = np.random.default_rng(0)
  params = config_lib.parse_params(params)
  params.setdefault('tasks', ['dummy'])
  with tempfile.TemporaryDirectory() as run_dir:
    write_replay(pathlib.Path(run_dir) / 'train_episodes', episodes, length, rng)
    for batch, chunk in shapes:
      config = train_script.build_config(dict(params, batch_shape=[batch, chunk]))
      iterator = build.datasets(config, run_dir)[0]()
      for _ in range(warmup):
        next(iterator)
      start = time.perf_counter()
      for _ in range(batches):
        data = next(iterator)
      seconds = time.perf_counter() - start
      assert data['image'].shape == (batch, chunk, 64, 64, 3), data['image'].shape
      print(json.dumps(dict(
          metric='pipeline_batches_per_second', value=round(batches / seconds, 2), unit='1/s',
          batch=[batch, chunk], episodes=episodes, length=length, loader=config.loader,
          prefetch_device=build.prefetch_device(config), cpu_flags=cpu_flags(),
          tensorflow=tf.__version__, device=device_name(tf))), flush=True)
  print(json.dumps(dict(metric='peak_memory', value=round(peak_memory_mib(), 1), unit='MiB',
                        cpu_flags=cpu_flags())), flush=True)


def raw_env_seconds(task, steps, seed=0):
  """Seconds per step of one env of `task` in this process, with random actions."""
  from dreamer.envs import registry
  rng = np.random.default_rng(seed)
  env = registry.make_env(task, seed=seed, action_repeat=1)
  try:
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
      _, _, done, _ = env.step(env.act_space.sample(rng))
      if done:
        env.reset()
    return (time.perf_counter() - start) / steps
  finally:
    env.close()


def collect_overhead(params, steps, counts, isolations):
  """Milliseconds per env step that collection spends outside the envs and the policy.

  Runs the training collection (dreamer.training.collect) on the dummy task with a debug-
  sized agent, timing the policy's compiled call (with the copy of its actions to the host)
  and the batch of envs' step and reset calls. `loop_ms` is the rest of the wall time: the
  collection's own bookkeeping. `isolation_ms` is the env calls' time beyond what the same
  env takes stepped bare in this process: the threads' or worker processes' messaging.
  """
  import tensorflow as tf
  from dreamer import config as config_lib
  from dreamer.scripts import build
  params = dict({'defaults': ['dreamer', 'debug']}, **config_lib.parse_params(params))
  params['tasks'] = ['dummy']
  raw = raw_env_seconds('dummy', 1000)
  for isolation in isolations:
    for count in counts:
      config = train_script.build_config(dict(
          params, isolate_envs=isolation, num_envs=count, action_repeat=1))
      spec = dict(config.train_collects[0], num_episodes=0, num_steps=steps * count)
      config = train_script.build_config(dict(
          params, isolate_envs=isolation, num_envs=count, action_repeat=1,
          train_collects=[spec]))
      with tempfile.TemporaryDirectory() as run_dir:
        collections, _ = build.collections(config, run_dir, lambda c, e: None, 'train')
        try:
          collection = collections[0]
          agent = build.agent(config, collection.envs.obs_space, collection.envs.act_space,
                              log=lambda *a: None)
          timers = dict(policy=0.0, envs=0.0)

          def timed(name, fn):
            def wrapper(*args, **kwargs):
              start = time.perf_counter()
              try:
                return fn(*args, **kwargs)
              finally:
                timers[name] += time.perf_counter() - start
            return wrapper

          def policy(obs, state, reset, scales):
            action, state = agent.policy(obs, state, reset, scales, collection.planner,
                                         collection.noise_type)
            return action.numpy(), state

          collection.run(policy, collection.noise(0))  # Traces the policy.
          envs = collection.envs
          envs.step, envs.reset = timed('envs', envs.step), timed('envs', envs.reset)
          start = time.perf_counter()
          collection.run(timed('policy', policy), collection.noise(0))
          wall = time.perf_counter() - start
        finally:
          for other in collections:
            other.envs.close()
      env_steps = steps * count
      loop = (wall - timers['policy'] - timers['envs']) / env_steps
      isolation_cost = timers['envs'] / env_steps - raw
      print(json.dumps(dict(
          metric='collect_overhead_ms_per_env_step', value=round(1e3 * (loop + isolation_cost), 4),
          unit='ms', loop_ms=round(1e3 * loop, 4), isolation_ms=round(1e3 * isolation_cost, 4),
          policy_ms_per_call=round(1e3 * timers['policy'] / steps, 4),
          raw_env_ms=round(1e3 * raw, 4), envs=count, isolation=isolation, task='dummy',
          cpu_flags=cpu_flags(), tensorflow=tf.__version__, device=device_name(tf))),
          flush=True)


def time_updates(agent, data, args, report):
  start = time.perf_counter()
  metrics = agent.train(data)
  float(metrics['loss/model'])
  report('trace_seconds', time.perf_counter() - start, 's')
  for _ in range(args.warmup):
    metrics = agent.train(data)
  float(metrics['loss/model'])
  times = []
  for _ in range(args.updates):
    start = time.perf_counter()
    metrics = agent.train(data)
    float(metrics['loss/model'])  # Waits for the device to finish the update.
    times.append(time.perf_counter() - start)
  # The median: a CPU shared with other virtual machines has slow outliers.
  seconds = float(np.median(times))
  report('update_seconds', seconds, 's', mean=round(float(np.mean(times)), 6),
         each=[round(t, 4) for t in times])
  report('updates_per_second', 1 / seconds, '1/s')
  return seconds


def profile_updates(agent, data, args, seconds, report, precision):
  """Graph size, FLOPs and their rate against the CPU's peak, and the op types that take
  the kernels' time, of the update just timed (scripts/update_profile.py)."""
  import tensorflow as tf
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  import update_profile
  concrete = agent.train.get_concrete_function(data)
  live = update_profile.live_ops(concrete)
  report('graph_nodes', update_profile.graph_nodes(concrete, live), 'count',
         traced=update_profile.graph_nodes(concrete),
         note='nodes the outputs depend on (traced: with the dead gradient ops)')
  total, by_type = update_profile.dense_flops(concrete, live)
  report('update_flops', total, 'FLOP', by_op_type=by_type,
         method='2 x multiply-adds of every matmul and convolution, from static shapes')
  report('update_flops_tensorflow', update_profile.tensorflow_flops(concrete, live), 'FLOP',
         method="TensorFlow's registered per-op statistics (also elementwise ops)")
  cpu = update_profile.cpu_description()
  # float16 has no fast path on these CPUs; its peak is taken as fp32's.
  kind = 'bfloat16' if precision == 'bfloat16' else 'fp32'
  peak = update_profile.peak_flops(cpu)
  measured = update_profile.measured_matmul_flops('bfloat16' if kind == 'bfloat16' else 'float32')
  report('achieved_flops_per_second', total / seconds, 'FLOP/s')
  report('share_of_peak', total / seconds / peak[kind], 'fraction', peak=peak[kind],
         peak_derivation=peak[f'{kind}_how'], cpu=cpu)
  report('share_of_large_matmul', total / seconds / measured, 'fraction',
         large_matmul_flops_per_second=measured,
         note='a 2048 x 2048 matmul in TensorFlow: the best rate seen here in practice')
  tf.profiler.experimental.start(args.profile)
  try:
    for _ in range(args.profile_updates):
      metrics = agent.train(data)
    float(metrics['loss/model'])
  finally:
    tf.profiler.experimental.stop()
  durations, counts = update_profile.op_profile(args.profile)
  busy = sum(durations.values())
  report('profile_ops_per_update', sum(counts.values()) / args.profile_updates, 'count')
  ranked = sorted(durations.items(), key=lambda item: -item[1])
  for kind, value in ranked[:args.profile_top]:
    report('profile_op_share', value / busy, 'fraction', op_type=kind,
           seconds_per_update=round(value / args.profile_updates, 4),
           calls_per_update=counts[kind] / args.profile_updates)


def time_policy(agent, collection, args, report):
  envs = collection.envs
  obs = envs.reset()
  obs = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
  reset = np.ones(len(envs), bool)
  noise = collection.noise(0)

  def step(state):
    action, state = agent.policy(obs, state, reset, noise, collection.planner,
                                 collection.noise_type)
    action.numpy()
    return state

  start = time.perf_counter()
  state = step(None)
  report('policy_trace_seconds', time.perf_counter() - start, 's')
  start = time.perf_counter()
  for _ in range(args.policy_steps):
    state = step(state)
  report('policy_step_seconds', (time.perf_counter() - start) / args.policy_steps, 's')


def time_collection(agent, collection, report):
  """Agent steps per second of policy and environments together, as in training."""
  steps = [0]

  def policy(obs, state, reset, scales):
    steps[0] += len(reset)
    action, state = agent.policy(obs, state, reset, scales, collection.planner,
                                 collection.noise_type)
    return action.numpy(), state

  start = time.perf_counter()
  collection.run(policy, collection.noise(0))
  seconds = time.perf_counter() - start
  report('collect_steps_per_second', steps[0] / seconds, '1/s')
  report('collect_frames_per_second', steps[0] * collection.action_repeat / seconds, '1/s')


if __name__ == '__main__':
  status = main()
  if status:  # Only on failure: runpy callers read sys.modules after a normal run.
    sys.exit(status)
