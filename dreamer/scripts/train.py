"""Trains Dreamer: python -m dreamer.scripts.train --logdir DIR --params '{...}'.

TensorFlow is imported only inside `run` (and, for distribute: multi_worker, `main`), so
that environment worker processes, which import this module when they are spawned, never
load it; it is imported without its start-up chatter (dreamer.scripts.quiet_tensorflow).
"""

import argparse
import errno
import os
import pathlib
import sys

from dreamer import config as config_lib
from dreamer.envs import parallel
from dreamer.envs import registry
from dreamer.scripts import quiet_tensorflow
from dreamer.training import records as run_records
from dreamer.training import runs


class RunStopped(RuntimeError):
  """A run stopped on a failure the user can act on: diverged training, a dead environment,
  a full disk, unreadable checkpoints. The message is one line; FAIL has the details."""


class WorkerLost(runs.Resumable):
  """distribute: multi_worker lost a worker. Every worker stops with one line, without DONE
  or FAIL, and the same command on every worker resumes the run from its last checkpoint."""


# Keys that say how this command runs, not what the run learns: they follow the command
# when a run resumes (an update is the same on one device, several or several workers).
_LAUNCH_KEYS = ('seed', 'distribute')


def build_config(params, run_dir=None, write=True):
  """Builds and checks the config; on resume the run's config.yaml wins (SPEC 1.6), but for
  `distribute`, which follows the command, and a `max_steps` given in params that is larger
  than the stored one, which extends the run. write=False reads the config.yaml that another
  process wrote (the chief of distribute: multi_worker) and never writes one."""
  params = config_lib.parse_params(params)
  fresh = config_lib.build_config(params, registry.state_components_checked)
  for task in fresh.tasks:
    registry.get_task(task)
  if run_dir is None:
    return fresh
  path = pathlib.Path(run_dir) / 'config.yaml'
  if path.exists() or not write:
    stored = config_lib.from_yaml(path.read_text(), path)
    # A run written before a param existed trains on with the param as this command has
    # it (the default unless given), and its config.yaml records that from now on.
    added = [k for k in fresh if k not in stored]
    extend = extends(params, fresh.max_steps, stored)
    changed = sorted(k for k in fresh if k not in _LAUNCH_KEYS and k not in added
                     and stored[k] != fresh[k] and not (k == 'max_steps' and extend))
    if changed and write:
      print(f"Using the run's stored config.yaml; ignoring changed params: {', '.join(changed)}")
    completed = dict(stored, **{k: fresh[k] for k in added})
    if added and write:
      values = ', '.join(f'{k}: {fresh[k]!r}' for k in sorted(added))
      print(f"The run's config.yaml predates params it now gets from this command: {values}")
    if extend:
      completed['max_steps'] = fresh.max_steps
      if write:
        print(f"Extending the run from max_steps {stored['max_steps']} to {fresh.max_steps} "
              "as given; its other params stay as stored in its config.yaml.")
    if (added or extend) and write:
      _write_config(path, completed)
    return config_lib.Config(completed, distribute=fresh.distribute)
  path.parent.mkdir(parents=True, exist_ok=True)
  _write_config(path, fresh)
  return fresh


def extends(params, max_steps, stored):
  """Whether params give `max_steps` (the checked value) above the run's stored one: a longer
  schedule, the one param in which a command overrides a run it resumes (or reopens)."""
  return ('max_steps' in params and stored.get('max_steps') is not None
          and max_steps > stored['max_steps'])


def reopen_fn(params, max_steps, log=print):
  """The run manager's reopen_fn: reopens a finished run when params extend its schedule to
  `max_steps`; says so when a max_steps given in params does not, as there is nothing to do."""

  def reopen(run_dir):
    path = pathlib.Path(run_dir) / 'config.yaml'
    if 'max_steps' not in params or not path.exists():
      return False
    stored = config_lib.from_yaml(path.read_text(), path)
    if extends(params, max_steps, stored):
      return True
    log(f"Run {pathlib.Path(run_dir).name} finished at max_steps {stored.get('max_steps')}; "
        f'max_steps {max_steps} does not extend it, so there is nothing to do (a larger '
        'max_steps trains it further).')
    return False

  return reopen


