"""The training loop of SPEC 8: seed data, then epochs of a train phase and a test phase.

Schedule keys count trainer steps (+B per update, as in the original); everything the
user sees is indexed by environment frames.
"""

import collections

import numpy as np
import tensorflow as tf

from dreamer.agents import distribute
from dreamer.data import episodes as episodes_lib
from dreamer.training import background as background_lib
from dreamer.training import checkpoints as checkpoints_lib
from dreamer.training import collect as collect_lib
from dreamer.training import divergence
from dreamer.training import gauges as gauges_lib
from dreamer.training import logger as logger_lib
from dreamer.training import summaries
from dreamer.training import timings as timings_lib


class Schedule:
  """Maps the global trainer step to (epoch, phase, phase step) (SPEC 8.1)."""

  def __init__(self, batch, train_steps, test_steps):
    self.batch, self.train_steps, self.test_steps = batch, train_steps, test_steps

  def __call__(self, step):
    length = self.train_steps + self.test_steps
    epoch, inside = divmod(step, length)
    if inside < self.train_steps:
      return epoch, 'train', epoch * self.train_steps + inside
    return epoch, 'test', epoch * self.test_steps + inside - self.train_steps

  def fires(self, step, period):
    """Whether some x in [step, step + B) has (x + 1) % period == 0."""
    return any((x + 1) % period == 0 for x in range(step, step + self.batch))


