"""precision and jit: float16 / bfloat16 networks and XLA-compiled steps still train."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from dreamer.networks import layers
from dreamer.scripts import build
from tests.agents.test_dreamer import batch
from tests.agents.test_dreamer import make_agent

SMALL = {'batch_shape': [2, 4], 'imagination_horizon': 2}
SIZE = (2, 4)


def dense_layers(agent):
  return [m for m in agent.submodules if isinstance(m, layers.Dense)]


def finite_losses(metrics):
  losses = {k: float(v) for k, v in metrics.items() if k.startswith('loss/')}
  assert set(losses) >= {'loss/model', 'loss/action', 'loss/value'}
  return all(np.isfinite(v) for v in losses.values())


def test_precision_16_computes_in_float16_with_loss_scaling():
  agent, _ = make_agent(precision=16, **SMALL)
  dense = dense_layers(agent)
  out = dense[0](tf.zeros([1, int(dense[0].kernel.shape[0])]))
  assert out.dtype == tf.float16
  assert all(v.dtype == tf.float32 for v in agent.trainable_variables)
  assert all(isinstance(o.opt, tf_keras.mixed_precision.LossScaleOptimizer)
             for o in agent.optimizers.values())
  # Distributions stay float32 so that log-probabilities and losses do.
  head = agent.actor_critic.value(tf.zeros([1, 1, agent.world_model.rssm.feature_size]))
  assert head.mode().dtype == tf.float32
  data = batch(agent, SIZE)
  before = [v.numpy().copy() for v in agent.trainable_variables]
  for _ in range(3):
    metrics = agent.train(data)
    assert finite_losses(metrics)
  # Dynamic loss scaling may skip steps that overflow, but not all of them.
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, agent.trainable_variables))
  scale = float(agent.optimizers['model'].opt.loss_scale)
  assert 1 <= scale <= 2 ** 15


def test_precision_bfloat16_needs_no_loss_scaling():
  try:
    agent, _ = make_agent(precision='bfloat16', **SMALL)
  except build.BuildError as e:  # An AVX2-only CPU: test_bfloat16_on_a_cpu_* cover it.
    pytest.skip(str(e))
  dense = dense_layers(agent)
  assert dense[0](tf.zeros([1, int(dense[0].kernel.shape[0])])).dtype == tf.bfloat16
  assert not any(isinstance(o.opt, tf_keras.mixed_precision.LossScaleOptimizer)
                 for o in agent.optimizers.values())
  assert finite_losses(agent.train(batch(agent, SIZE)))


def test_precision_32_is_float32_throughout():
  agent, _ = make_agent(**SMALL)
  dense = dense_layers(agent)
  assert dense[0](tf.zeros([1, int(dense[0].kernel.shape[0])])).dtype == tf.float32
  assert not isinstance(agent.optimizers['model'].opt, tf_keras.mixed_precision.LossScaleOptimizer)


def test_jit_compiles_train_step_and_policy():
  agent, _ = make_agent(jit=True, **SMALL)
  assert agent.train._jit_compile is True
  metrics = agent.train(batch(agent, SIZE))
  assert finite_losses(metrics)
  assert int(agent.updates.numpy()) == 1
  obs = {'image': np.zeros((2, 64, 64, 3), np.uint8)}
  action, _ = agent.policy(obs, None, np.ones(2, bool), [0.1, 0.1])
  assert action.shape == (2, 2) and np.all(np.abs(action.numpy()) <= 1)
  assert all(fn._jit_compile is True for fn in agent._policies.values())


@pytest.mark.parametrize('value', [8, 'float8'])
def test_unknown_precision_is_rejected(value):
  from dreamer import config as config_lib
  with pytest.raises(config_lib.ConfigError, match='precision must be one of 16, 32, bfloat16'):
    config_lib.build_config({'tasks': ['dummy'], 'precision': value})


def test_bfloat16_on_a_cpu_that_cannot_run_it_is_a_one_line_error(monkeypatch):
  # What TensorFlow 2.21's oneDNN does with a bfloat16 convolution below AVX-512 (seen with
  # ONEDNN_MAX_CPU_ISA=AVX2): it aborts in the first update, deep inside the train step.
  def conv2d(*args, **kwargs):
    raise tf.errors.AbortedError(None, None, 'could not create a primitive descriptor')

  monkeypatch.setattr(tf.nn, 'conv2d', conv2d)
  with pytest.raises(build.BuildError, match='use precision: 32') as error:
    make_agent(precision='bfloat16', **SMALL)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('flags, notice', [({'avx2', 'avx512f'}, True),
                                           ({'avx512f', 'avx512_bf16'}, False)])
def test_bfloat16_on_a_cpu_without_bf16_instructions_says_it_is_emulated(
    monkeypatch, flags, notice):
  lines = []
  monkeypatch.setattr(build, 'cpu_flags', lambda: flags)
  monkeypatch.setattr(tf.nn, 'conv2d', lambda *args, **kwargs: None)  # The probe passes.
  build.check_cpu_bfloat16(lines.append)
  assert bool(lines) == notice
  assert all('emulated' in line and '\n' not in line for line in lines)
