"""Evaluates a trained run: python -m dreamer.scripts.evaluate --logdir RUN_DIR.

Loads the run's config.yaml and its latest (or the given) checkpoint, builds the env and the
agent with the factories training uses, and runs the test policy (policy mode, the run's test
noise) without training. TensorFlow is imported only inside `evaluate`, so that spawned env
workers never load it.
"""

import argparse
import pathlib
import re
import sys

import numpy as np

from dreamer import config as config_lib
from dreamer.envs import registry
from dreamer.scripts import quiet_tensorflow
from dreamer.training import summaries


class EvaluateError(ValueError):
  """A run that cannot be evaluated, explained in one line."""


def load_config(run_dir):
  run_dir = pathlib.Path(run_dir)
  if not run_dir.is_dir():
    raise EvaluateError(f"run directory '{run_dir}' does not exist")
  path = run_dir / 'config.yaml'
  if not path.exists():
    runs = sorted(p.name for p in run_dir.glob('[0-9]' * 5) if (p / 'config.yaml').exists())
    hint = f'; it holds runs, pass one of them, e.g. {run_dir / runs[0]}' if runs else ''
    raise EvaluateError(f"'{run_dir}' has no config.yaml{hint}")
  stored = config_lib.from_yaml(path.read_text(), path)
  # Checked again, and keys added since the run started get their defaults.
  return config_lib.build_config(dict(stored), registry.state_components_checked)


def checkpoint_steps(run_dir):
  """Global steps of the checkpoints in the run directory, ascending."""
  steps = []
  for path in pathlib.Path(run_dir).glob('model.ckpt-*.index'):
    match = re.fullmatch(r'model\.ckpt-(\d+)\.index', path.name)
    if match:
      steps.append(int(match.group(1)))
  return sorted(steps)


def checkpoint_path(run_dir, step=None):
  steps = checkpoint_steps(run_dir)
  if not steps:
    raise EvaluateError(f"no checkpoint (model.ckpt-*) in '{run_dir}'; train the run first")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise EvaluateError(f"no checkpoint at step {step} in '{run_dir}'; available steps: "
                        + ', '.join(str(s) for s in steps))
  return pathlib.Path(run_dir) / f'model.ckpt-{step}'


def evaluate(run_dir, episodes=1, video=None, step=None, task=None, log=print):
  """Runs `episodes` test episodes; returns their returns. Writes `video` if given."""
  run_dir = pathlib.Path(run_dir)
  config = load_config(run_dir)
  path = checkpoint_path(run_dir, step)
  if video:
    summaries.check_video_path(video)
  task = task or config.tasks[0]
  if task not in config.tasks:
    raise EvaluateError(f"task '{task}' is not one of the run's tasks: {', '.join(config.tasks)}")
  tf = quiet_tensorflow.import_tensorflow()
  from dreamer.scripts import build
  from dreamer.training import collect

  spec = config_lib.collect_specs(config, 'test')[0]
  tf.random.set_seed(config.seed)
  envs = build.batch_env(config, task, 'test', 1)
  try:
    if video and 'image' not in envs.obs_space:
      raise EvaluateError(f"task '{task}' has no image observation; cannot write a video")
    agent = build.agent(config, envs.obs_space, envs.act_space)
    frames = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(agent=agent, env_frames=frames)
    try:
      checkpoint.restore(str(path)).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise EvaluateError(f"{path.name} does not fit the run's config.yaml ({first})") from None
    log(f'Evaluating {path.name} ({int(frames.numpy())} env frames of training) on {task} '
        f"for {episodes} episode{'s' if episodes != 1 else ''}.")
    results, images = [], []

    def on_episode(collection, episode):
      score, length = float(episode['reward'].sum()), len(episode['reward']) - 1
      results.append(score)
      log(f'Episode {len(results)}: return {score:.2f}, length {length}')
      if video:
        images.append(episode['image'])

    collection = collect.Collection(
        'evaluate', envs, on_episode, task=task, directory=None, mode='test',
        planner=spec['planner'], num_episodes=episodes, num_steps=0,
        noise_type=spec['action_noise_type'], noise_scale=spec['action_noise_scale'],
        action_repeat=build.action_repeat(config, task))

    def policy(obs, state, reset, scales):
      action, state = agent.policy(obs, state, reset, scales, spec['planner'],
                                   spec['action_noise_type'])
      return action.numpy(), state

    collection.run(policy, collection.noise(0))
  finally:
    envs.close()
  results = results[:episodes]
  log(f'Mean return {np.mean(results):.2f} ± {np.std(results):.2f} (std) over '
      f'{len(results)} episodes.')
  if video:
    clip = np.concatenate(images)
    summaries.write_video(video, clip)
    log(f'Wrote {video} ({len(clip)} frames).')
  return results


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog='python -m dreamer.scripts.evaluate', description=__doc__.split('\n')[0])
  parser.add_argument('--logdir', required=True, help='run directory, e.g. ./logdir/x/00001')
  parser.add_argument('--episodes', type=int, default=1, help='episodes to run (default 1)')
  parser.add_argument('--video', default=None, help='write the episodes to this .gif or .mp4')
  parser.add_argument('--checkpoint', type=int, default=None,
                      help='global step of the checkpoint (default: the latest)')
  parser.add_argument('--task', default=None, help="one of the run's tasks (default: the first)")
  args = parser.parse_args(argv)
  if args.episodes < 1:
    parser.error('--episodes must be at least 1')
  return args


def cli(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  errors = (EvaluateError, config_lib.ConfigError, registry.UnknownTaskError,
            summaries.VideoError, ImportError)
  try:
    from dreamer.scripts import build
    errors += (build.BuildError,)
    evaluate(pathlib.Path(args.logdir).expanduser(), args.episodes, args.video,
             args.checkpoint, args.task)
  except errors as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print('Interrupted.', file=sys.stderr)
    return 130
  return 0


if __name__ == '__main__':
  sys.exit(cli())
