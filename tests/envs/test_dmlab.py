"""DeepMind Lab against a fake `deepmind_lab` module; the message when the real one is missing."""

import sys

import numpy as np
import pytest

from dreamer.envs import registry
from tests.envs import fake_deepmind_lab as fake

# The original's action set (danijar/dreamer wrappers.py, DeepMindLabyrinth.ACTION_SET_DEFAULT),
# written out here so that a change of the code's table shows: the lab's controls are look
# left/right, look down/up, strafe left/right, move back/forward, fire, jump, crouch.
ORIGINAL_ACTIONS = (
    (0, 0, 0, 1, 0, 0, 0),    # Forward
    (0, 0, 0, -1, 0, 0, 0),   # Backward
    (0, 0, -1, 0, 0, 0, 0),   # Strafe Left
    (0, 0, 1, 0, 0, 0, 0),    # Strafe Right
    (-20, 0, 0, 0, 0, 0, 0),  # Look Left
    (20, 0, 0, 0, 0, 0, 0),   # Look Right
    (-20, 0, 0, 1, 0, 0, 0),  # Look Left + Forward
    (20, 0, 0, 1, 0, 0, 0),   # Look Right + Forward
    (0, 0, 0, 0, 1, 0, 0),    # Fire
)


@pytest.fixture
def lab(monkeypatch):
  monkeypatch.setitem(sys.modules, 'deepmind_lab', fake)
  monkeypatch.setattr(fake, 'calls', {'runfiles_path': None, 'labs': []})
  monkeypatch.delenv('BORG_ALLOC_DIR', raising=False)
  return fake


def test_spaces_and_reset(lab):
  env = registry.make_env('dmlab_collect', render_size=16, seed=0)
  inner = lab.calls['labs'][0]
  assert inner.level == 'contributed/dmlab30/rooms_collect_good_objects_train'
  assert inner.config == {'width': '16', 'height': '16', 'logLevel': 'WARN'}
  assert env.act_space.discrete and env.act_space.shape == (9,)
  assert env.obs_space['image'].shape == (16, 16, 3)
  obs = env.reset()
  assert obs['image'].shape == (16, 16, 3) and obs['image'].dtype == np.uint8
  assert obs['image'].max() > 0
  env.reset()
  assert len(set(inner.seeds)) == 2 and all(0 <= s < 2 ** 31 for s in inner.seeds)


def test_one_hot_actions_map_to_lab_controls(lab):
  env = registry.make_env('dmlab_collect', seed=0)
  env.reset()
  inner = lab.calls['labs'][0]
  for index in range(9):
    env.step(np.eye(9, dtype=np.float32)[index])
  env.step(np.array([0.1, 0.2, 0.9, 0, 0, 0, 0, 0, 0.3], np.float32))  # non-strict: argmax
  sent = np.array([action for action, _ in inner.steps])
  np.testing.assert_array_equal(sent[:9], ORIGINAL_ACTIONS)
  np.testing.assert_array_equal(sent[9], ORIGINAL_ACTIONS[2])
  assert {num_steps for _, num_steps in inner.steps} == {4}  # action repeat done by the lab
  spec = inner.action_spec()
  assert np.all(sent >= [s['min'] for s in spec]) and np.all(sent <= [s['max'] for s in spec])


def test_episode_end_is_termination_with_blank_image(lab):
  env = registry.make_env('dmlab_collect', render_size=8, action_repeat=7, seed=0)
  env.reset()
  forward = np.eye(9, dtype=np.float32)[0]
  steps = -(-lab.EPISODE_FRAMES // 7)
  results = [env.step(forward) for _ in range(steps)]
  assert [r[2] for r in results] == [False] * (steps - 1) + [True]
  obs, reward, done, info = results[-1]
  assert not obs['image'].any() and obs['image'].shape == (8, 8, 3)
  assert 'done_reason' not in info
  assert sum(r[1] for r in results) == lab.EPISODE_FRAMES
  assert results[0][0]['image'].any()


def test_runfiles_path(lab, monkeypatch):
  registry.make_env('dmlab_keys', dmlab_runfiles_path='/opt/lab')
  assert lab.calls['runfiles_path'] == '/opt/lab'
  monkeypatch.setenv('BORG_ALLOC_DIR', '/alloc')
  registry.make_env('dmlab_keys', dmlab_runfiles_path='lab/runfiles')
  assert lab.calls['runfiles_path'] == '/alloc/lab/runfiles'


def test_missing_module_names_the_fix(monkeypatch):
  monkeypatch.setitem(sys.modules, 'deepmind_lab', None)  # makes `import deepmind_lab` fail
  with pytest.raises(ImportError) as error:
    registry.make_env('dmlab_collect')
  message = str(error.value)
  assert '\n' not in message
  assert 'deepmind_lab' in message and 'github.com/google-deepmind/lab' in message
  assert 'pip install' in message