def _write_config(path, values):
  tmp = path.with_name('.config.yaml.tmp')
  tmp.write_text(config_lib.to_yaml(values))
  os.replace(tmp, path)


def run(run_dir, params, log=print, strategy=None, workers=None):
  """Trains one run in `run_dir`, yielding the score of every evaluation.

  Under distribute: multi_worker, main passes the process's strategy and
  agents.distribute.Workers; every worker then runs this together with the others.
  """
  import numpy as np
  tf = quiet_tensorflow.import_tensorflow()
  from dreamer.data import episodes
  from dreamer.data import loaders
  from dreamer.scripts import build
  from dreamer.training import background
  from dreamer.training import checkpoints
  from dreamer.training import divergence
  from dreamer.training import logger as logger_lib
  from dreamer.training import loop

  run_dir = pathlib.Path(run_dir)
  chief = workers is None or workers.is_chief
  rank = 0 if workers is None else workers.rank
  own = build.worker_dir(run_dir, rank)
  envs, logger, trainer = [], None, None
  stopped = (parallel.EnvError, divergence.Diverged, checkpoints.CheckpointError, OSError)
  try:
    resuming = (run_dir / 'config.yaml').exists()
    if chief:
      config = build_config(params, run_dir)
    if workers is not None:
      workers.barrier()  # The chief has written the run's config.yaml.
    if not chief:
      config = build_config(params, run_dir, write=False)
      name = workers.name()
      log(f'{name[0].upper()}{name[1:]} of {workers.count} joins run {run_dir}; its '
          f'episodes go to {own}, the chief writes summaries and checkpoints.')
    else:
      log(f"{'Resume run' if resuming else 'Start a new run'} and write summaries and "
          f'checkpoints to {run_dir}.')
    for kind in ('train', 'test'):
      for name in episodes.remove_partial(own / f'{kind}_episodes'):
        log(f'Removed {name}, an episode whose writing was interrupted.')
    for gpu in tf.config.list_physical_devices('GPU'):
      tf.config.experimental.set_memory_growth(gpu, True)
    # Other workers draw other random numbers (the chief those of a single process); their
    # variables still start as the chief's, which the strategy broadcasts.
    tf.random.set_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    logger = logger_lib.Logger(run_dir, log, write=chief)

    def on_episode(collection, episode):
      trainer.on_episode(collection, episode)

    train_collections, train_seeds = build.collections(
        config, run_dir, on_episode, 'train', rank)
    envs += [c.envs for c in train_collections]
    test_collections, test_seeds = build.collections(config, run_dir, on_episode, 'test', rank)
    envs += [c.envs for c in test_collections]
    first = train_collections[0].envs
    log('Build TensorFlow compute graph.')
    if workers is None:
      strategy = build.strategy(config)
    if strategy is not None:
      over = f' on {workers.count} workers' if workers is not None else ''
      log(f'Data-parallel training over {strategy.num_replicas_in_sync} replicas{over}.')
    agent = build.agent(config, first.obs_space, first.act_space, strategy, log=log)
    count = sum(int(np.prod(v.shape)) for v in agent.trainable_variables)
    log(f'Graph contains {count} trainable variables.')
    collector = None
    if config.collect_in_background:
      # A second agent of the same config acts, with the weights of the last update.
      acting = build.agent(config, first.obs_space, first.act_space, strategy,
                           log=lambda line: None)
      collector = background.BackgroundCollector(agent, acting)
      log('Train collections run in a background thread beside the updates.')
    replay_stats = loaders.ReplayStats()
    train_batches, test_batches = build.datasets(
        config, run_dir, strategy, replay_stats, rank)
    trainer = loop.Trainer(
        agent=agent, logger=logger, run_dir=run_dir, train_batches=train_batches,
        test_batches=test_batches, train_collections=train_collections,
        test_collections=test_collections, seed_collections=train_seeds + test_seeds,
        batch=config.batch_shape[0], train_steps=config.train_steps,
        test_steps=config.test_steps, max_steps=config.max_steps,
        train_log_every=config.train_log_every, checkpoint_every=config.checkpoint_every,
        num_seed_episodes=config.num_seed_episodes, num_seed_steps=config.num_seed_steps,
        seed=config.seed + rank, video_format=video_format(config),
        progress_every=config.progress_every, replay_stats=replay_stats, workers=workers,
        background=collector, log=log)
    restored = trainer.restore()
    if resuming and chief:
      if not restored:
        log(f'No checkpoint of this run was saved before it stopped (one is saved every '
            f'{config.checkpoint_every} test-phase steps: checkpoint_every), so training '
            f'starts again from new weights at env frame 0, with the episodes already in '
            f'{run_dir}.')
      logger.resume(trainer.frames, global_step=trainer.global_step.numpy(),
                    updates=agent.updates.numpy())
    trainer.seed()
    yield from trainer.run()
  except stopped as e:
    message = _stopped_message(e, run_dir)
    if message is None:
      raise
    raise RunStopped(message) from e
  except tf.errors.OpError as e:
    latest = trainer.checkpoints.latest if trainer else tf.train.latest_checkpoint(str(run_dir))
    raise _lost_workers(e, workers, latest or '') from None
  finally:
    if trainer is not None:
      trainer.stop_background()  # Before its envs close.
    for batch in envs:
      batch.close()
    if logger is not None:
      logger.close()


