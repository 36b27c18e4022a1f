"""Data-parallel updates over several devices with tf.distribute.

Each replica computes the losses on its slice of the batch. Those are means over the
slice, so every replica divides its loss by the number of replicas: the sum of the
replicas' gradients is then the gradient of the mean over the global batch, and one update
equals the single-device update on the whole batch. Gradients are summed before clipping,
so the clipping sees the global gradient norm. Without a strategy every helper is a no-op.

With several worker processes (MultiWorkerMirroredStrategy) the replicas of all workers
share each update the same way; `Workers` is what one process knows of the others.
"""

import json
import os
import re
import shutil
import subprocess

import tensorflow as tf

KINDS = ('mirrored', 'multi_worker')
_JOBS = ('chief', 'worker')  # The task types that train; the chief, if any, comes first.
CLUSTER_HELP = ('set TF_CONFIG on every worker, e.g. TF_CONFIG=\'{"cluster": {"worker": '
                '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\', '
                'start the workers with srun in a SLURM allocation, or try it on this machine '
                'with scripts/launch_workers.py')


class ClusterError(ValueError):
  """The environment does not describe a cluster of workers; the message is one line."""


def make_strategy(kind, devices=None, cluster=None):
  """None for single-device training, else a tf.distribute strategy.

  Args:
    kind: None, 'mirrored' (all visible GPUs of this machine, or `devices`) or
      'multi_worker' (all local GPUs, or the CPU, of every worker of `cluster`).
    devices: device names for the mirrored strategy, e.g. ['/cpu:0', '/cpu:1'].
    cluster: the ClusterResolver of resolve_cluster(), for 'multi_worker'.
  """
  if not kind:
    return None
  if kind == 'mirrored':
    return tf.distribute.MirroredStrategy(devices)
  if kind == 'multi_worker':
    # Connects to the other workers and waits until every one of them has started. TF's
    # coordination service then sends heartbeats, so that a lost worker aborts the
    # collectives of the others within seconds instead of letting them wait forever.
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster)
  raise ValueError(f"unknown distribution strategy {kind!r}; known: {', '.join(KINDS)}")


def resolve_cluster():
  """The workers of distribute: multi_worker, from TF_CONFIG or else a SLURM job step.

  Call it before TensorFlow touches a GPU: SLURM's resolver may pick this task's GPUs by
  setting CUDA_VISIBLE_DEVICES. Raises ClusterError (one line) when neither describes a
  cluster.
  """
  environ = os.environ  # TF's resolvers read it, too.
  if 'TF_CONFIG' in environ:
    _check_tf_config(environ['TF_CONFIG'])
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()
  if 'SLURM_PROCID' in environ and 'SLURM_STEP_NUM_TASKS' in environ:
    return _slurm_resolver(environ)
  where = ('SLURM_JOB_ID is set but this is not a job step (run the command with srun)'
           if 'SLURM_JOB_ID' in environ else 'TF_CONFIG is not set and this is no SLURM job step')
  raise ClusterError(f'distribute: multi_worker needs a cluster of workers, but {where}; '
                     f'{CLUSTER_HELP}')


def _check_tf_config(text):
  """One-line errors for what TFConfigClusterResolver would take or fail on obscurely."""
  try:
    spec = json.loads(text)
  except json.JSONDecodeError as e:
    raise ClusterError(f'TF_CONFIG is not JSON ({e}); {CLUSTER_HELP}') from None
  cluster = spec.get('cluster') if isinstance(spec, dict) else None
  if not isinstance(cluster, dict) or not any(cluster.get(job) for job in _JOBS):
    raise ClusterError(f'TF_CONFIG has no "cluster" with a "worker" list; {CLUSTER_HELP}')
  other = sorted(set(cluster) - set(_JOBS))
  if other:
    raise ClusterError(f"TF_CONFIG names the job {other[0]!r}; distribute: multi_worker has "
                       'only "worker" tasks (and at most one "chief"), which all train')
  for job in _JOBS:
    addresses = cluster.get(job, [])
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and re.fullmatch(r'\S+:\d+', a) for a in addresses):
      raise ClusterError(f'TF_CONFIG\'s "{job}" must be a list of "host:port" strings, '
                         f'got {addresses!r}')
  if len(cluster.get('chief', [])) > 1:
    raise ClusterError('TF_CONFIG has more than one "chief"; name one, or none (worker 0 '
                       'is then the chief)')
  task = spec.get('task')
  if not isinstance(task, dict) or task.get('type') not in cluster or not isinstance(
      task.get('index'), int) or not 0 <= task['index'] < len(cluster[task['type']]):
    jobs = ', '.join(f'{job}: {len(cluster[job])}' for job in _JOBS if job in cluster)
    raise ClusterError(f'TF_CONFIG\'s "task" must name this worker as {{"type": "worker", '
                       f'"index": i}} within the cluster ({jobs}), got {task!r}')


