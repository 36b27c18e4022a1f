"""Checkpoint rotation and the fallback from a damaged newest checkpoint to the one before."""

import pytest
import tensorflow as tf

from dreamer.training import checkpoints as checkpoints_lib


class Saver:
  """Two variables in a tf.train.Checkpoint, saved at a given step with values = step."""

  def __init__(self, directory):
    self.weights = tf.Variable(tf.zeros([100, 50]))
    self.step = tf.Variable(0, dtype=tf.int64)
    self.messages = []
    self.checkpoints = checkpoints_lib.Checkpoints(
        tf.train.Checkpoint(weights=self.weights, step=self.step), directory,
        log=self.messages.append)

  def save(self, step):
    self.step.assign(step)
    self.weights.assign(tf.fill([100, 50], float(step)))
    return self.checkpoints.save(step)

  def restored(self):
    return int(self.step.numpy()), float(self.weights.numpy().mean())


def saved(directory, steps):
  saver = Saver(directory)
  for step in steps:
    saver.save(step)
  return Saver(directory)  # Fresh variables, as in a new process.


def truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 3])


def test_keeps_the_newest_two(tmp_path):
  saver = saved(tmp_path, [10, 20, 30])
  assert sorted(p.name for p in tmp_path.glob('*.index')) == [
      'model.ckpt-20.index', 'model.ckpt-30.index']
  assert saver.checkpoints.restore().endswith('model.ckpt-30')
  assert saver.restored() == (30, 30.0) and not saver.messages


@pytest.mark.parametrize('part', ['index', 'data-00000-of-00001'])
def test_damaged_newest_falls_back_to_the_one_before(tmp_path, part):
  saver = saved(tmp_path, [20, 40])
  truncate(tmp_path / f'model.ckpt-40.{part}')
  assert saver.checkpoints.restore().endswith('model.ckpt-20')
  assert saver.restored() == (20, 20.0)
  assert len(saver.messages) == 1 and 'model.ckpt-40' in saver.messages[0]
  assert 'restoring the one before it' in saver.messages[0]
  # The damaged files are kept aside, out of the rotation; training goes on from step 20.
  assert (tmp_path / f'model.ckpt-40.{part}.damaged').exists()
  assert saver.checkpoints.latest.endswith('model.ckpt-20')
  saver.save(30)
  saver.save(40)
  again = Saver(tmp_path)
  assert again.checkpoints.restore().endswith('model.ckpt-40')
  assert again.restored() == (40, 40.0) and not again.messages


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
  saver = saved(tmp_path, [20, 40])
  truncate(tmp_path / 'model.ckpt-40.index')
  truncate(tmp_path / 'model.ckpt-20.data-00000-of-00001')
  with pytest.raises(checkpoints_lib.CheckpointError) as info:
    saver.checkpoints.restore()
  message = str(info.value)
  assert '\n' not in message and 'no checkpoint in' in message
  assert 'model.ckpt-40' in message and 'model.ckpt-20' in message
  # Nothing is renamed when nothing could be restored: the user decides.
  assert (tmp_path / 'model.ckpt-40.index').exists()


def test_damaged_state_file_still_finds_the_checkpoints(tmp_path):
  saver = saved(tmp_path, [20, 40])
  (tmp_path / 'checkpoint').write_text('model_checkpoint_path: "model.ck')
  assert saver.checkpoints.restore().endswith('model.ckpt-40')
  assert saver.restored() == (40, 40.0)


def test_no_checkpoint_is_a_fresh_start(tmp_path):
  saver = Saver(tmp_path)
  assert saver.checkpoints.restore() is None and saver.restored() == (0, 0.0)
