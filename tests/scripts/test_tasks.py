"""Short training runs on real suites: DeepMind Control from pixels and Atari."""

import subprocess

import numpy as np
import pytest

from dreamer.data import episodes
from tests.scripts.test_failures import cli_command
from tests.scripts.test_failures import cli_env
from tests.scripts.test_train import event_tags
from tests.scripts.test_train import run

# debug sets action_repeat 50: a cartpole episode is 20 agent steps, pong a few dozen.
# Chunks of 5 steps, as in the smoke config: the train step traces in about half the time.
DEBUG = {'defaults': ['dreamer', 'debug'], 'imagination_horizon': 3, 'max_steps': 20,
         'batch_shape': [5, 5]}


def episodes_of(run_dir, kind='train_episodes'):
  files = episodes.list_episodes(run_dir / kind)
  assert files
  return [episodes.load_episode(path) for path in files]


def test_cartpole_balance_trains_from_pixels(tmp_path):
  # Rendering always happens in a spawned worker (test_build checks every isolate_envs);
  # asking for none must not crash the trainer's process, which has TensorFlow loaded.
  run(tmp_path, dict(DEBUG, tasks=['cartpole_balance'], isolate_envs='none'))
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  for episode in episodes_of(run_dir) + episodes_of(run_dir, 'test_episodes'):
    assert episode['image'].shape[1:] == (64, 64, 3) and episode['image'].dtype == np.uint8
    assert episode['action'].shape[1:] == (1,)
    assert episode['position'].shape[1:] == (3,) and episode['velocity'].shape[1:] == (2,)
    assert len(episode['reward']) == 21
    frames = episode['image'].astype(np.int32)
    assert frames.std() > 5 and np.abs(np.diff(frames, axis=0)).sum() > 0
  tags = event_tags(run_dir / 'train')
  assert {'model/loss', 'heads/position_loss', 'train/return'} <= tags


def test_atari_pong_trains_with_the_discrete_pcont_presets(tmp_path):
  params = dict(DEBUG, defaults=['dreamer', 'pcont', 'discrete', 'atari', 'debug'],
                tasks=['atari_pong'])
  run(tmp_path, params)
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  for episode in episodes_of(run_dir):
    assert episode['image'].shape[1:] == (64, 64, 3) and episode['image'].dtype == np.uint8
    assert episode['action'].shape[1:] == (6,)
    np.testing.assert_allclose(episode['action'][1:].sum(-1), 1.0)  # One-hot actions.
    assert episode['pcont'].shape == episode['reward'].shape
    assert set(np.unique(episode['pcont'])) <= {0.0, 1.0}
  tags = event_tags(run_dir / 'train')
  assert {'model/pcont_log_prob', 'actor/loss', 'value/loss'} <= tags


@pytest.mark.timeout(300)
def test_cartpole_balance_trains_from_state_without_rendering(tmp_path):
  # Through the CLI: with MuJoCo in the trainer's process (isolate_envs none or thread),
  # the run finished but the process aborted at exit with code 134. It asks for none here
  # and gets a worker process.
  params = dict(DEBUG, defaults=['dreamer', 'proprio', 'debug'], tasks=['cartpole_balance'],
                isolate_envs='none')
  result = subprocess.run(cli_command(tmp_path, params), capture_output=True, text=True,
                          env=cli_env(), timeout=240)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  run_dir = tmp_path / '00001'
  assert (run_dir / 'DONE').exists() and not (run_dir / 'FAIL').exists()
  for episode in episodes_of(run_dir) + episodes_of(run_dir, 'test_episodes'):
    assert 'image' not in episode
    assert episode['position'].shape[1:] == (3,) and episode['velocity'].shape[1:] == (2,)
  tags = event_tags(run_dir / 'train')
  assert {'model/reward_log_prob', 'model/position_log_prob', 'model/velocity_log_prob',
          'actor/loss', 'value/loss'} <= tags
  assert not any(tag.startswith('openloop/') or 'image' in tag for tag in tags), sorted(tags)
