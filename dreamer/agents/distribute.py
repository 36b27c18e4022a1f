"""Data-parallel updates over several devices with tf.distribute.

Each replica computes the losses on its slice of the batch. Those are means over the
slice, so every replica divides its loss by the number of replicas: the sum of the
replicas' gradients is then the gradient of the mean over the global batch, and one update
equals the single-device update on the whole batch. Gradients are summed before clipping,
so the clipping sees the global gradient norm. Without a strategy every helper is a no-op.
"""

import tensorflow as tf

KINDS = ('mirrored',)


def make_strategy(kind, devices=None):
  """None for single-device training, else a tf.distribute strategy.

  Args:
    kind: None or 'mirrored' (all visible GPUs of this machine, or `devices`).
    devices: device names for the mirrored strategy, e.g. ['/cpu:0', '/cpu:1'].
  """
  if not kind:
    return None
  if kind == 'mirrored':
    return tf.distribute.MirroredStrategy(devices)
  raise ValueError(f"unknown distribution strategy {kind!r}; known: {', '.join(KINDS)}")


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
