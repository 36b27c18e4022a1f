"""Runs the train command with a probe on the state its training loop starts from.

    python tests/scripts/resume_probe.py OUT [--cpus N] -- <dreamer.scripts.train flags>

Every Trainer.run of the process first writes what the loop is about to train with (after
any restore and seeding: the agent's variables, optimiser slots and iteration counts, target
heads, update, step and frame counters) as a checkpoint OUT/rank<k> for the worker of rank k,
beside OUT/rank<k>.json with how many replicas each variable has and whether they agree.
Tests read it with tf.train.load_checkpoint and compare it key by key with the checkpoint the
run resumed from. The checkpoint is written from the objects that loop.py checkpoints, under
the same names, but by a tf.train.Checkpoint of the probe's own, so that a checkpoint that
leaves some of them out differs from it. --cpus N splits the CPU into N logical devices first
(distribute: mirrored then has N replicas); it must happen before TensorFlow starts.
"""

import json
import pathlib
import sys

import numpy as np
import tensorflow as tf


def install(out):
  """Makes every loop.Trainer.run write the state it starts from to `out` first."""
  from dreamer.training import loop
  real = loop.Trainer.run

  def run(trainer):
    capture(trainer, pathlib.Path(out))
    yield from real(trainer)

  loop.Trainer.run = run


def capture(trainer, out):
  rank = trainer._workers.rank
  out.mkdir(parents=True, exist_ok=True)
  # A multi-worker save may run collectives: every worker writes here at the same point.
  tf.train.Checkpoint(agent=trainer.agent, global_step=trainer.global_step,
                      env_frames=trainer.env_frames).write(str(out / f'rank{rank}'))
  replicas = [getattr(v, 'values', (v,)) for v in trainer.agent.variables]
  facts = {
      'replicas': sorted({len(r) for r in replicas}),
      'replicas_equal': all(all(np.array_equal(c.numpy(), r[0].numpy()) for c in r)
                            for r in replicas),
      'variables': len(trainer.agent.variables)}
  (out / f'rank{rank}.json').write_text(json.dumps(facts))


def main(argv):
  out, argv = argv[0], argv[1:]
  if argv[0] == '--cpus':
    cpus, argv = int(argv[1]), argv[2:]
    physical = tf.config.list_physical_devices('CPU')
    tf.config.set_logical_device_configuration(
        physical[0], [tf.config.LogicalDeviceConfiguration()] * cpus)
  assert argv[0] == '--', argv
  from dreamer.scripts import train
  install(out)
  return train.cli(argv[1:])


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