def _lost_workers(error, workers, latest=None):
  """WorkerLost when a TF error says that other workers are gone; else `error` itself.

  latest: the run's newest checkpoint, '' for none, None outside a run.
  """
  lost = workers.lost(error) if workers is not None else None
  if lost is None:
    return error
  kept = ''
  if latest is not None:
    kept = f'the last checkpoint is {latest}; ' if latest else 'no checkpoint was saved yet; '
  return WorkerLost(f'{workers.name()} lost {lost}; {kept}run the same command on every '
                    'worker again to resume')


def video_format(config):
  """The file type of save_videos ('gif', 'mp4') or None; `true` means GIF."""
  if not config.save_videos:
    return None
  return 'gif' if config.save_videos is True else config.save_videos


def _stopped_message(error, run_dir):
  """One line for a failure in a run, or None for errors that need their traceback."""
  resume = (f'its episodes and checkpoints stay in {run_dir}; to resume, delete its DONE and '
            'FAIL files and run the same command again')
  if isinstance(error, OSError):
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
      return None
    where = error.filename or f'to {run_dir}'
    return f'no space left on device while writing {where}; free some space; {resume}'
  if isinstance(error, parallel.EnvError):
    lines = str(error).strip().splitlines()
    # Errors raised inside a worker carry its traceback: keep the headline and the error.
    text = f"{lines[0].rstrip(':')}: {lines[-1].strip()}" if len(lines) > 1 else lines[0]
    return f'{text}; {resume}'
  return str(error)


def summary(run_dir):
  """One line on what a finished run learned, from its metrics.jsonl; None without data.

  Random play is the mean return of the test directory's seed episodes; an evaluation's
  return is the mean of its test episodes (the `test/score` of that test phase).
  """
  path = pathlib.Path(run_dir) / 'metrics.jsonl'
  if not path.exists():
    return None
  records = run_records.read(path)
  scores = run_records.evaluations(records)
  if not scores:
    return None
  minutes = (records[-1]['wall_time'] - records[0]['wall_time']) / 60
  seeds = run_records.random_play(records)
  random_play = f'random play {seeds:.0f}, ' if seeds is not None else ''
  return (f'{pathlib.Path(run_dir).name}: test return {random_play}first evaluation '
          f'{scores[0][1]:.0f} -> last {scores[-1][1]:.0f} at {scores[-1][0]} env frames '
          f'({minutes:.1f} min)')


def main(args):
  """Programmatic entry, as in the original: args has logdir, params, num_runs,
  resume_runs, ping_every (and optionally dmlab_runfiles_path)."""
  params = config_lib.parse_params(args.params)
  runfiles = getattr(args, 'dmlab_runfiles_path', None)
  if runfiles:
    params['dmlab_runfiles_path'] = runfiles
  config = build_config(params)  # Fails on bad params before any work or directory.
  for task in config.tasks:
    registry.check_dependencies(task)
  if video_format(config):
    from dreamer.training import summaries
    summaries.check_video_path(f'videos/episode.{video_format(config)}')
  logdir = pathlib.Path(os.path.expanduser(str(args.logdir)))
  if config.distribute == 'multi_worker':
    return _train_with_workers(logdir, params, args, config)
  return runs.run_experiments(
      logdir, lambda run_dir, info: run(run_dir, params), num_runs=args.num_runs,
      resume_runs=args.resume_runs, ping_every=args.ping_every, check_fn=check_stored_config,
      reopen_fn=reopen_fn(params, config.max_steps))


