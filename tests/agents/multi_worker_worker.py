"""One worker of a MultiWorkerMirroredStrategy cluster on 127.0.0.1 (TF_CONFIG from the
launcher): a few updates on fixed global batches, each worker training on its share, and
on the chief the same updates by one process on the whole batches.

    python multi_worker_worker.py OUT_DIR

writes OUT_DIR/worker<k>.npz (this worker's variables after the updates, and `loss`, the
model loss of each update) and, on the chief, OUT_DIR/single.npz. With
BREAK_AGGREGATION=1 the replicas skip the all-reduce of their gradients, so each applies
the gradient of its own share only: the test checks that this shows.
"""

import os
import pathlib
import sys

import numpy as np

from dreamer import config as config_lib
from dreamer.agents import distribute
from dreamer.envs import registry
from dreamer.scripts import build
from tests.agents.fixed_update import ACT, OBS, PARAMS, make_batch

UPDATES = 3


def main(out):
  if os.environ.get('BREAK_AGGREGATION') == '1':
    distribute.sum_gradients = lambda grads: grads
  config = config_lib.build_config(
      dict(PARAMS, distribute='multi_worker'), registry.state_components_checked)
  strategy = build.strategy(config)  # The cluster of TF_CONFIG.
  workers = distribute.Workers.of(strategy)
  # Every worker starts from the chief's initial values, which the strategy broadcasts.
  agent = build.agent(config, OBS, ACT, strategy)
  single = None
  if workers.is_chief:
    single = build.agent(
        config_lib.build_config(PARAMS, registry.state_components_checked), OBS, ACT)
    for source, target in zip(agent.variables, single.variables):
      target.assign(source.numpy())
  losses, single_losses = [], []
  for update in range(UPDATES):
    data = make_batch(agent.action_size, seed=update)
    # Replica i (worker i here: one CPU each) gets the i-th slice of the global batch.
    metrics = agent.train(distribute.split_batch(strategy, data))
    losses.append(float(metrics['loss/model']))
    if single is not None:
      single_losses.append(float(single.train(data)['loss/model']))
  out = pathlib.Path(out)
  np.savez(out / f'worker{workers.rank}.npz', loss=losses,
           **{f'v{i}': v.numpy() for i, v in enumerate(agent.variables)})
  if single is not None:
    np.savez(out / 'single.npz', loss=single_losses,
             **{f'v{i}': v.numpy() for i, v in enumerate(single.variables)})
  print(f'worker {workers.rank} of {workers.count}: {UPDATES} updates, '
        f'{strategy.num_replicas_in_sync} replicas')


if __name__ == '__main__':
  sys.exit(main(sys.argv[1]))
