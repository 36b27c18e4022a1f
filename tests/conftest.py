"""Test-wide settings: quiet TensorFlow, headless rendering; a finished run to inspect."""

import contextlib
import io
import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')


@pytest.fixture(scope='session')
def debug_run(tmp_path_factory):
  """One finished run of the smoke config, with MP4 videos, checkpoints at 20 and 40 and a
  progress line at every step, that several modules only read (train's checks, summaries,
  evaluate, plot, TensorBoard): one training run per test worker instead of one per
  module. Returns (logdir, the run directories train.main reported done, what it printed)."""
  from tests.scripts.test_train import SMOKE, run

  logdir = tmp_path_factory.mktemp('debug_run')
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    done = run(logdir, dict(SMOKE, save_videos='mp4', checkpoint_every=10, progress_every=0.001))
  return logdir, done, out.getvalue()
