"""What a user sees: the pinned TensorBoard server over a finished debug run, asked over HTTP.

The event files are read back by `tensorboard --logdir` itself (its own CLI, data server and
HTTP API, as the browser asks them), not by a reader of ours, so a summary that the server
drops or misfiles fails here.
"""

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import imageio.v3 as iio
import pytest

from tests.scripts import test_train

SMOKE = test_train.SMOKE  # With save_videos: mp4 in the shared run.
RUN = '00001'
STARTUP_SECONDS = 90  # A bound for a loaded machine, not a speed requirement.


@pytest.fixture(scope='module')
def logdir(debug_run):
  return debug_run[0]  # A finished run of SMOKE (tests/conftest.py).


def free_port():
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


@contextlib.contextmanager
def tensorboard(logdir, log_path):
  """Serves `logdir` with `python -m tensorboard.main`; yields get(path) -> bytes.

  The server runs in its own process group, so stopping it also stops its data server.
  """
  port = free_port()
  command = [sys.executable, '-m', 'tensorboard.main', '--logdir', str(logdir),
             '--host', '127.0.0.1', '--port', str(port)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  with open(log_path, 'wb') as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)

  def get(path):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/{path}', timeout=20) as response:
      assert response.status == 200, path
      return response.read()

  try:
    yield process, get
  finally:
    with contextlib.suppress(ProcessLookupError):
      os.killpg(process.pid, signal.SIGTERM)
    try:
      process.wait(10)
    except subprocess.TimeoutExpired:
      with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
      process.wait()


def wait_for(process, get, path, ready, log_path):
  """The JSON at `path` once ready(json) holds: the server loads event files in the background."""
  deadline = time.monotonic() + STARTUP_SECONDS
  value = None
  while time.monotonic() < deadline:
    if process.poll() is not None:
      pytest.fail(f'tensorboard exited with {process.returncode}:\n'
                  f'{log_path.read_text()[-3000:]}')
    try:
      value = json.loads(get(path))
      if ready(value):
        return value
    except (urllib.error.URLError, ConnectionError):
      pass  # Not listening yet.
    time.sleep(0.5)
  pytest.fail(f'tensorboard did not serve {path} in {STARTUP_SECONDS} s; last answer {value}; '
              f'log:\n{log_path.read_text()[-3000:]}')


@pytest.mark.timeout(300)
def test_tensorboard_serves_the_runs_scalars_and_animated_gifs(logdir, tmp_path):
  records = [json.loads(line) for line in open(logdir / RUN / 'metrics.jsonl')]
  general = [r for r in records if r['phase'] == 'train' and 'general/env_frames' in r]
  train_run, test_run = f'{RUN}/train', f'{RUN}/test'
  log_path = tmp_path / 'tensorboard.log'
  with tensorboard(logdir, log_path) as (process, get):
    images = wait_for(process, get, 'data/plugin/images/tags', lambda tags: (
        'openloop/gif' in tags.get(train_run, {}) and 'test/video' in tags.get(test_run, {})),
        log_path)
    assert {'openloop/gif', 'openloop/strip'} <= set(images[train_run])
    scalars = wait_for(process, get, 'data/plugin/scalars/tags', lambda tags: (
        train_run in tags and test_run in tags), log_path)
    assert {'model/loss', 'model/kl', 'model/image_log_prob', 'actor/loss', 'value/loss',
            'train/return', 'general/env_frames', 'general/fps', 'general/updates_per_second',
            'general/memory_gb', 'general/replay_episodes', 'general/replay_frames',
            'general/replay_mb'} <= set(scalars[train_run])
    assert {'test/return', 'test/score', 'test/length'} <= set(scalars[test_run])

    # The x-axis is env frames: the series of env frames is the identity, at the frames of
    # metrics.jsonl, and not at trainer steps.
    query = urllib.parse.urlencode({'run': train_run, 'tag': 'general/env_frames'})
    series = json.loads(get(f'data/plugin/scalars/scalars?{query}'))
    steps = [step for _, step, _ in series]
    assert steps == [r['env_frames'] for r in general] and len(steps) >= 2
    assert all(step == value for _, step, value in series)
    assert steps != [r['global_step'] for r in general]
    query = urllib.parse.urlencode({'run': train_run, 'tag': 'general/replay_frames'})
    replay = [value for _, _, value in json.loads(get(f'data/plugin/scalars/scalars?{query}'))]
    assert replay == [r['general/replay_frames'] for r in general]

    query = urllib.parse.urlencode({'run': train_run, 'tag': 'openloop/gif', 'sample': 0})
    entries = json.loads(get(f'data/plugin/images/images?{query}'))
    assert [e['step'] for e in entries] == steps  # One GIF per train logging period.
    data = get(f"data/plugin/images/individualImage?{entries[-1]['query']}")
  assert data[:6] == b'GIF89a'
  frames = iio.imread(io.BytesIO(data), extension='.gif', index=None)
  batch, length = SMOKE['batch_shape']
  # Truth, model and error rows of `batch` sequences side by side, one frame per step.
  assert frames.shape == (length, 3 * 64, batch * 64, 3)
  assert process.poll() is not None  # Stopped.


def test_memory_and_replay_size_are_logged_under_general(logdir):
  records = [json.loads(line) for line in open(logdir / RUN / 'metrics.jsonl')]
  general = [r for r in records if 'general/env_frames' in r]
  on_disk = len(list((logdir / RUN / 'train_episodes').glob('*.npz')))
  for record in general:
    assert record['general/memory_gb'] > 0.1  # TensorFlow alone holds more.
    assert 1 <= record['general/replay_episodes'] <= on_disk
    # Dummy episodes: 20 steps and the first frame, each a 64x64x3 uint8 image and more.
    assert record['general/replay_frames'] == 21 * record['general/replay_episodes']
    assert record['general/replay_mb'] > record['general/replay_frames'] * 64 * 64 * 3 / 1e6


def test_save_videos_mp4_writes_each_test_phase_first_episode(logdir):
  videos = sorted((logdir / RUN / 'videos').iterdir())
  assert [p.name for p in videos] == ['test_main_dummy-0000001000.mp4',
                                      'test_main_dummy-0000002000.mp4']
  for path in videos:
    assert iio.imread(path, plugin='FFMPEG', index=None).shape == (21, 64, 64, 3)
