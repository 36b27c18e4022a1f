"""Checkpoints of one run: the newest two are kept, and a damaged newest one (a machine that
died while writing it, a full disk) falls back to the one before it."""

import os
import pathlib
import re
import shutil
import tempfile

import tensorflow as tf

_PREFIX = 'model.ckpt'
_NUMBER = re.compile(r'-(\d+)$')


class CheckpointError(RuntimeError):
  """The run has checkpoints, but none of them can be restored."""


class Checkpoints:
  """Saves `<dir>/model.ckpt-<number>` and restores the newest one that reads.

  Args:
    checkpoint: the tf.train.Checkpoint to save and restore.
    directory: the run directory.
    keep: how many checkpoints stay on disk; two, so one can be damaged.
    chief: False for the other workers of distribute: multi_worker. They read the chief's
      checkpoints and never change the run directory: TF needs every worker to save (a
      save may run collectives), so theirs go to a temporary directory that is deleted.
  """

  def __init__(self, checkpoint, directory, keep=2, log=print, chief=True):
    self._checkpoint = checkpoint
    self._dir = pathlib.Path(directory)
    self._keep = keep
    self._log = log
    self._chief = chief
    self._manager = self._new_manager()

  @property
  def latest(self):
    if not self._chief:  # The chief saves while this worker runs.
      return tf.train.latest_checkpoint(str(self._dir))
    return self._manager.latest_checkpoint

  def save(self, number):
    if self._chief:
      return self._manager.save(checkpoint_number=number)
    scratch = tempfile.mkdtemp(prefix='dreamer-worker-checkpoint-')
    try:
      self._checkpoint.save(os.path.join(scratch, _PREFIX))
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
    return None

  def restore_number(self, number):
    """Restores <dir>/model.ckpt-<number>, the one the chief restored; returns its path."""
    path = str(self._dir / f'{_PREFIX}-{number}')
    self._checkpoint.restore(path).assert_existing_objects_matched()
    return path

  @staticmethod
  def number(path):
    """The number of a checkpoint path, e.g. 40 for .../model.ckpt-40."""
    return int(_NUMBER.search(path).group(1))

  def restore(self):
    """Restores the newest readable checkpoint; returns its path, or None when there is none.

    Damaged checkpoints are renamed to `*.damaged` (kept for inspection, out of the rotation).
    Raises CheckpointError when checkpoints exist but none of them restores.
    """
    damaged = []
    candidates = self._candidates()
    for index, path in enumerate(candidates):
      try:
        self._checkpoint.restore(path).assert_existing_objects_matched()
      except Exception as e:  # Damage shows as OpError, IndexError, ValueError, ...
        damaged.append(f'{os.path.basename(path)}: {_first_line(e)}')
        then = 'restoring the one before it' if index + 1 < len(candidates) else 'none is left'
        self._log(f'Warning: checkpoint {path} cannot be read ({_first_line(e)}); {then}.')
        continue
      if damaged:
        self._set_aside(candidates[:index], path)
      return path
    if damaged:
      raise CheckpointError(
          f"no checkpoint in {self._dir} can be restored ({'; '.join(damaged)}); move the "
          f"{_PREFIX}-* files aside to train this run again from its first step")
    return None

  def _new_manager(self):
    return tf.train.CheckpointManager(
        self._checkpoint, str(self._dir), max_to_keep=self._keep, checkpoint_name=_PREFIX)

  def _candidates(self):
    """Checkpoint paths, newest first: those the state file lists and those found on disk,
    so that a damaged state file does not make the run start over."""
    paths = set(self._manager.checkpoints)
    paths.update(str(p)[:-len('.index')] for p in self._dir.glob(f'{_PREFIX}-*.index'))
    numbered = [p for p in paths if _NUMBER.search(p)]
    return sorted(numbered, key=lambda p: int(_NUMBER.search(p).group(1)), reverse=True)

  def _set_aside(self, damaged, restored):
    for path in damaged:
      for file_ in self._dir.glob(f'{os.path.basename(path)}.*'):
        if not file_.name.endswith('.damaged'):
          os.replace(file_, f'{file_}.damaged')
    left = [p for p in self._candidates() if p not in damaged]
    tf.compat.v1.train.update_checkpoint_state(
        str(self._dir), restored, all_model_checkpoint_paths=left[::-1])
    self._manager = self._new_manager()


def _first_line(error):
  text = str(getattr(error, 'message', None) or error).strip()
  return text.splitlines()[0] if text else type(error).__name__
