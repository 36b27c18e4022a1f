"""collect_in_background: the collection's thread, its weights and its end; a run with it
keeps the serial schedule's updates, env frames and files."""

import collections
import json
import threading
import types

import numpy as np
import pytest
import tensorflow as tf

from dreamer.data import episodes
from dreamer.envs import dummy
from dreamer.training import background
from tests.scripts.test_train import SMOKE, check_run, run
from tests.training import test_timings


def fake_agent(values):
  """What the collector reads of an agent: its world model's and actor-critic's variables."""
  variables = [tf.Variable(np.full(shape, value, np.float32)) for shape, value in values]
  return types.SimpleNamespace(world_model=types.SimpleNamespace(variables=variables[:1]),
                               actor_critic=types.SimpleNamespace(variables=variables[1:]))


def test_the_acting_copy_holds_the_weights_of_the_start_while_the_agent_trains():
  agent = fake_agent([((2,), 1.0), ((3,), 2.0)])
  acting = fake_agent([((2,), 0.0), ((3,), 0.0)])
  collector = background.BackgroundCollector(agent, acting)
  started, trained, seen = threading.Event(), threading.Event(), []

  def collect():
    started.set()
    trained.wait(10)  # The trainer's next update has happened.
    variables = acting.actor_critic.variables + acting.world_model.variables
    seen.append([v.numpy().copy() for v in variables])

  collector.start(collect)
  started.wait(10)
  assert collector.busy
  for variable in agent.world_model.variables + agent.actor_critic.variables:
    variable.assign_add(tf.ones_like(variable))  # An update while the collection runs.
  trained.set()
  collector.wait()
  assert not collector.busy
  np.testing.assert_array_equal(seen[0][0], [2.0] * 3)
  np.testing.assert_array_equal(seen[0][1], [1.0] * 2)
  collector.start(lambda: None)  # The next collection acts with the newer weights.
  collector.wait()
  np.testing.assert_array_equal(acting.world_model.variables[0].numpy(), [2.0] * 2)


def test_errors_reach_the_trainer_and_stop_ends_the_collection():
  agent, acting = fake_agent([((1,), 1.0)]), fake_agent([((1,), 0.0)])
  collector = background.BackgroundCollector(agent, acting)

  def fail():
    raise RuntimeError('env died')

  collector.start(fail)
  with pytest.raises(RuntimeError, match='env died'):
    collector.wait()
  collector.wait()  # Raised once.

  steps = []

  def endless():
    while True:
      if collector.stopping:
        raise background.Stopped()
      steps.append(1)

  collector.start(endless)
  collector.stop(timeout=10)
  assert not collector.busy and steps
  collector.wait()  # Stopped is not an error.


def test_agents_of_different_configs_are_refused():
  with pytest.raises(ValueError, match='not built from the same config'):
    background.BackgroundCollector(fake_agent([((2,), 0.0)]), fake_agent([((3,), 0.0)]))


def test_a_run_collects_in_a_thread_with_the_serial_schedule(tmp_path, monkeypatch, debug_run):
  threads = collections.Counter()
  real = dummy.DummyEnv.step

  def step(env, action):
    threads[threading.current_thread().name] += 1
    return real(env, action)

  monkeypatch.setattr(dummy.DummyEnv, 'step', step)
  # The serial reference is the shared smoke run (tests/conftest.py), with its params.
  run(tmp_path, dict(SMOKE, save_videos='mp4', checkpoint_every=10, collect_in_background=True))
  # The one train episode after seeding (epoch 2 of 2): 20 agent steps of 50 env frames.
  assert threads['background-collection'] == 1000
  records = {}
  for name, run_dir in (('serial', debug_run[0] / '00001'), ('background', tmp_path / '00001')):
    check_run(run_dir)
    lines = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
    # Train logs come while a collection may be in flight, whose frames count when it
    # ends: their updates match, their env frames may lag by one collection.
    records[name] = [(r['env_frames'], r['updates']) for r in lines if 'test/score' in r]
    records[name].append([r['updates'] for r in lines if r['phase'] == 'train' and
                          'model/loss' in r])
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir)))
    records[name].append(int(reader.get_tensor('env_frames/.ATTRIBUTES/VARIABLE_VALUE')))
    records[name].append(len(episodes.list_episodes(run_dir / 'train_episodes')))
  # Every evaluation at the same env frames and update count, train logs at the same
  # updates, the same frames in the checkpoint and the same number of train episodes.
  assert records['background'] == records['serial']
  # The thread's env and policy time overlaps the updates: not counted twice.
  for record in test_timings.time_records(tmp_path / '00001'):
    test_timings.check_shares(record)
