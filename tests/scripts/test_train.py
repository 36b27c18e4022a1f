"""End-to-end runs through dreamer.scripts.train.main(args) on the dummy task."""

import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.data import episodes
from dreamer.scripts import train

# The debug preset with chunks of 5 steps instead of 10 (tracing the train step, which
# every run does, takes about half as long) and convolutions 4 channels wide instead of 32
# (the debug preset keeps the paper's 4.3M image weights; at 4 a run takes 11 s, not 17).
SMOKE = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'max_steps': 40,
         'imagination_horizon': 3, 'isolate_envs': 'none', 'batch_shape': [5, 5],
         'cnn_depth': 4}


def run(logdir, params, num_runs=1, resume_runs=True):
  args = types.SimpleNamespace(logdir=str(logdir), params=params, num_runs=num_runs,
                               resume_runs=resume_runs, ping_every=0)
  return train.main(args)


def event_tags(directory):
  tags = set()
  for path in directory.glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags.update(value.tag for value in event.summary.value)
  return tags


def check_run(run_dir, action_size=5):
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  train_files = episodes.list_episodes(run_dir / 'train_episodes')
  test_files = episodes.list_episodes(run_dir / 'test_episodes')
  assert len(train_files) >= 2 and len(test_files) >= 2
  episode = episodes.load_episode(train_files[-1])
  assert episode['image'].shape == (21, 64, 64, 3) and episode['image'].dtype == np.uint8
  assert episode['action'].shape == (21, action_size)
  assert (run_dir / 'checkpoint').exists()
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-40')
  tags = event_tags(run_dir / 'train')
  for tag in ('model/loss', 'model/kl', 'model/prior_entropy', 'model/posterior_entropy',
              'model/image_log_prob', 'model/grad_norm', 'train/return', 'train/length',
              'general/fps', 'general/updates_per_second', 'general/env_frames',
              'train_dataset/episodes'):
    assert tag in tags, tag
  test_tags = event_tags(run_dir / 'test')
  assert {'test/return', 'test/length', 'test/score', 'model/loss'} <= test_tags
  records = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
  frames = [r['env_frames'] for r in records]
  assert frames == sorted(frames) and frames[-1] > 0
  return tags


def test_dreamer_debug(debug_run):
  logdir, done, _ = debug_run  # The smoke config with MP4 videos (tests/conftest.py).
  assert [os.path.basename(d) for d in done] == ['00001']
  tags = check_run(logdir / '00001')
  assert {'actor/loss', 'actor/grad_norm', 'value/loss', 'value/grad_norm'} <= tags
  config = config_lib.from_yaml((logdir / '00001' / 'config.yaml').read_text())
  assert config['model_size'] == 10 and config['max_steps'] == 40
  line = train.summary(logdir / '00001')
  assert line.startswith('00001: test return random play ') and ' at 2000 env frames (' in line


def test_summary_names_random_play_and_the_first_and_last_evaluation(tmp_path):
  records = [
      {'env_frames': 0, 'phase': 'test', 'wall_time': 100.0, 'updates': 0, 'test/return': 300},
      {'env_frames': 0, 'phase': 'test', 'wall_time': 101.0, 'updates': 0, 'test/return': 320},
      {'env_frames': 5000, 'phase': 'test', 'wall_time': 160.0, 'updates': 50,
       'test/return': 450, 'test/score': 450},
      {'env_frames': 9000, 'phase': 'test', 'wall_time': 400.0, 'updates': 90,
       'test/return': 870.4, 'test/score': 870.4}]
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  assert train.summary(tmp_path) == (
      f'{tmp_path.name}: test return random play 310, first evaluation 450 -> last 870 at '
      '9000 env frames (5.0 min)')
  assert train.summary(tmp_path / 'missing') is None


@pytest.mark.parametrize('task', ['dummy_discrete', 'dummy'])
def test_dreamer_discrete_actions(tmp_path, capsys, task):
  """One-hot actions on a one-hot task, and on the continuous dummy task as the
  original's own tests trained (every one-hot vector lies inside its [-1, 1]^5)."""
  params = dict(SMOKE, action_head_dist='onehot_score', action_noise_type='epsilon_greedy',
                tasks=[task])
  run(tmp_path, params)
  check_run(tmp_path / '00001', action_size=5)
  episode = episodes.load_episode(episodes.list_episodes(tmp_path / '00001' / 'test_episodes')[-1])
  actions = episode['action'][1:]
  np.testing.assert_allclose(actions.sum(-1), 1.0, atol=1e-5)
  assert set(np.unique(actions)) <= {0.0, 1.0}
  warned = 'whose actions are continuous' in capsys.readouterr().out
  assert warned == (task == 'dummy')


def test_dreamer_value_target(tmp_path):
  run(tmp_path, dict(SMOKE, value_target_head=True))
  check_run(tmp_path / '00001')


def test_actor_only(tmp_path):
  params = dict(SMOKE, defaults=['actor', 'debug'])
  run(tmp_path, params)
  tags = check_run(tmp_path / '00001')
  assert 'actor/loss' in tags and 'value/loss' not in tags


