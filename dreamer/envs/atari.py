"""Atari games through ale_py (SPEC 7.5): repeat with max-pooling, no-op starts, life loss."""

import threading

import numpy as np

from dreamer.envs import wrappers
from dreamer.envs.spaces import Box

# Envs may live in worker threads (isolate_envs: thread). As in the original, creation and
# reset are serialised, because ALE does not promise that loading a ROM is thread-safe.
LOCK = threading.Lock()


class Atari:
  """One game with discrete actions (`num_actions`, step takes an int) and 'image' obs.

  Args:
    sticky: 25 % sticky actions (the original's `NoFrameskip-v0`; off is `-v4`).
    noops: a reset plays 1 .. noops-1 no-op frames (exactly 1 when noops <= 1).
    life_done: end the episode when a life is lost (training only, see `make`).
  """

  def __init__(self, game, action_repeat=4, size=64, grayscale=False, noops=30,
               life_done=False, sticky=True, seed=None):
    import ale_py
    import gymnasium
    gymnasium.register_envs(ale_py)
    with LOCK:
      # v5 with these arguments equals the legacy NoFrameskip-v0/v4 ids, minus their
      # deprecation warning: frame skipping and pooling happen here instead.
      self._env = gymnasium.make(
          f'ALE/{game}-v5', obs_type='grayscale' if grayscale else 'rgb', frameskip=1,
          repeat_action_probability=0.25 if sticky else 0.0, full_action_space=False,
          max_num_frames_per_episode=108000)
    self._repeat = int(action_repeat)
    self._size = int(size)
    self._grayscale = grayscale
    self._noops = int(noops)
    self._life_done = life_done
    self._rng = np.random.default_rng(seed)
    self._seed = seed
    self._lives = None
    self.num_actions = int(self._env.action_space.n)

  @property
  def ale(self):
    return self._env.unwrapped.ale

  @property
  def obs_space(self):
    shape = (self._size, self._size, 1 if self._grayscale else 3)
    return {'image': Box(0, 255, shape, np.uint8)}

  @property
  def act_space(self):
    return Box(0, self.num_actions - 1, (), np.int32)

  def reset(self):
    frame = self._reset_game()
    for _ in range(int(self._rng.integers(1, self._noops)) if self._noops > 1 else 1):
      frame, _, terminated, truncated, _ = self._env.step(0)
      if terminated or truncated:
        frame = self._reset_game()
    self._lives = self.ale.lives()
    return self._obs(frame, frame)

  def step(self, action):
    total, frames, done, info = 0.0, [], False, {}
    for _ in range(self._repeat):
      frame, reward, terminated, truncated, _ = self._env.step(int(action))
      total += reward
      frames.append(frame)
      lives = self.ale.lives()
      life_lost = self._life_done and lives < self._lives
      self._lives = lives
      if terminated or truncated or life_lost:
        done = True
        # ALE's frame limit is a time limit; game over and life loss are terminations.
        if truncated and not terminated and not life_lost:
          info = {'done_reason': 'timeout'}
        break
    return self._obs(frame, frames[-2] if len(frames) > 1 else frame), total, done, info

  def close(self):
    self._env.close()

  def _reset_game(self):
    with LOCK:
      # Seed once: later resets continue the ALE's generator (sticky actions) instead of
      # replaying the same episode.
      frame, _ = self._env.reset(seed=self._seed)
    self._seed = None
    return frame

  def _obs(self, frame, previous):
    # The screens of the last two frames are max-pooled: some games draw sprites on
    # alternating frames only.
    import cv2
    image = np.maximum(frame, previous)
    # INTER_AREA averages all source pixels, so small objects such as Pong's ball survive
    # the 3x downscale that plain bilinear sampling can skip over.
    image = cv2.resize(image, (self._size, self._size), interpolation=cv2.INTER_AREA)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return {'image': image[:, :, None] if image.ndim == 2 else image}


def make(task, mode, action_repeat, render_size, seed, game, atari_grayscale, atari_noops,
         atari_lifes, atari_sticky, atari_train_max_length, **_unused):
  """Builds the env before the common wrappers; life loss and the extra limit in train only."""
  del task
  train = mode == 'train'
  env = Atari(game, action_repeat, render_size, grayscale=atari_grayscale, noops=atari_noops,
              life_done=atari_lifes and train, sticky=atari_sticky, seed=seed)
  env = wrappers.OneHotAction(env, strict=False)
  if train and atari_train_max_length:
    env = wrappers.MaximumDuration(env, atari_train_max_length)
  return env