def _train_with_workers(logdir, params, args, config):
  """distribute: multi_worker. The chief (worker 0) is the run manager's worker: it claims
  the numbered runs and writes their markers, and announces each run to the others, which
  train it with it and write only their episodes. A run number of 0 says there is no more."""
  tf = quiet_tensorflow.import_tensorflow()
  from dreamer.agents import distribute
  from dreamer.scripts import build
  strategy = build.strategy(config)  # Waits until every worker has started.
  workers = distribute.Workers.of(strategy)
  runs.check_logdir(os.path.abspath(logdir))  # Every worker, not only the run manager's.

  def announce(number):
    try:
      return workers.broadcast(number)
    except tf.errors.OpError as e:
      raise _lost_workers(e, workers) from None

  if not workers.is_chief:
    while True:
      number = announce(0)
      if number <= 0:
        return []
      for _ in run(logdir / f'{number:05d}', params, strategy=strategy, workers=workers):
        pass

  def process(run_dir, info):
    announce(int(os.path.basename(run_dir)))
    yield from run(run_dir, params, strategy=strategy, workers=workers)

  finished = runs.run_experiments(
      logdir, process, num_runs=args.num_runs, resume_runs=args.resume_runs,
      ping_every=args.ping_every, check_fn=check_stored_config,
      reopen_fn=reopen_fn(params, config.max_steps))
  announce(0)
  return finished


def check_stored_config(run_dir):
  """Fails with one line, before the run is claimed, if its config.yaml does not read."""
  path = pathlib.Path(run_dir) / 'config.yaml'
  if path.exists():
    config_lib.from_yaml(path.read_text(), path)


def _bool(text):
  if text not in ('True', 'False'):
    raise argparse.ArgumentTypeError(f"must be True or False, got '{text}'")
  return text == 'True'


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    # One line like every other bad input, instead of the usage block; --help shows that.
    self.exit(2, f'error: {message} (see --help)\n')


def parse_args(argv):
  parser = _Parser(
      prog='python -m dreamer.scripts.train', description=__doc__.split('\n')[0])
  parser.add_argument('--logdir', required=True, help='base directory; runs go to 00001, ...')
  parser.add_argument('--params', default='{}', help="YAML mapping, e.g. '{defaults: [dreamer]}'")
  parser.add_argument('--num_runs', type=int, default=1)
  parser.add_argument('--resume_runs', type=_bool, default=True)
  parser.add_argument('--ping_every', type=int, default=0)
  parser.add_argument('--dmlab_runfiles_path', default=None)
  args = parser.parse_args(argv)
  if args.num_runs is not None and args.num_runs < 0:
    parser.error('--num_runs must not be negative')
  if args.ping_every < 0:
    parser.error('--ping_every must not be negative')
  return args


def cli(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  errors = (config_lib.ConfigError, registry.UnknownTaskError, runs.RunDirError,
            ImportError, PermissionError)
  try:
    from dreamer.scripts import build
    from dreamer.training import summaries
    errors += (build.BuildError, summaries.VideoError)
    finished = main(args)
  except errors as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except (RunStopped, WorkerLost) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    # Like a kill: no DONE or FAIL, so the run stays resumable.
    again = ('run the same command again' if args.resume_runs else
             'run the same command with --resume_runs True')
    print(f'Interrupted; {again} to resume the unfinished run.', file=sys.stderr)
    return 130
  lines = [line for line in map(summary, finished) if line]
  for line in lines:
    print(line)
  if lines:
    logdir = os.path.expanduser(str(args.logdir))
    print(f'Curves: tensorboard --logdir {logdir}; plot: python scripts/plot.py {logdir} '
          '--out curve.png')
  return 0


if __name__ == '__main__':
  sys.exit(cli())
