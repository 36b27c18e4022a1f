"""Runs a learning test's config for several seeds and records what the test cannot show.

    python scripts/learning_study.py toy --seeds 0 1 2 --logdir /tmp/study/toy
    python scripts/learning_study.py toy --seeds 0 1 2 --params '{optimizer_epsilon: 1e-4}'
    python scripts/learning_study.py quickstart --seeds 0 1 2 --cut   # imagination gradient cut
    python scripts/learning_study.py swingup --seeds 0 1 2 --cut
    python scripts/learning_study.py swingup_test --seeds 0 1 2 --cut
    python scripts/learning_study.py quickstart --seeds 0 --original-bootstrap   # SPEC 5.7 quirk

The configs are the toy learning test's (tests/agents/test_learning.py), the quickstart
preset's (cheetah_run), the paper's algorithm with that preset on cartpole_swingup at
action repeat 8, and the swingup learning test's (the same with a value target head, 1600
updates; `make train` runs it), with `--params` on top. After every evaluation, one JSON
line per run goes to <logdir>/<seed>/study.jsonl:

- Adam per objective: the median of sqrt(v_hat) (the gradient scale Adam divides by) and
  `step_kept`, the mean of sqrt(v_hat) / (sqrt(v_hat) + epsilon): how much of Adam's
  normalised step epsilon leaves (1: epsilon does not matter, 0.1: steps 10x smaller).
- On the newest training episodes: the value head's prediction, the discounted return the
  episode actually got from there (truncated at its end), and the imagined lambda-targets
  from the same posteriors, with the value at the first and the last imagined step; for
  state-vector tasks, the largest magnitude of each decoded observation in the real
  episode and in the states imagined from it (imagination leaving the data); the reward
  head's mean absolute error; the policy's mean and standard deviation of its sampled
  actions; `actor_push_reward` and `actor_push_value`, the gradient of the actor's
  objective on those imagined trajectories with respect to the action head's mean bias,
  split into what the imagined rewards and what the values (the bootstrap) contribute
  (> 0: towards +1; what drives the policy to a bound), and with `action_beta` the
  entropy bonus's part, `actor_push_entropy`; on toy_reach, the slope of the
  predicted value over the dot's position (positive when the value ranks states the
  right way).

At the end it prints, per seed, the mean of the random seed episodes (5, or 20 for swingup),
of the last 5 sampled training episodes, of the last 3 test episodes, and the best test
return.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
# toy: the learning test's (tests/agents/test_learning.py); quickstart: the quickstart
# preset as it is (cheetah_run); swingup: the paper's algorithm with the quickstart on
# cartpole_swingup at PlaNet's action repeat for cartpole, 8 (make train's until session 27);
# swingup_test: the real-task learning test's, which `make train` runs (docs/results.md §2).
QUICKSTART = {'defaults': ['dreamer', 'cpu', 'proprio', 'quickstart']}
CONFIGS = {'toy': 'TOY', 'quickstart': QUICKSTART,
           'swingup': dict(QUICKSTART, tasks=['cartpole_swingup'], action_repeat=8),
           'swingup_test': 'SWINGUP'}


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('config', choices=sorted(CONFIGS))
  parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  parser.add_argument('--params', default='{}', help='YAML overrides on top of the config')
  parser.add_argument('--logdir', default=None, help='default: a fresh temporary directory')
  parser.add_argument('--cut', action='store_true',
                      help='cut the gradient of everything imagined (as LEARN_CUT=1)')
  parser.add_argument('--original-bootstrap', action='store_true',
                      help="the TF1 original's lambda-return bootstrap, the value of the "
                      'second-to-last imagined state (SPEC 5.7 quirk), instead of the last')
  parser.add_argument('--episodes', type=int, default=3,
                      help='newest training episodes the diagnostics look at')
  return parser.parse_args(argv)


def adam_state(optimizer):
  """Median sqrt(v_hat) and the share of Adam's step that epsilon leaves, over all params."""
  inner = getattr(optimizer.opt, 'inner_optimizer', optimizer.opt)
  steps = int(inner.iterations.numpy())
  if not steps:
    return {}
  beta, epsilon = float(inner.beta_2), float(inner.epsilon)
  scale = np.concatenate([np.sqrt(v.numpy().ravel() / (1 - beta ** steps))
                          for v in inner._velocities])
  return {'median_grad_scale': float(np.median(scale)),
          'step_kept': float(np.mean(scale / (scale + epsilon))),
          'epsilon_dominated': float(np.mean(scale < epsilon))}


