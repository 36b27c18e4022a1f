"""distribute: mirrored: one data-parallel update equals the single-device update."""

import json
import os
import pathlib
import subprocess
import sys
import types

import pytest

from dreamer import config as config_lib
from dreamer.agents import distribute
from dreamer.envs import registry
from dreamer.scripts import build

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def result():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
  process = subprocess.run(
      [sys.executable, str(ROOT / 'tests' / 'agents' / 'mirrored_worker.py')],
      capture_output=True, text=True, env=env, timeout=600)
  assert process.returncode == 0, process.stderr[-3000:]
  return json.loads(process.stdout.strip().splitlines()[-1])


def test_mirrored_update_matches_single_device(result):
  assert result['replicas'] == 2
  single, mirrored = result['single'], result['mirrored']
  assert set(single) == set(mirrored)
  for key in single:
    # Gradient norms would double if replicas did not divide their losses, and halve
    # if they clipped before summing; losses are the mean over the global batch.
    assert mirrored[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key
  assert single['optimizer_model/grad_norm'] > 1.0  # Clipping (at 1.0) was active.
  assert result['max_variable_difference'] < 1e-6
  assert result['replicas_equal']
  assert result['updates'] == 1
  assert result['policy_action_shape'] == [2, 2]


def test_jit_with_mirrored_compiles_each_replica_and_matches_one_device(result):
  assert result['jit_compiled'] and result['jit_traces'] == 2
  single, jit = result['single'], result['jit']
  assert set(single) == set(jit)
  for key in single:
    # XLA may fuse differently from the graph executor, hence not 1e-6 as above.
    assert jit[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key
  assert result['jit_max_variable_difference'] < 1e-5
  assert result['jit_policy_action_shape'] == [2, 2]


def test_mirrored_dataset_gives_each_replica_its_share(result):
  shapes = [shape for shape, _, _ in result['dataset']]
  assert shapes == [[2, 6, 64, 64, 3]] * 2
  assert {dtype for _, dtype, _ in result['dataset']} == {'uint8'}
  assert [device.split(':')[-1] for _, _, device in result['dataset']] == ['0', '1']


def test_batch_must_split_evenly_over_replicas():
  two = types.SimpleNamespace(num_replicas_in_sync=2)
  assert distribute.per_replica_batch(two, 50) == 25
  with pytest.raises(ValueError, match='does not split evenly over 2 replicas'):
    distribute.per_replica_batch(two, 5)


def test_config_choices_and_refusals():
  params = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy']}
  config = config_lib.build_config(params, registry.state_components_checked)
  assert config.distribute is None and build.strategy(config) is None
  with pytest.raises(config_lib.ConfigError, match='distribute must be one of mirrored'):
    config_lib.build_config(dict(params, distribute='tpu'))
  config = config_lib.build_config(dict(params, distribute='multi_worker', jit=True))
  with pytest.raises(build.BuildError, match='jit: True is not supported with distribute: '
                     'multi_worker'):
    build.strategy(config)
  config = config_lib.build_config(
      dict(params, distribute='multi_worker', collect_in_background=True))
  with pytest.raises(build.BuildError, match='collect_in_background: True is not supported '
                     'with distribute: multi_worker'):
    build.strategy(config)


def test_train_chunks_must_fit_each_replicas_batch(monkeypatch):
  two = types.SimpleNamespace(num_replicas_in_sync=2)
  monkeypatch.setattr(distribute, 'make_strategy', lambda name, cluster=None: two)
  params = {'defaults': ['dreamer', 'debug'], 'tasks': ['dummy'], 'distribute': 'mirrored',
            'batch_shape': [6, 10]}
  assert build.strategy(config_lib.build_config(dict(params, train_chunks=3))) is two
  with pytest.raises(build.BuildError, match=r'^train_chunks = 4 is more than the 3 sequences '
                     'of each of the 2 replicas of distribute: mirrored; lower train_chunks$'):
    build.strategy(config_lib.build_config(dict(params, train_chunks=4)))
