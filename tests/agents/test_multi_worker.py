"""distribute: multi_worker: two worker processes on 127.0.0.1 make the single-process update
on the global batch; where the cluster comes from; how a lost worker is named."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dreamer.agents import distribute

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """Runs multi_worker_worker.py as 2 workers; returns the variables of both workers, of
  the single-process reference, and of both workers without the all-reduce."""
  out = tmp_path_factory.mktemp('multi_worker')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
  command = [sys.executable, str(ROOT / 'scripts' / 'launch_workers.py'), '--workers', '2',
             '--', sys.executable, str(ROOT / 'tests' / 'agents' / 'multi_worker_worker.py'),
             str(out)]
  process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
  assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
  assert '[worker 1] worker 1 of 2: 3 updates, 2 replicas' in process.stdout
  names = ('worker0', 'worker1', 'single', 'broken0', 'broken1')
  return {name: dict(np.load(out / f'{name}.npz')) for name in names}


def max_difference(a, b):
  return max(float(np.max(np.abs(a[k] - b[k]))) for k in a if k != 'loss')


def share_different(a, b, tolerance=1e-7):
  """The share of all weights that differ by more than `tolerance`.

  Not the largest difference: the workers take Adam steps nearly linear in the gradient
  (see multi_worker_worker.py), yet a different summation order moved a rare weight by up
  to 8.6e-6 there. Measured in that script's docstring: with the all-reduce at most
  0.006 % of the weights differ by more than 1e-7, without it 86-91 %."""
  differences = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a if k != 'loss'])
  return float(np.mean(differences > tolerance))


@pytest.mark.timeout(420)
def test_two_workers_make_the_update_of_one_process_on_the_whole_batch(trained):
  first, second, single = trained['worker0'], trained['worker1'], trained['single']
  assert set(first) == set(single) and len(first) > 20
  assert max_difference(first, second) < 1e-6  # The workers hold the same weights.
  assert share_different(first, single) < 0.01
  # Every worker's loss is the mean over the global batch.
  np.testing.assert_allclose(first['loss'], single['loss'], rtol=1e-4)
  np.testing.assert_allclose(second['loss'], single['loss'], rtol=1e-4)


@pytest.mark.timeout(420)
def test_without_the_all_reduce_the_workers_drift_apart(trained):
  first, second, single = trained['broken0'], trained['broken1'], trained['single']
  # Each worker stepped along the gradient of its own half of the batch.
  assert share_different(first, single) > 0.5
  assert share_different(first, second) > 0.5


def clear_cluster(monkeypatch):
  for name in list(os.environ):
    if name == 'TF_CONFIG' or name.startswith('SLURM_'):
      monkeypatch.delenv(name)


def test_tf_config_describes_the_cluster(monkeypatch):
  clear_cluster(monkeypatch)
  monkeypatch.setenv('TF_CONFIG', json.dumps({
      'cluster': {'worker': ['127.0.0.1:2001', '127.0.0.1:2002', '127.0.0.1:2003']},
      'task': {'type': 'worker', 'index': 2}}))
  resolver = distribute.resolve_cluster()
  assert resolver.cluster_spec().as_dict() == {
      'worker': ['127.0.0.1:2001', '127.0.0.1:2002', '127.0.0.1:2003']}
  assert (resolver.task_type, resolver.task_id) == ('worker', 2)


@pytest.mark.parametrize('gpus, nodes, per_node, workers', [
    ('', 'node[07-08]', '1(x2)', ['node07:{port}', 'node08:{port}']),
    ('0,1', 'node[07-08]', '1(x2)', ['node07:{port}', 'node08:{port}']),
    ('', 'cpu1', '2', ['cpu1:{port}', 'cpu1:{next}']),  # CPU tasks may share a node.
])
def test_slurm_describes_the_cluster_without_tf_config(monkeypatch, gpus, nodes, per_node,
                                                      workers):
  clear_cluster(monkeypatch)
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', gpus)  # So nvidia-smi is not asked.
  for name, value in {'SLURM_JOB_ID': '4321', 'SLURM_PROCID': '1', 'SLURM_STEP_NUM_TASKS': '2',
                      'SLURM_STEP_NODELIST': nodes,
                      'SLURM_STEP_TASKS_PER_NODE': per_node}.items():
    monkeypatch.setenv(name, value)
  resolver = distribute.resolve_cluster()
  port = 15000 + 4321
  assert resolver.cluster_spec().as_dict() == {
      'worker': [w.format(port=port, next=port + 1) for w in workers]}
  assert (resolver.task_type, resolver.task_id) == ('worker', 1)
  assert resolver.num_accelerators() == {'GPU': len([g for g in gpus.split(',') if g])}


@pytest.mark.parametrize('environ, message', [
    ({}, 'needs a cluster of workers, but TF_CONFIG is not set and this is no SLURM job step; '
         'set TF_CONFIG on every worker'),
    ({'SLURM_JOB_ID': '7'}, 'SLURM_JOB_ID is set but this is not a job step (run the command '
                            'with srun)'),
    ({'TF_CONFIG': '{cluster: 1}'}, 'TF_CONFIG is not JSON'),
    ({'TF_CONFIG': '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}'},
     'TF_CONFIG has no "cluster" with a "worker" list'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": '
                   '"worker", "index": 0}}'}, "TF_CONFIG names the job 'ps'"),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}'},
     'TF_CONFIG\'s "worker" must be a list of "host:port" strings'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", '
                   '"index": 2}}'}, 'TF_CONFIG\'s "task" must name this worker'),
    ({'SLURM_JOB_ID': '7', 'SLURM_PROCID': '0', 'SLURM_STEP_NUM_TASKS': '2',
      'SLURM_STEP_NODELIST': 'n1', 'SLURM_STEP_TASKS_PER_NODE': '2', 'CUDA_VISIBLE_DEVICES': '0'},
     'SLURM runs several tasks on one node, which would share its GPUs; start one task per '
     'node (srun --ntasks-per-node=1)'),
    ({'SLURM_PROCID': '0', 'SLURM_STEP_NUM_TASKS': '2'},
     'cannot read the SLURM job step: SLURM_STEP_NODELIST not found in environment.'),
])
def test_no_cluster_fails_with_one_line(monkeypatch, environ, message):
  clear_cluster(monkeypatch)
  for name, value in environ.items():
    monkeypatch.setenv(name, value)
  with pytest.raises(distribute.ClusterError) as error:
    distribute.resolve_cluster()
  assert message in str(error.value) and '\n' not in str(error.value)


# What TF 2.21 says when a peer is gone: a worker that stopped sending heartbeats (killed
# with SIGKILL), and the chief whose connection closed (seen by worker 1).
HEARTBEAT = ('Collective ops is aborted by: Error reported from /job:worker/task:1: The '
             'following tasks are unhealthy (stopped sending heartbeats):\n'
             '/job:worker/replica:0/task:1\nThe tasks have crashed.')
RESET = ('Collective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error '
         'information from remote target /job:worker/replica:0/task:0 while calling '
         '/tensorflow.WorkerService/CompleteInstance')


def test_a_lost_worker_is_named_with_its_address():
  addresses = ['127.0.0.1:2001', '127.0.0.1:2002']
  chief, other = distribute.Workers(addresses, 0), distribute.Workers(addresses, 1)
  assert chief.lost(tf.errors.UnavailableError(None, None, HEARTBEAT)) == (
      'worker 1 (127.0.0.1:2002): it stopped sending heartbeats')
  assert other.lost(tf.errors.UnavailableError(None, None, RESET)) == (
      'worker 0 (127.0.0.1:2001): its connection closed')
  assert chief.lost(tf.errors.InvalidArgumentError(None, None, 'a bad shape')) is None
  assert distribute.Workers().lost(tf.errors.UnavailableError(None, None, HEARTBEAT)) is None


def test_one_process_is_worker_zero_of_one():
  workers = distribute.Workers.of(None)
  assert (workers.rank, workers.count, workers.is_chief) == (0, 1, True)
  assert workers.sum(7) == 7 and workers.broadcast(3) == 3