def diagnose(agent, directory, count, discount, lambda_, horizon):
  """Value, return, lambda-target, reward-error and policy statistics on real episodes."""
  import tensorflow as tf
  from dreamer import ops
  from dreamer.agents import actor_critic as ac_lib
  from dreamer.data import episodes as episodes_lib
  wm, ac = agent.world_model, agent.actor_critic
  paths = episodes_lib.list_episodes(directory)[-count:]
  keys = ('image',) if 'image' in wm.heads else tuple(wm.encoder.keys)
  stats = []
  for path in paths:
    episode = episodes_lib.process_episode(episodes_lib.load_episode(path))
    data = {k: tf.constant(episode[k][None]) for k in keys + ('action',)}
    data = wm.preprocess(data, noise=False)
    post, _ = wm.rssm.observe(wm.embed(data), data['action'])
    feat = wm.rssm.features(post)
    reward = episode['reward']
    returns = np.zeros_like(reward)
    running = 0.0
    for t in reversed(range(1, len(reward))):  # Entry t's reward follows the action at t.
      running = reward[t] + discount * running
      returns[t - 1] = running
    row = {'reward_error': float(np.mean(np.abs(
        wm.heads['reward'](feat).mode().numpy()[0, 1:] - reward[1:])))}
    samples = ac.actor(feat).sample(100).numpy()
    row['policy_mean'] = float(np.mean(samples))
    row['policy_std'] = float(np.mean(np.std(samples, 0)))
    if ac.value is not None:
      value = ac.value(feat).mode().numpy()[0]
      row['value'] = float(np.mean(value[:-1]))
      row['real_return'] = float(np.mean(returns[:-1]))
      with tf.GradientTape(persistent=True) as tape:
        states = ac_lib.imagine(wm.rssm, ac.actor, post, horizon)
        imagined = wm.rssm.features(states)
        rewards = wm.heads['reward'](imagined).mode()
        values = ac.value(imagined).mode()
        # The actor's objective is linear in the imagined rewards and values: split it
        # into the part the rewards earn and the part the values (the bootstrap) add.
        objectives = {'reward': ac.objective(rewards, tf.zeros_like(values)),
                      'value': ac.objective(tf.zeros_like(rewards), values)}
        if ac.action_beta:  # The entropy bonus's own part.
          objectives['entropy'] = ac.objective(
              ac.entropy_bonus(ac.actor, imagined), tf.zeros_like(values))
      # Where each part pushes the policy's mean action (the gradient of the objective
      # with respect to the action head's mean bias; > 0 towards +1).
      bias = ac.actor._mean.bias
      for name, objective in objectives.items():
        grad = tape.gradient(objective, bias)  # None where the gradient is cut (--cut).
        row[f'actor_push_{name}'] = float(tf.reduce_mean(grad)) if grad is not None else 0.0
      targets = ops.lambda_return(
          rewards[:, :-1], values[:, :-1], discount * tf.ones_like(rewards[:, :-1]),
          values[:, -1], lambda_, axis=1)
      row['lambda_target'] = float(tf.reduce_mean(targets[:, 0]).numpy())
      row['imagined_reward'] = float(tf.reduce_mean(rewards).numpy())
      # A value that grows along imagined trajectories whose rewards do not is extrapolating.
      row['imagined_value_first'] = float(tf.reduce_mean(values[:, 0]).numpy())
      row['imagined_value_last'] = float(tf.reduce_mean(values[:, -1]).numpy())
      for key in keys:  # State-vector tasks: do imagined states leave the real ones' range?
        if key in wm.heads and key != 'image':
          row[f'{key}_abs_max'] = float(np.max(np.abs(episode[key])))
          decoded = wm.heads[key](imagined).mode().numpy()
          row[f'imagined_{key}_abs_max'] = float(np.max(np.abs(decoded)))
      if 'position' in episode:  # toy_reach: does the value rank states by the dot's x?
        x = episode['position'][:-1, 0]
        row['value_slope_x'] = float(np.polyfit(x, value[:-1], 1)[0]) if np.ptp(x) else 0.0
    stats.append(row)
  return {k: float(np.mean([s[k] for s in stats])) for k in stats[0]} if stats else {}