def test_a_larger_max_steps_extends_a_finished_run(tmp_path, capsys):
  run(tmp_path, dict(SMOKE, max_steps=20))  # One epoch: a train and a test phase.
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists()
  seeds = sorted(p.name for p in (run_dir / 'train_episodes').glob('*.npz'))
  capsys.readouterr()
  # A longer schedule reopens it; every other param given differs and stays as stored.
  done = run(tmp_path, dict(SMOKE, max_steps=40, model_size=11))
  out = capsys.readouterr().out
  assert done == [str(run_dir)] and (run_dir / 'DONE').exists()
  assert out.count('Extending the run') == 1 and (
      'Extending the run from max_steps 20 to 40 as given; its other params stay as stored '
      'in its config.yaml.') in out
  assert 'ignoring changed params: model_size\n' in out
  assert 'Restored ' in out and 'model.ckpt-20' in out
  stored = config_lib.from_yaml((run_dir / 'config.yaml').read_text())
  assert stored['max_steps'] == 40 and stored['model_size'] == 10
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-40')
  episodes_now = sorted(p.name for p in (run_dir / 'train_episodes').glob('*.npz'))
  assert episodes_now[:len(seeds)] == seeds and len(episodes_now) > len(seeds)
  scores = [r['env_frames'] for r in map(json.loads, open(run_dir / 'metrics.jsonl'))
            if 'test/score' in r]
  assert scores == [1000, 1000, 2000, 2000]  # Two test iterations an epoch, then two more.
  # The same or a smaller max_steps: nothing to do, and nothing of the run changes.
  for max_steps in (40, 30):
    assert run(tmp_path, dict(SMOKE, max_steps=max_steps)) == []
    out = capsys.readouterr().out
    assert (f'Run 00001 finished at max_steps 40; max_steps {max_steps} does not extend it, '
            'so there is nothing to do (a larger max_steps trains it further).') in out
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-40')


def test_a_larger_max_steps_extends_an_unfinished_run_and_a_smaller_one_is_ignored(
    tmp_path, capsys):
  params = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'max_steps': 40}
  train.build_config(params, tmp_path)  # A run stopped before its end has this file.
  capsys.readouterr()
  assert train.build_config(dict(params, max_steps=30), tmp_path).max_steps == 40
  assert 'ignoring changed params: max_steps' in capsys.readouterr().out
  assert train.build_config(dict(params, max_steps=80), tmp_path).max_steps == 80
  assert capsys.readouterr().out == (
      'Extending the run from max_steps 40 to 80 as given; its other params stay as stored '
      'in its config.yaml.\n')
  assert config_lib.from_yaml((tmp_path / 'config.yaml').read_text())['max_steps'] == 80
  # Left out of params, the stored schedule holds whatever the presets say.
  config = train.build_config({'defaults': ['dreamer'], 'tasks': ['dummy']}, tmp_path)
  assert config.max_steps == 80 and 'Extending' not in capsys.readouterr().out


def test_num_runs_with_fresh_directories(tmp_path):
  run(tmp_path, dict(SMOKE, max_steps=10), num_runs=2, resume_runs=False)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['00001', '00002']
  assert all((tmp_path / name / 'DONE').exists() for name in ('00001', '00002'))


def test_multi_task_pads_actions_and_reports_returns_per_task(tmp_path):
  # toy_reach has 1-dim actions, dummy 5: one agent acts in both through 5-dim actions.
  params = dict(SMOKE, tasks=['dummy', 'toy_reach'], action_repeat=1, max_length=20,
                num_seed_episodes=2, max_steps=80)
  run(tmp_path, params)
  run_dir = tmp_path / '00001'
  files = episodes.list_episodes(run_dir / 'train_episodes')
  records = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
  seeded = [r for r in records if r['global_step'] == 0 and r['phase'] == 'train']
  for task in ('dummy', 'toy_reach'):  # Each task is seeded to its own quota.
    assert sum(f'train/{task}/return' in r for r in seeded) == 2, seeded
  for path in files:
    episode = episodes.load_episode(path)
    assert episode['action'].shape[1] == 5 and set(episode) >= {'image', 'reward'}
    assert 'position' not in episode  # Multi-task runs keep only the shared image.
  tags = event_tags(run_dir / 'train')
  assert {'train/dummy/return', 'train/toy_reach/return'} <= tags
  assert {'test/dummy/return', 'test/toy_reach/return'} <= event_tags(run_dir / 'test')


def test_dreamer_distribute_mirrored(tmp_path):
  # Without GPUs the strategy has one replica on the CPU; this runs the strategy's paths
  # (distributed input, strategy.run, mirrored checkpoints) end to end and resumes.
  params = dict(SMOKE, distribute='mirrored', max_steps=20)
  run(tmp_path, params)
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-20')
  (run_dir / 'DONE').unlink()
  config = config_lib.from_yaml((run_dir / 'config.yaml').read_text())
  (run_dir / 'config.yaml').write_text(config_lib.to_yaml(dict(config, max_steps=40)))
  run(tmp_path, params)
  assert tf.train.latest_checkpoint(str(run_dir)).endswith('model.ckpt-40')