def _slurm_resolver(environ):
  """One worker per SLURM task; ports from the job id, so that jobs sharing a node differ.

  TF's SlurmClusterResolver lists a task only with a GPU of its own (a CPU-only node would
  get no workers), so it only reads the hosts and this task's index here; each worker
  then uses every GPU it sees, or its CPU.
  """
  port = 15000 + int(re.sub(r'\D', '', environ.get('SLURM_JOB_ID', '')) or 0) % 20000
  try:
    slurm = tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=port, gpus_per_node=4096, gpus_per_task=1, auto_set_gpu=False)
    spec = slurm.cluster_spec()  # Also sets task_type and task_id.
  except (RuntimeError, ValueError, KeyError) as e:
    lines = str(e).strip().splitlines() or [type(e).__name__]
    raise ClusterError(f'cannot read the SLURM job step: {lines[0]}') from None
  gpus = _visible_gpus(environ)
  hosts = [address.rsplit(':', 1)[0] for address in spec.as_dict().get('worker', [])]
  if gpus and len(set(hosts)) < len(hosts):
    raise ClusterError('SLURM runs several tasks on one node, which would share its GPUs; '
                       'start one task per node (srun --ntasks-per-node=1): each uses all '
                       'GPUs of its node')
  return tf.distribute.cluster_resolver.SimpleClusterResolver(
      spec, task_type=slurm.task_type, task_id=slurm.task_id, num_accelerators={'GPU': gpus},
      rpc_layer='grpc')


