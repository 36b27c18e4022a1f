"""scripts/learning_study.py: the original's bootstrap variant, the configs it names, and a cut run
with the entropy bonus."""

import importlib.util
import json
import pathlib
import re

import numpy as np
import tensorflow as tf

from dreamer import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_study():
  spec = importlib.util.spec_from_file_location('learning_study',
                                                ROOT / 'scripts' / 'learning_study.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_original_bootstrap_uses_the_second_to_last_value():
  study = load_study()
  reward = np.array([[1., 2., 3., 4.]], np.float32)
  value = np.array([[10., 20., 30., 40.]], np.float32)
  discount, lambda_ = 0.5, 0.8
  returns, kept = study.original_returns(
      None, tf.constant(reward), tf.constant(value), tf.fill(reward.shape, discount),
      {'bootstrap': True, 'lambda_': lambda_})
  # SPEC 5.6/5.7 by hand: truncate to H - 1 steps, bootstrap b = v_{H-2} = 30.
  expected, running = [], 30.0
  for i in reversed(range(3)):
    next_value = value[0, i + 1] if i < 2 else 30.0
    running = reward[0, i] + discount * ((1 - lambda_) * next_value + lambda_ * running)
    expected.insert(0, running)
  np.testing.assert_allclose(returns.numpy()[0], expected, rtol=1e-6)
  assert kept.shape == (1, 3)
  # Without bootstrap all H steps stay and the tail is zero.
  returns, _ = study.original_returns(
      None, tf.constant(reward), tf.constant(value), tf.fill(reward.shape, discount),
      {'bootstrap': False, 'lambda_': 1.0})
  np.testing.assert_allclose(returns.numpy()[0], [3.25, 4.5, 5.0, 4.0], rtol=1e-6)


def make_train_params():
  line = next(l for l in (ROOT / 'Makefile').read_text().splitlines()
              if l.startswith('PARAMS ?='))
  return config_lib.parse_params(re.sub(r'^PARAMS \?= ', '', line))


def test_make_train_runs_the_swingup_tests_config():
  # `make train` trains the real-task learning test's config, so the test's measured
  # returns (docs/results.md section 2) are what a newcomer's first run should show; only
  # the seed (random per run) and the prefetch (on, for speed) differ.
  from tests.agents import test_learning
  test_config = {k: v for k, v in test_learning.SWINGUP.items()
                 if k not in ('seed', 'batch_prefetch')}
  assert make_train_params() == test_config
  assert load_study().CONFIGS['swingup_test'] == 'SWINGUP'


def test_swingup_is_the_tests_config_without_its_additions():
  # The study's swingup config is the paper's algorithm at the test's sizes: the earlier
  # sessions' runs in docs/results.md section 2 use it, with --params on top.
  from tests.agents import test_learning
  added = {k: v for k, v in test_learning.SWINGUP.items()
           if load_study().CONFIGS['swingup'].get(k) != v}
  assert set(added) == {'seed', 'model_lr', 'batch_prefetch', 'value_target_head',
                        'value_target_period', 'max_steps'}


def test_a_cut_run_with_the_entropy_bonus_records_its_push(tmp_path):
  # With the imagination gradient cut, the rewards and values push the actor nowhere and
  # the entropy bonus is all that trains it; the diagnostics record that instead of failing.
  study = load_study()
  study.main(['toy', '--seeds', '0', '--cut', '--logdir', str(tmp_path), '--episodes', '1',
              '--params', '{max_steps: 224, train_steps: 96, train_log_every: 96, '
              'checkpoint_every: 96, test_steps: 16, action_beta: 0.1}'])
  rows = [json.loads(line) for line in open(tmp_path / 'seed0' / 'study.jsonl')]
  assert rows and all(r['actor_push_reward'] == 0 and r['actor_push_value'] == 0
                      for r in rows)
  assert all(r['actor_push_entropy'] != 0 for r in rows)
