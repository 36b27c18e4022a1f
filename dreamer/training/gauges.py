"""What a run reports about itself beside the agent's metrics: update and frame rates,
memory and replay size, dataset sizes, the console's progress line, and the agent's metric
names as TensorBoard tags."""

import time

import numpy as np

from dreamer.data import episodes as episodes_lib
from dreamer.training import memory


class Gauges:
  """Measures the run for the general/ and *_dataset/ scalars and the progress line.

  Args:
    batch: trainer steps per update (the schedule's B).
    directories: (collection name, episode directory) of every seeded collection; names
      starting with 'train' count as the train dataset.
    replay_stats: a dreamer.data.loaders.ReplayStats of the train pipeline, or None.
  """

  def __init__(self, batch, directories, replay_stats=None):
    self._batch = batch
    self._directories = directories
    self._replay_stats = replay_stats
    self._timer = (time.time(), 0, 0)

  def start(self, frames, step):
    """Counts the rates from here, so that a resumed run's first ones leave out the frames
    and updates of its earlier life (and the time of seeding)."""
    self._timer = (time.time(), frames, step)

  def rates(self, frames, step):
    """Updates and env frames per second since the last call (or since the start)."""
    now = time.time()
    last_time, last_frames, last_step = self._timer
    elapsed = max(now - last_time, 1e-9)
    self._timer = (now, frames, step)
    updates = (step - last_step) / self._batch
    return {'general/updates_per_second': updates / elapsed,
            'general/fps': (frames - last_frames) / elapsed}

  def memory(self):
    """This process's resident memory and what the replay holds."""
    values = {'general/memory_gb': memory.resident_bytes() / 1e9}
    if self._replay_stats is not None:
      episodes, steps, nbytes = self._replay_stats.snapshot()
      values.update({'general/replay_episodes': episodes, 'general/replay_frames': steps,
                     'general/replay_mb': nbytes / 1e6})
    return values

  def dataset_sizes(self):
    """Episodes on disk, per dataset (train, test)."""
    sizes = {}
    for name, directory in self._directories:
      key = f"{'train' if name.startswith('train') else 'test'}_dataset/episodes"
      sizes[key] = sizes.get(key, 0) + len(episodes_lib.list_episodes(directory))
    return sizes

  def progress_line(self, frames, updates, metrics, train_return=None):
    """`[frames] update n: model .., kl .., actor .., value .. | train return .. | memory ..`
    from the mean of recent agent metrics."""
    parts = [f'{name} {metrics[key]:.2f}' for name, key in (
        ('model', 'loss/model'), ('kl', 'objectives/kl'), ('actor', 'objectives/action'),
        ('value', 'objectives/value')) if key in metrics]
    tail = f' | train return {train_return:.1f}' if train_return is not None else ''
    usage = self.memory()
    tail += f" | memory {usage['general/memory_gb']:.2f} GB"
    if 'general/replay_episodes' in usage:
      tail += (f", replay {usage['general/replay_episodes']} episodes, "
               f"{usage['general/replay_frames']} frames, {usage['general/replay_mb']:.1f} MB")
    return f'[{frames} frames] update {updates}: ' + ', '.join(parts) + tail


_GROUPS = {'model': 'model', 'action': 'actor', 'value': 'value'}


def tags(metrics):
  """Agent metric names -> TensorBoard tags grouped model/, actor/, value/, heads/."""
  result = {}
  for key, value in metrics.items():
    group, name = key.split('/', 1)
    if group.startswith('optimizer_'):
      owner = group[len('optimizer_'):]
      prefix = _GROUPS.get(owner)
      tag = f'{prefix}/{name}' if prefix else f'heads/{owner}_{name}'
    elif group == 'loss':
      prefix = _GROUPS.get(name)
      tag = f'{prefix}/loss' if prefix else f'heads/{name}_loss'
    elif name == 'action':
      tag = 'actor/objective'
    elif name == 'value':
      continue  # The value objective is its loss, written as value/loss.
    elif name in ('divergence', 'kl', 'prior_entropy', 'posterior_entropy', 'overshooting',
                  'imagined_reward'):
      tag = f'model/{name}'
    else:
      tag = f'model/{name}_log_prob'
    result[tag] = np.asarray(value)
  return result
