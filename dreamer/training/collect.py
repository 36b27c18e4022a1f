"""Runs a policy in a batch of environments and hands finished episodes to a callback."""

import numpy as np

from dreamer.data import episodes as episodes_lib


class Collection:
  """One named collection (SPEC 3.10, 8.4): its envs, schedule and exploration settings.

  Args:
    name: e.g. train_main_cheetah_run.
    envs: envs.parallel.BatchEnv.
    on_episode: callback(collection, episode dict) for every finished episode.
    directory: where this collection's episodes are saved.
    action_repeat: env frames per agent step, for frame counting.
  """

  def __init__(self, name, envs, on_episode, *, task, directory, mode='train',
               planner='policy_sample',
               num_episodes=1, num_steps=500, steps_after=5000, steps_every=5000,
               steps_until=-1, noise_type='additive_normal', noise_scale=0.0,
               noise_ramp=0, noise_min=0.0, noise_factors=(), action_repeat=1):
    self.name = name
    self.envs = envs
    self.task = task
    self.directory = directory
    self.mode = mode
    self.planner = planner
    self.action_repeat = action_repeat
    self._on_episode = on_episode
    self.num_episodes = num_episodes
    self.num_steps = num_steps
    self._after, self._every, self._until = steps_after, steps_every, steps_until
    self._noise = dict(type=noise_type, scale=noise_scale, ramp=noise_ramp, min=noise_min,
                       factors=list(noise_factors))

  def due(self, phase_step, batch):
    """Whether the schedule fires within the trainer steps [phase_step, phase_step + B)."""
    s = phase_step
    if s < self._after or (self._until > 0 and s >= self._until):
      return False
    return (s - self._after) % self._every < batch

  @property
  def noise_type(self):
    return self._noise['type']

  def noise(self, phase_step):
    """Exploration scale per env at a trainer phase step (SPEC 8.7)."""
    n = self._noise
    ramp = n['ramp']
    if ramp == 0:
      factor = 1.0
    elif ramp > 0:
      factor = min(phase_step / ramp, 1.0)
    else:
      factor = 1.0 - min(phase_step / abs(ramp), 1.0)
    value = max(n['min'], factor) * n['scale']
    factors = n['factors'] or [1.0] * len(self.envs)
    if len(factors) != len(self.envs):
      raise ValueError(f'{len(factors)} action noise factors for {len(self.envs)} envs')
    return [value * f for f in factors]

  def run(self, policy, noise, on_step=None):
    """Steps until enough episodes and agent steps are done; returns finished episodes.

    Args:
      policy: fn(obs dict of stacked arrays, state, reset bools) -> (actions, state).
      noise: per-env noise scales handed to the policy.
      on_step: optional fn(agent steps so far, summed over envs), e.g. a progress line.
    Returns:
      list of (return, length in agent steps) of the finished episodes.
    """
    envs = self.envs
    count = len(envs)
    obs = envs.reset()
    tracks = [[_first_step(o, envs.act_space)] for o in obs]
    reset = np.ones(count, bool)
    state = None
    finished, steps = [], 0
    while len(finished) < self.num_episodes or steps < self.num_steps:
      actions, state = policy(_stack(obs), state, reset, noise)
      actions = np.asarray(actions)
      obs, rewards, dones, infos = envs.step(list(actions))
      steps += count
      if on_step:
        on_step(steps)
      reset = np.zeros(count, bool)
      for i in range(count):
        tracks[i].append(_step(obs[i], actions[i], rewards[i], dones[i], infos[i]))
        if dones[i]:
          episode = episodes_lib.stack_steps(tracks[i])
          self._on_episode(self, episode)
          finished.append((float(episode['reward'].sum()), len(tracks[i]) - 1))
          obs[i] = envs.reset([i])[0]
          tracks[i] = [_first_step(obs[i], envs.act_space)]
          reset[i] = True
    return finished


def random_episodes(envs, on_episode, num_episodes, num_steps, rng, on_step=None):
  """Seed collection: uniformly random actions, whole episodes, until both quotas are met.

  Each episode counts its file length (including the reset entry) against num_steps.
  on_step: optional fn(agent steps taken so far, summed over envs).
  """
  episodes, steps = 0, 0
  taken = 0
  results = []
  count = len(envs)
  obs = envs.reset()
  tracks = [[_first_step(o, envs.act_space)] for o in obs]
  while episodes < num_episodes or steps < num_steps:
    actions = [_random_action(envs.act_space, rng) for _ in range(count)]
    obs, rewards, dones, infos = envs.step(actions)
    taken += count
    if on_step:
      on_step(taken)
    for i in range(count):
      tracks[i].append(_step(obs[i], actions[i], rewards[i], dones[i], infos[i]))
      if dones[i]:
        episode = episodes_lib.stack_steps(tracks[i])
        on_episode(episode)
        results.append((float(episode['reward'].sum()), len(tracks[i])))
        episodes += 1
        steps += len(tracks[i])
        obs[i] = envs.reset([i])[0]
        tracks[i] = [_first_step(obs[i], envs.act_space)]
        if episodes >= num_episodes and steps >= num_steps:
          return results
  return results


def _random_action(space, rng):
  """A uniformly random action; one-hot for one-hot spaces.

  The original stored the continuous vector whose argmax the env took, so the world model
  saw actions in seed episodes that the policy never produces; we store what was done.
  """
  action = space.sample(rng)
  if space.discrete:
    action = np.eye(space.shape[0], dtype=action.dtype)[np.argmax(action)]
  return action


def _first_step(obs, act_space):
  step = {k: np.asarray(v) for k, v in obs.items()}
  step['action'] = np.zeros(act_space.shape, np.float32)
  step['reward'] = np.float32(0.0)
  step['pcont'] = np.float32(1.0)
  return step


def _step(obs, action, reward, done, info):
  step = {k: np.asarray(v) for k, v in obs.items()}
  step['action'] = np.asarray(action, np.float32)
  step['reward'] = np.float32(reward)
  terminal = done and info.get('done_reason') != 'timeout'
  step['pcont'] = np.float32(0.0 if terminal else 1.0)
  return step


def _stack(obs):
  return {k: np.stack([o[k] for o in obs]) for k in obs[0]}
