"""gauges: the rates, dataset sizes and progress line a run reports, and the agent metrics'
TensorBoard tags."""

import numpy as np

from dreamer.data import episodes
from dreamer.training import gauges


def test_metric_names_become_tags_grouped_by_what_they_measure():
  metrics = {'optimizer_model/grad_norm': 1.0, 'optimizer_action/grad_norm': 2.0,
             'optimizer_pcont/grad_norm': 3.0, 'loss/model': 4.0, 'loss/value': 5.0,
             'loss/pcont': 6.0, 'objectives/action': 7.0, 'objectives/value': 8.0,
             'objectives/kl': 9.0, 'objectives/image': 10.0}
  assert {k: float(v) for k, v in gauges.tags(metrics).items()} == {
      'model/grad_norm': 1.0, 'actor/grad_norm': 2.0, 'heads/pcont_grad_norm': 3.0,
      'model/loss': 4.0, 'value/loss': 5.0, 'heads/pcont_loss': 6.0, 'actor/objective': 7.0,
      'model/kl': 9.0, 'model/image_log_prob': 10.0}  # The value objective is its loss.


def test_rates_count_updates_and_frames_since_the_last_call(monkeypatch):
  clock = iter([100.0, 110.0, 115.0])
  monkeypatch.setattr(gauges.time, 'time', lambda: next(clock))
  gauge = gauges.Gauges(batch=16, directories=[])
  assert gauge.rates(frames=2000, step=16 * 50) == {
      'general/updates_per_second': 5.0, 'general/fps': 200.0}
  assert gauge.rates(frames=2500, step=16 * 60) == {
      'general/updates_per_second': 2.0, 'general/fps': 100.0}


def test_a_resumed_run_counts_its_rates_from_where_it_resumed(monkeypatch):
  clock = iter([0.0, 500.0, 510.0])
  monkeypatch.setattr(gauges.time, 'time', lambda: next(clock))
  gauge = gauges.Gauges(batch=16, directories=[])
  gauge.start(frames=40000, step=16 * 4000)  # Restored from a checkpoint.
  assert gauge.rates(frames=41000, step=16 * 4100) == {
      'general/updates_per_second': 10.0, 'general/fps': 100.0}


def test_dataset_sizes_count_the_episodes_of_each_dataset(tmp_path):
  episode = {'reward': np.zeros(3, np.float32)}
  for directory, count in (('train_a', 2), ('train_b', 1), ('test_a', 3)):
    for _ in range(count):
      episodes.save_episode(tmp_path / directory, episode)
  gauge = gauges.Gauges(16, [('train-a', tmp_path / 'train_a'), ('train-b', tmp_path / 'train_b'),
                             ('test-a', tmp_path / 'test_a')])
  assert gauge.dataset_sizes() == {'train_dataset/episodes': 3, 'test_dataset/episodes': 3}


class FakeReplay:

  def snapshot(self):
    return 4, 84, 2.5e6


def test_the_progress_line_shows_losses_return_memory_and_replay():
  line = gauges.Gauges(16, [], FakeReplay()).progress_line(
      1200, 30, {'loss/model': 12.345, 'objectives/kl': 3.0, 'objectives/action': -0.5},
      train_return=87.31)
  head, memory = line.split(' | memory ')
  assert head == '[1200 frames] update 30: model 12.35, kl 3.00, actor -0.50 | train return 87.3'
  assert memory.endswith(' GB, replay 4 episodes, 84 frames, 2.5 MB')
  assert float(memory.split(' GB')[0]) > 0.01
  assert '| train return' not in gauges.Gauges(16, []).progress_line(0, 0, {})