def original_returns(self, reward, value, discount, cfg):
  """ActorCritic._returns as the TF1 original: after truncating to H - 1 steps, it
  bootstraps from the last kept value, v_{H-2}, not from v_{H-1}."""
  from dreamer import ops
  if not cfg['bootstrap']:
    return ops.lambda_return(reward, value, discount, None, cfg['lambda_'], axis=1), discount
  reward, value, discount = reward[:, :-1], value[:, :-1], discount[:, :-1]
  return ops.lambda_return(reward, value, discount, value[:, -1], cfg['lambda_'], axis=1), discount


def study(config_name, seed, params, run_dir, cut, count, original_bootstrap=False):
  from dreamer.scripts import quiet_tensorflow
  tf = quiet_tensorflow.import_tensorflow()
  from dreamer.agents import actor_critic
  from dreamer.scripts import build
  from dreamer.scripts import train
  sys.path.insert(0, str(ROOT))
  from tests.agents import test_learning
  base = CONFIGS[config_name]
  base = dict(getattr(test_learning, base) if isinstance(base, str) else base, seed=seed,
              **params)
  agents = []
  real_agent, real_imagine = build.agent, actor_critic.imagine
  real_returns = actor_critic.ActorCritic._returns

  def capture(*args, **kwargs):
    agents.append(real_agent(*args, **kwargs))
    return agents[-1]

  build.agent = capture
  if original_bootstrap:
    actor_critic.ActorCritic._returns = original_returns
  if cut:
    actor_critic.imagine = lambda *a, **k: tf.nest.map_structure(
        tf.stop_gradient, real_imagine(*a, **k))
  config = train.build_config(base)
  lines = open(run_dir / 'study.jsonl', 'a') if run_dir.exists() else None
  try:
    last = None
    for score in train.run(run_dir, base):
      agent = agents[-1]
      updates = int(agent.updates.numpy())
      if updates == last:  # A test phase yields after each of its iterations.
        continue
      last = updates
      row = {'seed': seed, 'updates': updates, 'test_score': score}
      for name, optimizer in agent.optimizers.items():
        for key, value in adam_state(optimizer).items():
          row[f'{name}/{key}'] = value
      if agent.actor_critic is not None:
        row.update(diagnose(agent, run_dir / 'train_episodes', count, config.value_discount,
                            config.value_lambda, config.imagination_horizon))
      if lines is None:
        lines = open(run_dir / 'study.jsonl', 'a')
      lines.write(json.dumps(row) + '\n')
      lines.flush()
  finally:
    build.agent, actor_critic.imagine = real_agent, real_imagine
    actor_critic.ActorCritic._returns = real_returns
    if lines:
      lines.close()
  records = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
  train_returns = [r['train/return'] for r in records if 'train/return' in r]
  test_returns = [r['test/return'] for r in records if 'test/return' in r]
  seed_returns = [r['train/return'] for r in records if 'train/return' in r and not r['updates']]
  return {'seed': seed, 'random': float(np.mean(seed_returns)),
          'final_train': float(np.mean(train_returns[-5:])),
          'final_test': float(np.mean(test_returns[-3:])), 'best_test': float(max(test_returns))}


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  import tempfile
  from dreamer import config as config_lib
  params = config_lib.parse_params(args.params)
  logdir = pathlib.Path(args.logdir or tempfile.mkdtemp(prefix='learning_study_'))
  results = []
  for seed in args.seeds:
    run_dir = logdir / f'seed{seed}'
    result = study(args.config, seed, params, run_dir, args.cut, args.episodes,
                   args.original_bootstrap)
    print(json.dumps(result), flush=True)
    results.append(result)
  print(f'{args.config} {args.params} cut={args.cut} '
        f'original_bootstrap={args.original_bootstrap} in {logdir}')
  print('seed  random  final_train  final_test  best_test')
  for r in results:
    print(f"{r['seed']:4d}  {r['random']:6.1f}  {r['final_train']:11.1f}  "
          f"{r['final_test']:10.1f}  {r['best_test']:9.1f}")
  return results


if __name__ == '__main__':
  main()
