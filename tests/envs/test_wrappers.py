"""Each generic wrapper of SPEC 7.2 on small scripted environments."""

import numpy as np
import pytest

from dreamer.envs import wrappers
from dreamer.envs.spaces import Box


class Scripted:
  """Counts steps; reward = step index; done at `length`; records the actions it got."""

  def __init__(self, length=10, act_space=None, obs=None):
    self.length = length
    self.act_space = act_space or Box(-1, 1, (2,))
    self.obs = obs or {'x': np.zeros(2)}
    self.actions = []
    self.t = 0

  @property
  def obs_space(self):
    spaces = {}
    for key, value in self.obs.items():
      value = np.asarray(value)
      bound = np.inf if value.dtype.kind == 'f' else 100
      spaces[key] = Box(-bound if value.dtype.kind != 'u' else 0, bound, value.shape, value.dtype)
    return spaces

  def reset(self):
    self.t = 0
    return dict(self.obs)

  def step(self, action):
    self.t += 1
    self.actions.append(action)
    done = self.t >= self.length
    return dict(self.obs, t=np.array(self.t)), float(self.t), done, {'t': self.t}

  def close(self):
    pass


def test_action_repeat_sums_rewards_and_stops_on_done():
  env = wrappers.ActionRepeat(Scripted(length=5), 3)
  env.reset()
  obs, reward, done, info = env.step(np.zeros(2))
  assert (reward, done, info['t'], int(obs['t'])) == (1 + 2 + 3, False, 3, 3)
  obs, reward, done, info = env.step(np.zeros(2))
  assert (reward, done, info['t']) == (4 + 5, True, 5)


def test_normalize_actions_maps_unit_box_to_bounds():
  inner = Scripted(act_space=Box([0, -4, -np.inf], [2, 4, np.inf], (3,)))
  env = wrappers.NormalizeActions(inner)
  assert np.array_equal(env.act_space.low, [-1, -1, -np.inf])
  assert np.array_equal(env.act_space.high, [1, 1, np.inf])
  env.step([-1, 1, 7])  # unbounded dims pass through unchanged
  env.step(np.array([0, 0, -3]))
  np.testing.assert_allclose(inner.actions[0], [0, 4, 7])
  np.testing.assert_allclose(inner.actions[1], [1, 0, -3])


class Discrete(Scripted):
  num_actions = 4


def test_one_hot_action_takes_argmax_and_strict_rejects_soft_vectors():
  inner = Discrete()
  env = wrappers.OneHotAction(inner)
  space = env.act_space
  assert space.discrete and space.shape == (4,) and space.low.min() == 0 and space.high.max() == 1
  env.step([0, 0, 1, 0])
  env.step([0.2, 0.7, 0.1, 0.3])  # non-strict: random seed actions are continuous
  assert inner.actions == [2, 1]
  strict = wrappers.OneHotAction(Discrete(), strict=True)
  strict.step([0, 1, 0, 0])
  with pytest.raises(ValueError, match='one-hot'):
    strict.step([0.2, 0.7, 0.1, 0.3])


def test_pad_actions_exposes_union_and_passes_first_dims():
  small = Box([-1, 0], [1, 2], (2,))
  large = Box([-3, -1, -5], [0, 1, 5], (3,))
  inner = Scripted(act_space=small)
  env = wrappers.PadActions(inner, [small, large])
  np.testing.assert_array_equal(env.act_space.low, [-3, -1, -5])
  np.testing.assert_array_equal(env.act_space.high, [1, 2, 5])
  assert not env.act_space.discrete
  env.step(np.array([0.5, 1.5, 4.0]))
  np.testing.assert_array_equal(inner.actions[0], [0.5, 1.5])
  onehots = [Box(0, 1, (4,), discrete=True), Box(0, 1, (6,), discrete=True)]
  assert wrappers.PadActions(Discrete(), onehots).act_space.discrete


def test_minimum_duration_ignores_early_done():
  env = wrappers.MinimumDuration(Scripted(length=2), 4)
  env.reset()
  dones = [env.step(np.zeros(2))[2] for _ in range(4)]
  assert dones == [False, False, False, True]
  env.reset()  # the count restarts with each episode
  assert not env.step(np.zeros(2))[2]


def test_maximum_duration_ends_with_timeout():
  env = wrappers.MaximumDuration(Scripted(length=100), 3)
  for _ in range(2):
    env.reset()
    results = [env.step(np.zeros(2)) for _ in range(3)]
    assert [r[2] for r in results] == [False, False, True]
    assert results[-1][3]['done_reason'] == 'timeout'
    assert 'done_reason' not in results[0][3]
  # An inner termination at the limit stays a termination.
  env = wrappers.MaximumDuration(Scripted(length=3), 3)
  env.reset()
  for _ in range(3):
    _, _, done, info = env.step(np.zeros(2))
  assert done and 'done_reason' not in info


def test_convert_to_32_bit():
  obs = {'f': np.zeros(3, np.float64), 'i': np.zeros(2, np.int64), 'u': np.zeros(1, np.uint8)}
  env = wrappers.ConvertTo32Bit(Scripted(obs=obs))
  assert {k: v.dtype for k, v in env.obs_space.items()} == {
      'f': np.float32, 'i': np.int32, 'u': np.uint8}
  result = env.reset()
  assert {k: v.dtype for k, v in result.items()} == {'f': np.float32, 'i': np.int32, 'u': np.uint8}
  result, reward, _, _ = env.step(np.zeros(2))
  assert result['t'].dtype == np.int32 and isinstance(reward, np.float32)


def test_convert_to_32_bit_rejects_non_finite_values():
  env = wrappers.ConvertTo32Bit(Scripted(obs={'x': np.array([0.0, np.nan])}))
  with pytest.raises(ValueError, match="non-finite observation 'x'"):
    env.reset()

  class BadReward(Scripted):
    def step(self, action):
      obs, _, done, info = super().step(action)
      return obs, float('inf'), done, info

  env = wrappers.ConvertTo32Bit(BadReward())
  env.reset()
  with pytest.raises(ValueError, match='non-finite reward'):
    env.step(np.zeros(2))


def test_no_reward_hint_adds_zero_mask():
  env = wrappers.NoRewardHint(Scripted())
  assert env.obs_space['reward_mask'].shape == (1,)
  np.testing.assert_array_equal(env.reset()['reward_mask'], [0.0])
  obs, reward, _, _ = env.step(np.zeros(2))
  np.testing.assert_array_equal(obs['reward_mask'], [0.0])
  assert reward == 1.0  # the reward itself still reaches the recorder


def test_select_observations_keeps_listed_keys():
  inner = Scripted(obs={'image': np.zeros(3), 'x': np.ones(1)})
  env = wrappers.SelectObservations(inner, ['image'])
  assert list(env.obs_space) == ['image']
  assert list(env.reset()) == ['image']
  assert list(env.step(np.zeros(2))[0]) == ['image']


def test_observation_dict_and_attribute_forwarding():
  class Plain(Scripted):
    obs_space = Box(-1, 1, (2,))
    extra = 'forwarded'

    def reset(self):
      return np.ones(2)

    def step(self, action):
      return np.zeros(2), 0.0, False, {}

  env = wrappers.ObservationDict(Plain(), 'state')
  assert list(env.obs_space) == ['state'] and env.extra == 'forwarded'
  np.testing.assert_array_equal(env.reset()['state'], [1, 1])