class Trainer:
  """Owns the counters, checkpoint and collections of one run and drives them.

  Args:
    agent: see dreamer.agents.
    train_batches, test_batches: callables returning iterators over batches.
    train_collections, test_collections: lists of collect.Collection.
    seed_collections: list of (name, BatchEnv, directory, mode, action_repeat) for seeding.
    video_format: 'gif' or 'mp4' to also write each test phase's first episode to
      <run>/videos/ as such a file; None writes none.
    progress_every: seconds between progress lines of long phases (0: none).
    replay_stats: a dreamer.data.loaders.ReplayStats of the train pipeline, or None; its
      size goes with the process's memory into the console and TensorBoard (general/).
    workers: a dreamer.agents.distribute.Workers under distribute: multi_worker. Every
      worker runs this same loop in lock-step (the schedule counts trainer steps, which
      advance together); only the chief writes checkpoints, summaries and videos, and
      env frames count the episodes of all workers. None: one process.
    background: a dreamer.training.background.BackgroundCollector to run the train
      collections in a thread while the next updates run (collect_in_background), or None
      to collect between updates. Its episodes are saved as they finish and counted in
      this thread when the collection has ended.

  Where the wall time goes (dreamer.training.timings) reaches the train logs as time/
  scalars and the console as a `time: updates 82% env 9% ...` line after each evaluation.
  """

  def __init__(self, *, agent, logger, run_dir, train_batches, test_batches,
               train_collections, test_collections, seed_collections, batch, train_steps,
               test_steps, max_steps, train_log_every, checkpoint_every, num_seed_episodes,
               num_seed_steps, seed=0, video_format=None, progress_every=10.0, replay_stats=None,
               workers=None, background=None, log=print):
    self.agent = agent
    self.logger = logger
    self._dir = run_dir
    self._train_batches, self._test_batches = train_batches, test_batches
    self._train_collections = train_collections
    self._multi_task = len({c.task for c in train_collections}) > 1
    self._test_collections = test_collections
    self._seed_collections = seed_collections
    self._schedule = Schedule(batch, train_steps, test_steps)
    self._batch = batch
    self._max_steps = max_steps
    self._train_log_every = train_log_every
    self._checkpoint_every = checkpoint_every
    self._print_every = max(1, train_steps // 10)
    self._num_seed = (num_seed_episodes, num_seed_steps)
    self._rng = np.random.default_rng(seed)
    self._log = log
    self._video_format = video_format
    self._progress_every = progress_every
    self._video = None  # (collection name, frames) of the current test phase's first episode.
    self._video_written = None
    self._workers = workers or distribute.Workers()
    self._unshared = 0  # Train frames this worker recorded that the others do not know of.
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    self.env_frames = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_frames')
    self.checkpoint = tf.train.Checkpoint(
        agent=agent, global_step=self.global_step, env_frames=self.env_frames)
    self.checkpoints = checkpoints_lib.Checkpoints(
        self.checkpoint, run_dir, keep=2, log=log, chief=self._workers.is_chief)
    self._pending = collections.defaultdict(list)
    self._guard = divergence.Guard(self.checkpoints, lambda: self.frames)
    self._background = background
    self._deferred = []  # Episodes a background collection saved, to count and log here.
    self._gauges = gauges_lib.Gauges(
        batch, [(c[0], c[2]) for c in seed_collections], replay_stats)
    self._timings = timings_lib.Timings()

  @property
  def frames(self):
    return int(self.env_frames.numpy())

  def restore(self):
    """Restores the newest readable checkpoint of the run, if any; returns whether it did."""
    workers = self._workers
    path = self.checkpoints.restore() if workers.is_chief else None
    if workers.count > 1:
      # The others load the very checkpoint that the chief restored (it may have set a
      # damaged newer one aside), from the run directory they share.
      number = workers.broadcast(self.checkpoints.number(path) if path else -1)
      if not workers.is_chief and number >= 0:
        path = self.checkpoints.restore_number(number)
    if not path:
      return False
    self._log(f'Restored {path} at {self.frames} env frames '
              f'(global step {int(self.global_step.numpy())}).')
    return True

  def save(self):
    """Saves the weights, unless training diverged: NaN never replaces a good checkpoint."""
    with self._timings.phase('checkpoint'):
      self._guard.check_weights(self.agent.variables)
      self.checkpoints.save(int(self.global_step.numpy()))

  def _train(self, batch):
    with self._timings.phase('updates'):
      metrics = self._guard.train(self.agent.train, batch)
      # An accelerator runs the step asynchronously: its time is until a result is here.
      next(iter(metrics.values())).numpy()
    return metrics

  def seed(self):
    """Fills train_episodes/ and test_episodes/ with random episodes (SPEC 8.2).

    Episodes already on disk count towards the quota, so resuming collects nothing. Tasks
    that share a directory (multi-task runs) are seeded in turn, each to its own quota.
    """
    episodes_quota, steps_quota = self._num_seed
    turns = collections.Counter()
    for name, envs, directory, mode, repeat in sorted(
        self._seed_collections, key=lambda c: c[0]):
      turns[directory] += 1
      files, length = episodes_lib.count_episodes(directory)
      left_episodes = turns[directory] * episodes_quota - files
      left_steps = turns[directory] * steps_quota - length
      if left_episodes <= 0 and left_steps <= 0:
        continue
      self._log(f'Collecting initial {max(0, left_episodes)} episodes or '
                f'{max(0, left_steps)} steps ({name}) with random actions.')

      def on_episode(episode, name=name, directory=directory, mode=mode, repeat=repeat):
        self._record(name, episode, directory, mode, repeat, task=name.split('-', 1)[1])

      progress = self._progress(f'Seed {name}', max(0, left_steps) * repeat, 'frames')
      collect_lib.random_episodes(envs, on_episode, left_episodes, left_steps, self._rng,
                                  on_step=lambda steps, repeat=repeat: progress(steps * repeat))
    self._share_frames()
    self.logger.flush()

  def on_episode(self, collection, episode):
    if collection.mode != 'train' and self._video is None and 'image' in episode:
      self._video = (collection.name, episode['image'])
    self._record(collection.name, episode, collection.directory, collection.mode,
                 collection.action_repeat, collection.task)

  def _record(self, name, episode, directory, mode, repeat, task=None):
    with self._timings.phase('episodes'):
      path = episodes_lib.save_episode(directory, episode)
    length = len(episode['reward']) - 1
    score = float(episode['reward'].sum())
    args = (name, path, length, score, directory, mode, repeat, task)
    if self._background is not None and self._background.busy:
      self._deferred.append(args)  # In the collection's thread: counted by the trainer's.
    else:
      self._count(*args)

  def _count(self, name, path, length, score, directory, mode, repeat, task):
    if mode == 'train':
      self.env_frames.assign_add(length * repeat)
      self._unshared += length * repeat
    self._log(f'Recorded episode {path.name} of length {length} with score of '
              f'{score:.1f} to {directory.name}/.')
    prefix = 'train' if mode == 'train' else 'test'
    values = {f'{prefix}/return': score, f'{prefix}/length': length}
    if task is not None and self._multi_task:
      values[f'{prefix}/{task}/return'] = score
    with self._timings.phase('summaries'):
      self.logger.scalars(prefix, self.frames, values,
                          global_step=int(self.global_step.numpy()),
                          updates=self.agent.updates.numpy())
    self._pending[prefix].append(score)

  def _share_frames(self):
    """Adds the other workers' new train frames to env_frames (a collective: every worker
    calls it at the same points of the schedule, after seeding and after collecting)."""
    if self._workers.count > 1:
      total = self._workers.sum(self._unshared)
      self.env_frames.assign_add(total - self._unshared)
    self._unshared = 0

  def run(self):
    """Trains until max_steps; yields the evaluation score after every test iteration."""
    self._timings.start()
    with self._timings.phase('loading'):
      train_iter = iter(self._train_batches())
    test_iter = None
    last_phase = None
    self._gauges.start(self.frames, int(self.global_step.numpy()))
    while int(self.global_step.numpy()) < self._max_steps:
      step = int(self.global_step.numpy())
      epoch, phase, phase_step = self._schedule(step)
      if phase != last_phase:
        self._finish_background()  # A phase starts with every train episode counted.
        self._log('-' * 50)
        self._log(f'Epoch {epoch + 1} phase {phase} (phase step {phase_step}, '
                  f'global step {step}, env frames {self.frames}).')
        last_phase = phase
        length = self._schedule.train_steps if phase == 'train' else self._schedule.test_steps
        progress = self._progress(f'Epoch {epoch + 1} {phase} phase', -(-length // self._batch),
                                  'iterations', start=(phase_step % length) // self._batch)
      progress((phase_step % length) // self._batch, f'(env frames {self.frames})')
      if phase == 'train':
        with self._timings.phase('loading'):
          data = next(train_iter)
        metrics = self._train(data)
        self.global_step.assign_add(self._batch)
        self._pending['metrics'].append(metrics)
        due = [c for c in self._train_collections if c.due(phase_step, self._batch)]
        if due:
          self._guard.check_losses()  # A diverged policy would only act with NaN.
          if self._background is not None:
            self._finish_background()
            acting = self._background.acting
            with self._timings.phase('policy'):  # Copies the policy's weights to `acting`.
              self._background.start(
                  lambda due=due, step=phase_step: [self._collect(c, step, acting) for c in due])
          else:
            for collection in due:
              self._collect(collection, phase_step)
            self._share_frames()
        if self._schedule.fires(phase_step, self._print_every) or phase_step == 0:
          with self._timings.phase('summaries'):
            self._print_progress()
        if self._schedule.fires(phase_step, self._train_log_every):
          with self._timings.phase('summaries'):
            self._write_train(data)
      else:
        self._guard.check_losses()
        with self._timings.phase('loading'):
          if test_iter is None:
            test_iter = iter(self._test_batches())
          data = next(test_iter)
        with self._timings.phase('summaries'):  # The test batch's losses are test/ scalars.
          metrics = self.agent.evaluate(data)
        self.global_step.assign_add(self._batch)
        scores = []
        for collection in self._test_collections:
          results = self._collect(collection, phase_step)
          scores.append(np.mean([r for r, _ in results]))
        score = float(np.mean(scores))
        with self._timings.phase('summaries'):
          values = gauges_lib.tags(metrics)
          values['test/score'] = score
          values.update(self._gauges.dataset_sizes())
          self.logger.scalars('test', self.frames, values, global_step=self.global_step.numpy(),
                              updates=self.agent.updates.numpy())
          self._write_video()
          self.logger.flush()
        self._log(f'Score {score:.2f}.')
        if self._schedule.fires(phase_step, self._checkpoint_every):
          self.save()
        self._log(self._timings.split('console').line())
        yield score
    self._finish_background()
    self.save()
    self.logger.flush()

  def _finish_background(self):
    """Waits for the background collection in flight and counts its episodes."""
    if self._background is None:
      return
    try:
      with self._timings.phase('env'):  # What of the collection the updates did not hide.
        self._background.wait()
    finally:
      deferred, self._deferred = self._deferred, []
      for args in deferred:
        self._count(*args)

  def stop_background(self):
    """Ends a background collection in flight (the run stops); its saved episodes stay."""
    if self._background is not None:
      self._background.stop()
      self._deferred = []

  def _collect(self, collection, phase_step, agent=None):
    """Runs a collection with the policy of `agent` (default: the trained agent)."""
    noise = collection.noise(phase_step)
    agent = agent or self.agent

    def policy(obs, state, reset, scales):
      if self._background is not None and self._background.stopping:
        raise background_lib.Stopped()
      with self._timings.phase('policy'):
        action, state = agent.policy(
            obs, state, reset, scales, collection.planner, collection.noise_type)
        action = action.numpy()
        self._guard.check_policy(collection.name, action, state)
      return action, state

    repeat = collection.action_repeat
    progress = self._progress(f'Collect {collection.name}', collection.num_steps * repeat)
    # Env steps, resets and rendering; the policy and episode writing inside are their own.
    with self._timings.phase('env'):
      return collection.run(policy, noise, on_step=lambda steps: progress(steps * repeat))

  def _progress(self, label, total=None, unit='frames', start=0):
    return logger_lib.Progress(label, total, unit, self._progress_every, self._log, start=start)

  def _write_video(self):
    """The first test episode of a test phase: a GIF in TensorBoard, and a file with
    video_format (env frames stay put in a phase)."""
    if self._video is None:
      return
    name, frames = self._video
    self._video = None
    if not self.logger.writes:
      return
    if self._video_written == self.frames:
      return
    self._video_written = self.frames
    self.logger.gif('test', self.frames, 'test/video', frames)
    if self._video_format:
      summaries.write_video(
          self._dir / 'videos' / f'{name}-{self.frames:010d}.{self._video_format}', frames)

  def _mean_metrics(self):
    pending = self._pending.pop('metrics', [])
    if not pending:
      return {}
    return {k: float(np.mean([m[k].numpy() for m in pending])) for k in pending[0]}

  def _print_progress(self):
    pending = self._pending.get('metrics', [])
    if not pending:
      return
    recent = {k: float(np.mean([m[k].numpy() for m in pending[-self._print_every:]]))
              for k in pending[0]}
    returns = self._pending.get('train', [])
    self._log(self._gauges.progress_line(self.frames, int(self.agent.updates.numpy()), recent,
                                         returns[-1] if returns else None))

  def _write_train(self, data):
    values = gauges_lib.tags(self._mean_metrics())
    if not self.logger.writes:
      return
    summaries.write_predictions(self.logger, 'train', self.frames, self.agent, data)
    values.update(self._gauges.rates(self.frames, int(self.global_step.numpy())))
    values.update(self._gauges.dataset_sizes())
    values.update(self._gauges.memory())
    values.update(self._timings.split('scalars').tags())
    values['general/env_frames'] = self.frames
    values['general/updates'] = int(self.agent.updates.numpy())
    self.logger.scalars('train', self.frames, values, global_step=self.global_step.numpy(),
                        updates=self.agent.updates.numpy())
    self.logger.flush()

