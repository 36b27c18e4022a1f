"""A learning-curve run from 64x64 pixels with the paper's algorithm and update ratio.

    python scripts/curve.py --size cpu --task cartpole_balance --frames 100000
    python scripts/curve.py --size paper --task walker_walk --frames 1000000 --runs 3

`--size paper` is the published config (the `dreamer` preset: B = T = 50, full networks);
`--size cpu` adds the `cpu` preset (B = 16, half-width networks) for 2-core machines. Both
train 100 updates per collected 1000-frame episode, one update per 10 env frames, and
evaluate once per 10 collections (10k frames), as the paper does. The run stops after the
epoch that reaches `--frames` env frames (the 5 random seed episodes included). Draw it
with scripts/plot.py; the run's console ends with its first and last test return.
"""

import argparse
import json
import math
import sys

from dreamer.scripts import train

SIZES = {'cpu': ['dreamer', 'cpu'], 'paper': ['dreamer']}
EPISODE_FRAMES = 1000  # DeepMind Control: 1000 frames, 500 agent steps at action repeat 2.


def params_for(size, task, frames, extra=None):
  """The training params of a curve run that stops once `frames` env frames are reached."""
  params = dict({'defaults': SIZES[size], 'tasks': [task]}, **(extra or {}))
  config = train.build_config(params)
  batch = config.batch_shape[0]
  updates_per_episode = config.collect_every // batch
  seed_frames = config.num_seed_episodes * EPISODE_FRAMES
  episodes = max(1, math.ceil((frames - seed_frames) / EPISODE_FRAMES))
  train_steps = episodes * updates_per_episode * batch
  epochs = math.ceil(train_steps / config.train_steps)
  params['max_steps'] = epochs * (config.train_steps + config.test_steps)
  return params


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--size', choices=sorted(SIZES), default='cpu')
  parser.add_argument('--task', default='cartpole_balance', help='a DeepMind Control task')
  parser.add_argument('--frames', type=int, default=100000, help='env frames to train for')
  parser.add_argument('--logdir', default=None, help='default: ./logdir/curve_<size>_<task>')
  parser.add_argument('--runs', type=int, default=1, help='seeds, as run slots 00001, ...')
  parser.add_argument('--params', default='{}', help='further YAML overrides')
  args = parser.parse_args(argv)
  if args.frames <= 0 or args.runs <= 0:
    parser.error('--frames and --runs must be positive')
  return args


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  from dreamer import config as config_lib
  from dreamer.envs import registry
  try:
    if registry.get_task(args.task).family != 'dmc':
      raise config_lib.ConfigError(f'--task must be a DeepMind Control task, got {args.task}')
    params = params_for(args.size, args.task, args.frames, config_lib.parse_params(args.params))
  except (config_lib.ConfigError, registry.UnknownTaskError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  logdir = args.logdir or f'./logdir/curve_{args.size}_{args.task}'
  flat = json.dumps(params)  # JSON is YAML 1.2, which --params reads.
  print(f'python -m dreamer.scripts.train --logdir {logdir} --num_runs {args.runs} '
        f"--params '{flat}'", flush=True)
  return train.cli(['--logdir', logdir, '--num_runs', str(args.runs), '--params', flat])


if __name__ == '__main__':
  sys.exit(main())