def _visible_gpus(environ):
  """GPUs this task may use, without initialising TensorFlow's GPU runtime."""
  if 'CUDA_VISIBLE_DEVICES' in environ:
    return len([d for d in environ['CUDA_VISIBLE_DEVICES'].split(',') if d.strip()])
  if shutil.which('nvidia-smi') is None:
    return 0
  try:
    output = subprocess.run(['nvidia-smi', '--list-gpus'], capture_output=True, text=True,
                            timeout=60, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return 0
  return sum(line.startswith('GPU ') for line in output.splitlines())


class Workers:
  """This process's place among the worker processes that share every update.

  Under MultiWorkerMirroredStrategy, worker 0 (the chief) owns the run's files and decides
  what the cluster does; `sum` and `broadcast` carry the few numbers the others need. Both
  are collectives: every worker must call them at the same point, in the same order. A
  single process is worker 0 of 1, where they return their argument.

  Args:
    addresses: 'host:port' of every worker, the chief first.
    rank: this worker's index into `addresses`.
    sum_fn: fn(int64 scalar tensor) -> the sum over the workers; None for one worker.
    chief_job: whether TF calls the first worker /job:chief (else it is /job:worker/task:0).
  """

  def __init__(self, addresses=('localhost',), rank=0, sum_fn=None, chief_job=False):
    self.addresses = list(addresses)
    self.rank = rank
    self._sum = sum_fn
    self._chief_job = chief_job

  @classmethod
  def of(cls, strategy):
    """The workers of a strategy (one, for a strategy without a cluster, or None)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None:
      return cls()
    spec = resolver.cluster_spec().as_dict()
    chiefs = list(spec.get('chief', []))
    addresses = chiefs + list(spec.get('worker', []))
    rank = int(resolver.task_id) + (len(chiefs) if resolver.task_type == 'worker' else 0)
    local = len(strategy.extended.worker_devices)

    def replica(value):
      # One contribution per worker: from its first local replica only.
      context = tf.distribute.get_replica_context()
      first = tf.equal(context.replica_id_in_sync_group % local, 0)
      return context.all_reduce(
          tf.distribute.ReduceOp.SUM, tf.where(first, value, tf.zeros_like(value)))

    sum_fn = tf.function(lambda value: strategy.experimental_local_results(
        strategy.run(replica, args=(value,)))[0])
    return cls(addresses, rank, sum_fn if len(addresses) > 1 else None, bool(chiefs))

  @property
  def count(self):
    return len(self.addresses)

  @property
  def is_chief(self):
    return self.rank == 0

  def name(self, rank=None):
    rank = self.rank if rank is None else rank
    return f'worker {rank}' if self.count == 1 else f'worker {rank} ({self.addresses[rank]})'

  def sum(self, value):
    """The sum of every worker's integer `value`."""
    if self._sum is None:
      return int(value)
    return int(self._sum(tf.constant(value, tf.int64)).numpy())

  def broadcast(self, value):
    """The chief's integer `value`, on every worker."""
    return self.sum(value if self.is_chief else 0)

  def barrier(self):
    """Returns when every worker has called it."""
    self.sum(0)

  def lost(self, error):
    """What a TF error says about lost workers, e.g. 'worker 1 (host:port): it stopped
    sending heartbeats'; None for an error of this worker's own."""
    if self.count == 1 or not isinstance(error, tf.errors.OpError):
      return None
    text = error.message or ''
    if not isinstance(error, tf.errors.UnavailableError) and 'aborted' not in text:
      return None
    ranks = []
    for job, task in re.findall(r'/job:(\w+)/replica:\d+/task:(\d+)', text):
      rank = int(task) + (1 if job == 'worker' and self._chief_job else 0)
      if rank != self.rank and rank < self.count and rank not in ranks:
        ranks.append(rank)
    names = ' and '.join(self.name(rank) for rank in sorted(ranks)) or 'another worker'
    if 'heartbeat' in text:
      why = 'it stopped sending heartbeats'
    elif re.search(r'connection|socket|connect to', text, re.IGNORECASE):
      why = 'its connection closed'
    else:
      why = 'the collective ops were aborted'
    return f'{names}: {why}'


def num_replicas():
  """Replicas that share the current update; 1 without a strategy."""
  return tf.distribute.get_strategy().num_replicas_in_sync


def per_replica_loss(loss):
  """The share of one replica's mean loss in the mean over the global batch."""
  count = num_replicas()
  return loss / count if count > 1 else loss


def sum_gradients(grads):
  """Sums gradients over the replicas of the current update (identity on one device)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return grads
  return context.all_reduce(tf.distribute.ReduceOp.SUM, grads)


def run(strategy, fn, data):
  """fn(data) on every replica; returns the replica mean of its dict of scalars."""
  if strategy is None:
    return fn(data)
  values = strategy.run(fn, args=(data,))
  return tf.nest.map_structure(
      lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None), values)


def per_replica_batch(strategy, batch):
  """Batch size each replica gets from a global batch size."""
  count = strategy.num_replicas_in_sync if strategy else 1
  if batch % count:
    raise ValueError(f'the batch size {batch} does not split evenly over {count} replicas')
  return batch // count


def split_batch(strategy, batch):
  """A host batch of [B, ...] tensors -> per-replica slices; replica i gets the i-th slice."""
  if strategy is None:
    return batch
  size = per_replica_batch(strategy, len(next(iter(batch.values()))))

  def value(context):
    start = context.replica_id_in_sync_group * size
    return {k: v[start:start + size] for k, v in batch.items()}

  return strategy.experimental_distribute_values_from_function(value)


def distribute_dataset(strategy, make_dataset, batch):
  """Feeds the replicas from input pipelines that each yield per-replica batches.

  Args:
    make_dataset: fn(batch, pipeline_id) -> tf.data.Dataset of [batch, ...] elements;
      pipeline_id differs between workers so that they can seed differently.
    batch: the global batch size B.
  """
  size = per_replica_batch(strategy, batch)
  return strategy.distribute_datasets_from_function(
      lambda context: make_dataset(size, context.input_pipeline_id))
