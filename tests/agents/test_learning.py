"""The agent learns, and only through the gradient of imagined returns: on a toy task from
pixels, and on a real DeepMind Control task from its state vectors.

`toy_reach_right` (dreamer/envs/toy.py): a dot starts at the left of a 64x64 image and is
rewarded for being near a target on the right. The reward depends on the dot's position,
never directly on the action, so the actor can improve only by differentiating imagined
returns through the learned dynamics. Random play returns about 2.6, moving right 16.5.

Both the sampled behaviour of the last training episodes and the policy mode on test
episodes must clear the threshold: the untrained action head is a broad tanh-normal (init
std 5), so its samples score like random play, and its mode alone can point either way.
With the imagination gradient cut (LEARN_CUT=1), the actor never changes and the test fails;
the suite runs that cut run as a test of its own, which needs both below the threshold (seed
0: last 5 sampled 4.8, last 3 test 3.9; about a minute of CPU).

`cartpole_swingup` (DeepMind Control, real physics, state vectors, no rendering): the
quickstart preset's small networks at action repeat 8, 1600 updates; `make train` runs the
same config. At this budget the paper's actor is driven to a bound of its tanh by the
value's slope for anywhere between 100 and 1300 updates, so its returns spread from 136
to 302 (docs/results.md §2) and no threshold holds. The test adds an option of the
original that keeps it off the bound: value targets from a slowly updated copy of the
value head (`value_target_head`, a copy every 100 updates). Random play (the 20 seed
episodes) returns 100-143 by seed; the trained policy's mode on the last evaluation
212-308 over 14 runs of seeds 0-3 and 5 (seed 0's, the test's: 212-308 in 8), 181 and 202
on seed 4. With the imagination gradient cut the actor never changes, and its mode returns
26-144 (seeds 0-2; seed 0: 138, 144), so the test fails; the threshold, 180, sits midway
between seed 0's 144 and 212. The cut actor's broad samples score like random play or
better, so only the mode is held to the threshold (docs/results.md §2 has every run). The
cut run takes minutes, so it is not in the suite: run it with LEARN_CUT=1.

LEARN_SEED=<n> runs another seed; scripts/learning_study.py runs these configs over seeds
with diagnostics.
"""

import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from dreamer.agents import actor_critic
from dreamer.scripts import train

TOY = {
    'defaults': ['dreamer'], 'tasks': ['toy_reach_right'], 'seed': 0,
    'cnn_depth': 8, 'model_size': 64, 'state_size': 16, 'num_units': 64,
    'batch_shape': [16, 20], 'imagination_horizon': 10, 'free_nats': 1.0, 'model_lr': 2e-3,
    'num_seed_episodes': 5, 'num_seed_steps': 100, 'collect_every': 80, 'collect_steps': 20,
    'train_steps': 400, 'test_steps': 48, 'train_log_every': 400, 'checkpoint_every': 480,
    'max_steps': 3136, 'isolate_envs': 'none',
    # Batches drawn when asked: a prefetch thread reads the replay ahead of the trainer, so
    # which episodes a batch holds would depend on timing (seed 0 once fell to 11.2 of 16.5
    # in a busy suite, against 15.8 alone and in pairs).
    'batch_prefetch': 0}
TOY_THRESHOLD = 12.0
SWINGUP = {
    'defaults': ['dreamer', 'cpu', 'proprio', 'quickstart'], 'tasks': ['cartpole_swingup'],
    'action_repeat': 8, 'seed': 0, 'model_lr': 2e-3, 'batch_prefetch': 0,
    'value_target_head': True, 'value_target_period': 1600, 'max_steps': 25680}
# Midway between what the test's seed reaches without learning (random play 100, the cut
# actor's mode 138-144) and the lowest trained run of that seed (212).
SWINGUP_THRESHOLD = 180.0


def cut_imagination_gradient(monkeypatch):
  original = actor_critic.imagine

  def cut(*args, **kwargs):
    return tf.nest.map_structure(tf.stop_gradient, original(*args, **kwargs))

  monkeypatch.setattr(actor_critic, 'imagine', cut)


def train_and_read(tmp_path, monkeypatch, params):
  """Trains one run; returns its (train returns, test returns) in order."""
  if os.environ.get('LEARN_CUT'):
    cut_imagination_gradient(monkeypatch)
  params = dict(params, seed=int(os.environ.get('LEARN_SEED', params['seed'])))
  args = types.SimpleNamespace(logdir=str(tmp_path), params=params, num_runs=1,
                               resume_runs=True, ping_every=0)
  train.main(args)
  records = [json.loads(line) for line in open(tmp_path / '00001' / 'metrics.jsonl')]
  train_returns = [r['train/return'] for r in records if 'train/return' in r]
  test_returns = [r['test/return'] for r in records if 'test/return' in r]
  return train_returns, test_returns


@pytest.mark.learning
def test_dreamer_learns_to_reach_from_pixels(tmp_path, monkeypatch):
  train_returns, test_returns = train_and_read(tmp_path, monkeypatch, TOY)
  random_play = np.mean(train_returns[:5])  # The seed episodes.
  final_train = np.mean(train_returns[-5:])
  final_test = np.mean(test_returns[-3:])
  print(f'random {random_play:.1f}, final train {final_train:.1f}, test {final_test:.1f}')
  assert random_play < 6.0
  assert final_train > TOY_THRESHOLD, train_returns
  assert final_test > TOY_THRESHOLD, test_returns


@pytest.mark.learning
def test_with_the_imagination_gradient_cut_the_toy_agent_stays_below_the_threshold(
    tmp_path, monkeypatch):
  """The toy test's run with the cut of LEARN_CUT=1: what the threshold holds the agent to
  is learned through imagination, not reached without it."""
  cut_imagination_gradient(monkeypatch)
  train_returns, test_returns = train_and_read(tmp_path, monkeypatch, TOY)
  final_train = np.mean(train_returns[-5:])
  final_test = np.mean(test_returns[-3:])
  print(f'cut: final train {final_train:.1f}, test {final_test:.1f}')
  assert final_train < TOY_THRESHOLD, train_returns
  assert final_test < TOY_THRESHOLD, test_returns


@pytest.mark.learning
def test_dreamer_learns_cartpole_swingup_from_states(tmp_path, monkeypatch):
  train_returns, test_returns = train_and_read(tmp_path, monkeypatch, SWINGUP)
  random_play = np.mean(train_returns[:20])  # The seed episodes.
  final_train = np.mean(train_returns[-10:])
  final_test = np.mean(test_returns[-4:])  # The last evaluation: the policy's mode.
  print(f'random {random_play:.1f}, final train {final_train:.1f}, test {final_test:.1f}')
  assert random_play < 150.0
  # The sampled behaviour beats random play; the policy's mode clears the threshold, which
  # the cut runs' unchanged modes (26-144 over seeds 0-2) do not.
  assert final_train > random_play, train_returns
  assert final_test > SWINGUP_THRESHOLD, test_returns
