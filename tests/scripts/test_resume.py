"""A resumed run trains on with what its checkpoint holds, value by value.

Each run goes through the command line in a process of its own, under resume_probe.py: the
state a run's training loop starts from is written to a checkpoint of the probe's, and
compared key by key with the run's checkpoint as read from disk. A resumed run is given no
further updates (its max_steps is the checkpoint's step), so that what the loop starts from
is what it would have trained on.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.scripts.test_train import SMOKE

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = ROOT / 'tests' / 'scripts' / 'resume_probe.py'
LAUNCHER = ROOT / 'scripts' / 'launch_workers.py'
# B = 4 splits over two replicas: 3 updates (trainer steps 0, 4, 8) to the checkpoint at
# step 20. The target heads copy their heads after the first, so that at the checkpoint
# they differ both from their initial values and from the heads.
PARAMS = dict(SMOKE, max_steps=20, batch_shape=[4, 5], value_target_head=True,
              value_target_period=10, action_target_head=True, action_target_period=10)
# What a tf.train.Checkpoint records about itself, not about the run.
BOOKKEEPING = ('_CHECKPOINTABLE_OBJECT_GRAPH', 'save_counter/.ATTRIBUTES/VARIABLE_VALUE')


def probe(tmp_path, name, params, cpus=1, workers=1):
  """Trains or resumes run 00001 of tmp_path/logdir through the command line; returns what
  the probe captured, {rank: {key: value}}, and the command's output."""
  out = tmp_path / name
  command = [sys.executable, str(PROBE), str(out), '--cpus', str(cpus), '--',
             '--logdir', str(tmp_path / 'logdir'), '--params', json.dumps(params)]
  if workers > 1:
    command = [sys.executable, str(LAUNCHER), '--workers', str(workers), '--'] + command
  scratch = tmp_path / 'scratch'  # Where other workers write their checkpoints and delete them.
  scratch.mkdir(exist_ok=True)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONUNBUFFERED='1', TMPDIR=str(scratch),
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
  env.pop('TF_CONFIG', None)
  result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  captured = {}
  for rank in range(workers):
    facts = json.loads((out / f'rank{rank}.json').read_text())
    assert facts['replicas'] == [cpus if workers == 1 else 1], facts
    assert facts['replicas_equal'], f'the replicas of worker {rank} hold different values'
    captured[rank] = read(out / f'rank{rank}')
  return captured, result.stdout


def read(path):
  reader = tf.train.load_checkpoint(str(path))
  return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
          if key not in BOOKKEEPING}


def saved_at(run_dir, step):
  """The values of the run's checkpoint at `step`, as a resume would read them."""
  latest = tf.train.latest_checkpoint(str(run_dir))
  assert latest.endswith(f'model.ckpt-{step}'), latest
  return read(latest)


def assert_complete(saved, initial):
  """The checkpoint holds what a resume needs, and values a fresh start would not have."""
  counters = {f'agent/optimizers/{name}/opt/_iterations': 3
              for name in ('model', 'value', 'action')}
  counters.update({'agent/updates': 3, 'global_step': 20})
  missing = sorted(set(initial) - set(saved))
  assert not missing, f'the checkpoint lacks {len(missing)} values, such as {missing[:3]}'
  for name, value in counters.items():
    assert saved[f'{name}/.ATTRIBUTES/VARIABLE_VALUE'] == value, name
  assert saved['env_frames/.ATTRIBUTES/VARIABLE_VALUE'] > 0
  for head in ('value_target', 'action_target'):
    keys = [k for k in saved if k.startswith(f'agent/actor_critic/{head}/')]
    assert keys and all(not np.array_equal(saved[k], initial[k]) for k in keys), head
  # Adam's two slots per variable (the pcont head and a few model variables get no gradient
  # here: their slots stay zero).
  pattern = r'agent/optimizers/(model|value|action)/opt/_variables/'
  slots = [k for k in saved if re.match(pattern, k)]
  assert len(slots) > 100
  assert sum(np.array_equal(saved[k], initial[k]) for k in slots) < 0.1 * len(slots)
  # The trainable variables: all that are not counters, slots or target heads.
  weights = [k for k in saved
             if re.match(r'agent/(_variables/(model|value|action)|world_model)/', k)]
  assert len(weights) > 50
  assert sum(np.array_equal(saved[k], initial[k]) for k in weights) < 0.1 * len(weights)


def assert_restored(captured, saved):
  """The loop starts from every value of the checkpoint, and from nothing else."""
  missing = sorted(set(saved) ^ set(captured))
  assert not missing, f'in one of checkpoint and resumed state only: {missing[:5]}'
  different = [k for k in saved if not np.array_equal(captured[k], saved[k])]
  assert not different, f'{len(different)} values differ from the checkpoint: {different[:5]}'


def resume(run_dir):
  """What a user does to go on with a finished run: the same command without DONE."""
  (run_dir / 'DONE').unlink()


@pytest.mark.timeout(400)
def test_resume_restores_every_value_on_one_device_and_under_mirrored(tmp_path):
  """A run trained under distribute: mirrored (two replicas on two logical CPUs) resumes on
  one device (distribute follows the command), which saves its checkpoint again; that one
  resumes under mirrored into both replicas (each of which the probe checks). One run
  serves the three cases to keep the suite short: a checkpoint restored on one device,
  restored under mirrored, and a change of distribute either way."""
  run_dir = tmp_path / 'logdir' / '00001'
  mirrored = dict(PARAMS, distribute='mirrored')
  initial, out = probe(tmp_path, 'fresh', mirrored, cpus=2)
  assert 'Data-parallel training over 2 replicas.' in out
  saved = saved_at(run_dir, 20)
  assert_complete(saved, initial[0])
  resume(run_dir)
  captured, out = probe(tmp_path, 'one_device', dict(mirrored, distribute=None))
  assert 'Data-parallel' not in out and f'Restored {run_dir}/model.ckpt-20 at ' in out
  assert_restored(captured[0], saved)
  # The one-device process saved the checkpoint again at the same step, as it ended.
  assert_restored(saved_at(run_dir, 20), saved)
  resume(run_dir)
  captured, out = probe(tmp_path, 'mirrored_again', mirrored, cpus=2)
  assert 'Data-parallel training over 2 replicas.' in out
  assert f'Restored {run_dir}/model.ckpt-20 at ' in out
  assert_restored(captured[0], saved)

