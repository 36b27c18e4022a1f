"""One worker of a MultiWorkerMirroredStrategy cluster on 127.0.0.1 (TF_CONFIG from the
launcher): a few updates on fixed global batches, each worker training on its share, and
on the chief the same updates by one process on the whole batches.

    python multi_worker_worker.py OUT_DIR

writes OUT_DIR/worker<k>.npz (this worker's variables after the updates, and `loss`, the
model loss of each update) and, on the chief, OUT_DIR/single.npz. Then a second agent,
from the same initial values, makes the same updates with the all-reduce of the replicas'
gradients skipped, so that each applies the gradient of its own share only; it writes
OUT_DIR/broken<k>.npz. One launch serves both tests: starting a cluster is the slow part.

Adam's epsilon is 1 and every learning rate 1 here (LINEAR), so that Adam's step is nearly
linear in the clipped gradient g (0.03 g on the first update). With the default epsilon of
1e-7 the step is about lr sign(g), which spoils this comparison twice: (1) it is nearly
blind to the gradient's scale, so clipping by the wrong norm would hardly show; (2) where g
is near zero it turns the float noise of a different summation order into a step of up to
lr either way, and the next update's gradients respond to that real change everywhere. The
suite failed once so (19.5 % of the weights off by more than 1e-5 after 3 updates); one
process against two mirrored replicas showed it in 4 of 70 initial weights, up to 42 %.
Linear steps keep the noise small: over 40 of those initial weights at most 0.006 % of the
weights differed by more than 1e-7 (the largest by 8.6e-6), while a replica stepping along
its own half's gradient moved 86-91 % of them by more. The initial weights are seeded, so
that a failure repeats; this cluster, so seeded: none and 90 %.
"""

import pathlib
import sys

import numpy as np
import tensorflow as tf

from dreamer import config as config_lib
from dreamer.agents import distribute
from dreamer.envs import registry
from dreamer.scripts import build
from tests.agents.fixed_update import ACT, OBS, PARAMS, make_batch

LINEAR = dict(PARAMS, optimizer_epsilon=1.0, model_lr=1.0, value_lr=1.0, action_lr=1.0)

UPDATES = 3


def train(agent, strategy):
  losses = []
  for update in range(UPDATES):
    data = make_batch(agent.action_size, seed=update)
    if strategy is not None:
      # Replica i (worker i here: one CPU each) gets the i-th slice of the global batch.
      data = distribute.split_batch(strategy, data)
    losses.append(float(agent.train(data)['loss/model']))
  return losses


def save(path, agent, losses):
  np.savez(path, loss=losses, **{f'v{i}': v.numpy() for i, v in enumerate(agent.variables)})


def main(out):
  out = pathlib.Path(out)
  config = config_lib.build_config(
      dict(LINEAR, distribute='multi_worker'), registry.state_components_checked)
  strategy = build.strategy(config)  # The cluster of TF_CONFIG.
  workers = distribute.Workers.of(strategy)
  tf.random.set_seed(0)  # So that a failure repeats.
  # Every worker starts from the chief's initial values, which the strategy broadcasts.
  agent = build.agent(config, OBS, ACT, strategy)
  initial = [v.numpy() for v in agent.variables]
  broken = build.agent(config, OBS, ACT, strategy)
  for source, target in zip(initial, broken.variables):
    target.assign(source)
  save(out / f'worker{workers.rank}.npz', agent, train(agent, strategy))
  if workers.is_chief:
    single = build.agent(
        config_lib.build_config(LINEAR, registry.state_components_checked), OBS, ACT)
    for source, target in zip(initial, single.variables):
      target.assign(source)
    save(out / 'single.npz', single, train(single, None))
  # The broken agent's train step is traced now, after `agent`'s, with the all-reduce gone.
  real = distribute.sum_gradients
  distribute.sum_gradients = lambda grads: grads
  try:
    save(out / f'broken{workers.rank}.npz', broken, train(broken, strategy))
  finally:
    distribute.sum_gradients = real
  print(f'worker {workers.rank} of {workers.count}: {UPDATES} updates, '
        f'{strategy.num_replicas_in_sync} replicas')


if __name__ == '__main__':
  sys.exit(main(sys.argv[1]))
