"""Test-wide settings: quiet TensorFlow, headless rendering; a finished run to inspect."""

import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')


@pytest.fixture(scope='session')
def debug_run(tmp_path_factory):
  """One finished run of the smoke config, with MP4 videos and checkpoints at 20 and 40,
  that several modules only read (train's checks, evaluate, plot, TensorBoard): one
  training run per test worker instead of one per module. Returns (logdir, the run
  directories train.main reported done)."""
  from tests.scripts.test_train import SMOKE, run

  logdir = tmp_path_factory.mktemp('debug_run')
  return logdir, run(logdir, dict(SMOKE, save_videos='mp4', checkpoint_every=10))
