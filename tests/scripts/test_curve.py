"""scripts/curve.py: the size switch and the schedule that stops at the asked env frames."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load():
  spec = importlib.util.spec_from_file_location('curve', ROOT / 'scripts' / 'curve.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize('size, frames, defaults, max_steps', [
    # cpu: B = 16, 100 updates (1600 trainer steps) per 1000-frame episode, epochs of
    # 16000 train + 16 test steps. 20k frames = 5 seed + 15 collected episodes -> 2 epochs.
    ('cpu', 20000, ['dreamer', 'cpu'], 2 * 16016),
    # paper: B = 50, 5000 trainer steps per episode, epochs of 50000 + 50; 1e6 frames ->
    # 995 episodes -> 100 epochs: the original's 5e6 trainer steps (plus test steps).
    ('paper', 1000000, ['dreamer'], 100 * 50050),
])
def test_curve_keeps_one_update_per_10_frames_and_stops_at_the_frames(size, frames, defaults,
                                                                      max_steps):
  from dreamer.scripts import train
  curve = load()
  params = curve.params_for(size, 'cartpole_balance', frames)
  assert params['defaults'] == defaults and params['max_steps'] == max_steps
  config = train.build_config(params)
  updates_per_episode = config.collect_every // config.batch_shape[0]
  assert updates_per_episode == 100  # 1000 frames per episode: one update per 10 frames.


def test_curve_refuses_a_task_that_is_not_deepmind_control(capsys):
  assert load().main(['--task', 'atari_pong']) == 2
  assert capsys.readouterr().err.strip() == (
      'error: --task must be a DeepMind Control task, got atari_pong')
