"""Episode files: naming, atomic writes, round trip, damaged files, load-time transforms."""

import numpy as np
import pytest

from dreamer.data import episodes


def make_episode(length=11, image=True):
  rng = np.random.default_rng(length)
  episode = {
      'action': rng.uniform(-1, 1, (length, 2)).astype(np.float32),
      'reward': rng.uniform(0, 1, length).astype(np.float32),
      'pcont': np.ones(length, np.float64),
      'position': rng.normal(size=(length, 3)),  # float64 on purpose
  }
  if image:
    episode['image'] = rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8)
  episode['pcont'][-1] = 0.0
  return episode


def test_save_load_round_trip_and_name(tmp_path):
  episode = make_episode()
  path = episodes.save_episode(tmp_path, episode)
  assert episodes.episode_length(path) == 11
  assert path.name.count('-') == 2 and len(path.name.split('-')[1]) == 32
  loaded = episodes.load_episode(path)
  assert set(loaded) == set(episode)
  for key in episode:
    np.testing.assert_array_equal(loaded[key], episode[key])
  assert episodes.count_episodes(tmp_path) == (1, 11)
  assert not list(tmp_path.glob('.*'))  # No temporary file left behind.


def test_temporary_and_foreign_files_are_not_listed(tmp_path):
  episodes.save_episode(tmp_path, make_episode())
  (tmp_path / '.20200101T000000-0123456789abcdef0123456789abcdef-5.npz.tmp').write_bytes(b'x')
  (tmp_path / 'notes.npz').write_bytes(b'x')
  assert len(episodes.list_episodes(tmp_path)) == 1


def test_partial_writes_are_removed_and_finished_episodes_kept(tmp_path):
  path = episodes.save_episode(tmp_path, make_episode())
  partial = tmp_path / '.20200101T000000-0123456789abcdef0123456789abcdef-5.npz.tmp'
  partial.write_bytes(b'PK half')
  assert episodes.remove_partial(tmp_path) == [partial.name]
  assert sorted(tmp_path.iterdir()) == [path]
  assert episodes.remove_partial(tmp_path / 'missing') == []


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
  first = episodes.save_episode(tmp_path, make_episode())

  def full(file, **arrays):
    file.write(b'PK half')
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(np, 'savez_compressed', full)
  with pytest.raises(OSError, match='No space'):
    episodes.save_episode(tmp_path, make_episode())
  assert sorted(tmp_path.iterdir()) == [first]
  assert episodes.load_episode(first) is not None


def test_damaged_file_is_skipped_and_moved_aside(tmp_path, caplog):
  path = episodes.save_episode(tmp_path, make_episode())
  path.write_bytes(path.read_bytes()[:100])
  assert episodes.load_episode(path) is None
  assert not path.exists() and path.with_name(path.name + '.corrupt').exists()
  assert 'damaged' in caplog.text


def test_process_episode_transforms():
  episode = make_episode()
  episode['reward'][:] = [2.0, -3.0] + [0.5] * 9
  result = episodes.process_episode(episode, clip_rewards='tanh', pcont_scale=0.99)
  assert result['position'].dtype == np.float32
  np.testing.assert_allclose(result['return'][:2], [2.0, -1.0])  # Before clipping.
  np.testing.assert_allclose(result['reward'][:2], np.tanh([2.0, -3.0]), rtol=1e-6)
  assert result['reward_mask'].shape == (11, 1)
  np.testing.assert_allclose(result['pcont'][[0, -1]], [0.99, 0.0])


def test_sign_clipping_keeps_the_sign_of_negative_and_zero_rewards():
  episode = make_episode(length=6)
  episode['reward'][:] = [2.5, -3.0, 0.0, 0.25, -0.5, -0.0]
  signed = episodes.process_episode(episode, clip_rewards='sign')
  np.testing.assert_array_equal(signed['reward'], [1.0, -1.0, 0.0, 1.0, -1.0, 0.0])
  assert signed['reward'].dtype == np.float32
  np.testing.assert_allclose(signed['return'], np.cumsum(episode['reward']))  # Before clipping.


@pytest.mark.parametrize('key, value', [('reward', np.nan), ('position', np.inf)])
def test_episode_with_nan_or_inf_is_skipped_with_one_warning(tmp_path, caplog, key, value):
  episode = make_episode()
  episode[key][3] = value
  path = episodes.save_episode(tmp_path, episode)
  assert episodes.load_episode(path) is None
  assert not path.exists() and path.with_name(path.name + '.corrupt').exists()
  warnings = [r.getMessage() for r in caplog.records]
  assert len(warnings) == 1 and path.name in warnings[0] and f'{key} holds NaN or inf' in \
      warnings[0], warnings
