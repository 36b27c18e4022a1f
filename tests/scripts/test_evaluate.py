"""python -m dreamer.scripts.evaluate on a debug run: returns, videos, one-line errors."""

import os
import shutil
import subprocess
import sys

import imageio.v3 as iio
import pytest

from dreamer import config as config_lib
from dreamer.scripts import evaluate


@pytest.fixture(scope='module')
def run_dir(debug_run):
  return debug_run[0] / '00001'  # The smoke config, checkpoints at 20 and 40 (conftest.py).


def cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-m', 'dreamer.scripts.evaluate', *args],
                        capture_output=True, text=True, env=env, timeout=300)


def test_evaluate_prints_returns_and_writes_a_video(run_dir, tmp_path):
  video = tmp_path / 'eval.gif'
  result = cli('--logdir', str(run_dir), '--episodes', '2', '--video', str(video))
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0].startswith('Evaluating model.ckpt-40 (2000 env frames of training) on dummy')
  episodes = [line for line in lines if line.startswith('Episode ')]
  assert len(episodes) == 2 and all('length 20' in line for line in episodes)
  returns = [float(line.split('return ')[1].split(',')[0]) for line in episodes]
  mean = float(lines[-2].split()[2])
  assert lines[-2].startswith('Mean return') and mean == pytest.approx(sum(returns) / 2, abs=0.01)
  assert lines[-1] == f'Wrote {video} (42 frames).'
  assert iio.imread(video, index=None).shape == (42, 64, 64, 3)  # 2 episodes of 21 frames.


def test_evaluate_in_process_with_explicit_checkpoint_and_an_mp4(run_dir, tmp_path):
  lines = []
  video = tmp_path / 'eval.mp4'
  returns = evaluate.evaluate(run_dir, episodes=1, video=video, step=20, log=lines.append)
  assert len(returns) == 1 and 0 < returns[0] < 1000  # 1000 rewards uniform in [0, 1).
  assert lines[1] == f'Episode 1: return {returns[0]:.2f}, length 20'
  assert lines[-1] == f'Wrote {video} (21 frames).'
  assert iio.imread(video, plugin='FFMPEG', index=None).shape == (21, 64, 64, 3)


def test_errors_are_one_line(run_dir, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  no_checkpoint = tmp_path / 'no_checkpoint'
  no_checkpoint.mkdir()
  shutil.copy(run_dir / 'config.yaml', no_checkpoint / 'config.yaml')
  cases = [
      (['--logdir', str(tmp_path / 'missing')], 'does not exist'),
      (['--logdir', str(empty)], 'has no config.yaml'),
      (['--logdir', str(run_dir.parent)], f'pass one of them, e.g. {run_dir}'),
      (['--logdir', str(no_checkpoint)], 'no checkpoint (model.ckpt-*)'),
      (['--logdir', str(run_dir), '--checkpoint', '7'], 'no checkpoint at step 7'),
      (['--logdir', str(run_dir), '--video', 'clip.avi'], 'use a .gif or .mp4'),
      (['--logdir', str(run_dir), '--episodes', '0'], 'at least 1'),
  ]
  for args, message in cases:
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (args, result.stderr)
    assert message in lines[-1] and (len(lines) == 1 or 'usage' in lines[0]), result.stderr


def test_checkpoint_that_does_not_fit_the_config(run_dir, tmp_path):
  other = tmp_path / 'other'
  shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns('*_episodes', 'train', 'test'))
  config = dict(config_lib.from_yaml((other / 'config.yaml').read_text()), model_size=12)
  (other / 'config.yaml').write_text(config_lib.to_yaml(config))
  with pytest.raises(evaluate.EvaluateError, match="does not fit the run's config.yaml"):
    evaluate.evaluate(other, log=lambda line: None)
