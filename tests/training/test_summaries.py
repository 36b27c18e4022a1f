"""Open-loop GIFs, image strips, test videos and progress lines (SPEC 9.3, 9.5)."""

import io
import json
import re
import types

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import img_mime_type_detector

from dreamer.models import world_model
from dreamer.scripts import train
from dreamer.training import logger as logger_lib
from dreamer.training import summaries


def decode(data):
  return iio.imread(io.BytesIO(data), extension='.gif', index=None)


def images(directory):
  """{tag: [(step, encoded bytes)]} of the image summaries TensorBoard reads back."""
  acc = event_accumulator.EventAccumulator(str(directory), size_guidance={'images': 0})
  acc.Reload()
  return {tag: [(e.step, e.encoded_image_string) for e in acc.Images(tag)]
          for tag in acc.Tags()['images']}


def test_openloop_grid_of_a_perfect_model_has_a_grey_error_row():
  rng = np.random.default_rng(0)
  truth = rng.uniform(0, 1, (3, 7, 8, 6, 3))
  grid = summaries.openloop_grid(truth, truth)
  assert grid.shape == (7, 3 * 8, 3 * 6, 3) and grid.dtype == np.uint8
  assert np.all(grid[:, 16:] == 128)
  np.testing.assert_array_equal(grid[:, :8], grid[:, 8:16])
  # Sequence 1 sits in the second column, frame 4 in the fifth GIF frame.
  np.testing.assert_array_equal(grid[4, :8, 6:12], summaries.to_uint8(truth[1, 4]))
  dark = summaries.openloop_grid(truth, np.zeros_like(truth))
  assert np.all(dark[:, 16:] <= 128) and dark[:, 16:].min() == 0


def test_gif_decodes_to_every_frame_and_keeps_the_grey():
  rng = np.random.default_rng(1)
  truth = rng.uniform(0, 1, (6, 12, 64, 64, 3))
  data = summaries.encode_gif(summaries.openloop_grid(truth, truth))
  assert data[:6] == b'GIF89a'
  frames = decode(data)
  assert frames.shape == (12, 192, 384, 3)
  assert np.all(frames[:, 128:] == 128)
  gray = summaries.encode_gif(rng.integers(0, 256, (4, 64, 64, 1), dtype=np.uint8))
  assert decode(gray).shape[:3] == (4, 64, 64)



def test_gif_colours_stay_close_to_the_frames():
  # Each frame's own 256-colour palette: a smooth gradient and a saturated square come back
  # within a few levels (measured: mean 2.3, largest 10 of 255).
  y, x = np.mgrid[0:64, 0:64] / 63
  frames = np.stack([np.stack([x * t / 4, y, np.full_like(x, 0.3)], -1) for t in range(5)])
  frames[:, 20:30, 20:30] = [1, 0, 0]
  decoded = decode(summaries.encode_gif(frames))[..., :3].astype(int)
  error = np.abs(decoded - summaries.to_uint8(frames).astype(int))
  assert error.mean() < 4 and error.max() <= 16
  np.testing.assert_array_equal(decoded[:, 25, 25], [[255, 0, 0]] * 5)


def test_image_strip_layout():
  truth = np.zeros((2, 3, 4, 5, 3))
  model = np.ones((2, 3, 4, 5, 3))
  strip = summaries.image_strip(truth, model)
  assert strip.shape == (2 * 2 * 4, 3 * 5, 3)
  rows = strip.reshape(4, 4, 15, 3)[:, :, :, 0].max(axis=(1, 2))
  np.testing.assert_array_equal(rows, [0, 255, 0, 255])  # truth, model per sequence.
  assert summaries.image_strip(truth, max_frames=2).shape == (8, 10, 3)


def test_write_video_picks_format_by_extension(tmp_path):
  frames = np.random.default_rng(2).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  summaries.write_video(tmp_path / 'sub' / 'clip.gif', frames)
  assert iio.imread(tmp_path / 'sub' / 'clip.gif', index=None).shape == (5, 16, 16, 3)
  with pytest.raises(summaries.VideoError, match='.gif or .mp4'):
    summaries.write_video(tmp_path / 'clip.avi', frames)
  assert sorted(p.name for p in tmp_path.rglob('*') if p.is_file()) == ['clip.gif']


def flat_frames(count, height, width, channels=3):
  """Frames of one flat colour each, different per frame: what a lossy codec keeps."""
  levels = np.linspace(30, 220, count).astype(np.uint8)
  frames = np.broadcast_to(levels[:, None, None, None], (count, height, width, channels))
  if channels == 3:
    frames = frames * np.array([1.0, 0.5, 0.25])
  return frames.astype(np.uint8)


@pytest.mark.parametrize('shape, decoded', [
    ((12, 64, 64, 3), (12, 64, 64, 3)),
    ((7, 64, 64, 1), (7, 64, 64, 3)),  # Grey frames become RGB.
    ((5, 63, 45, 3), (5, 64, 46, 3)),  # yuv420p needs even sides: one black row and column.
])
def test_mp4_decodes_to_every_frame_at_its_size(tmp_path, shape, decoded):
  frames = flat_frames(*shape)
  path = tmp_path / 'videos' / 'clip.mp4'
  summaries.write_video(path, frames)
  assert sorted(p.name for p in path.parent.iterdir()) == ['clip.mp4']  # No temporary left.
  assert path.read_bytes()[4:8] == b'ftyp'  # An MP4 (ISO media) file.
  video = iio.imread(path, plugin='FFMPEG', index=None)
  assert video.shape == decoded
  # Lossy, but each frame keeps its colour and the frames their order.
  height, width = shape[1:3]
  expected = frames if shape[-1] == 3 else np.repeat(frames, 3, -1)
  error = np.abs(video[:, :height, :width].astype(int) - expected).mean(axis=(1, 2, 3))
  assert error.max() < 8, error


def test_logger_gif_is_an_image_summary_tensorboard_plays(tmp_path):
  logger = logger_lib.Logger(tmp_path)
  video = np.random.default_rng(3).integers(0, 256, (6, 24, 40, 3), dtype=np.uint8)
  logger.gif('train', 1234, 'openloop/gif', video)
  logger.close()
  found = images(tmp_path / 'train')
  (step, data), = found['openloop/gif']
  assert step == 1234
  assert img_mime_type_detector.from_bytes(data) == 'image/gif'
  assert decode(data).shape == (6, 24, 40, 3)


def test_logger_metrics_lines_are_on_disk_at_once(tmp_path):
  # A run killed between flushes (kill -9, the end of a session) keeps every line written.
  logger = logger_lib.Logger(tmp_path)
  read = lambda: [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  logger.scalars('train', 65000, {'train/return': 386.0}, global_step=1, updates=6500)
  assert [(r['phase'], r['env_frames'], r['train/return']) for r in read()] == [
      ('train', 65000, 386.0)]
  logger.resume(60000, global_step=2, updates=6000)
  assert read()[1] == {'env_frames': 60000, 'phase': 'resume',
                       'wall_time': read()[1]['wall_time'], 'global_step': 2, 'updates': 6000}
  logger.close()


def test_predict_images_rolls_the_prior_open_loop():
  model = world_model.WorldModel(
      action_size=2, obs_shapes={'image': (64, 64, 3)}, stoch=4, deter=8, num_units=8,
      reward_layers=1, pcont_layers=1, cnn_depth=4, mean_only=True)
  rng = np.random.default_rng(4)
  data = {'image': rng.integers(0, 256, (2, 8, 64, 64, 3)).astype(np.uint8),
          'action': rng.uniform(-1, 1, (2, 8, 2)).astype(np.float32)}
  first = model.predict_images(model.preprocess(data, noise=False), context=3)
  assert {k: v.shape for k, v in first.items()} == {
      k: (2, 8, 64, 64, 3) for k in ('truth', 'reconstruction', 'prediction')}
  np.testing.assert_allclose(first['truth'].numpy() * 256, data['image'], atol=1e-3)
  np.testing.assert_allclose(first['prediction'][:, :3], first['reconstruction'][:, :3])
  for value in first.values():
    assert 0 <= value.numpy().min() and value.numpy().max() <= 1
  # Frames after the context never reach the open-loop prediction, but do reach the
  # (closed-loop) reconstructions.
  changed = dict(data, image=data['image'].copy())
  changed['image'][:, 3:] = 255 - changed['image'][:, 3:]
  second = model.predict_images(model.preprocess(changed, noise=False), context=3)
  np.testing.assert_allclose(first['prediction'], second['prediction'])
  assert not np.allclose(first['reconstruction'][:, 3:], second['reconstruction'][:, 3:])


def test_progress_lines_are_throttled_and_estimate_time_to_go():
  now = [0.0]
  lines = []
  progress = logger_lib.Progress('Seed train-dummy', 1000, 'frames', every=5, log=lines.append,
                                 clock=lambda: now[0])
  now[0] = 2.0
  assert not progress(100)
  now[0] = 10.0
  assert progress(500)
  now[0] = 12.0
  assert not progress(600)
  assert lines == ['Seed train-dummy: 500/1000 frames (50.0/s, 0:00:10 to go)']
  now[0] = 20.0
  progress(1500, 'extra')  # Past the estimate: no total, no time to go.
  assert lines[-1] == 'Seed train-dummy: 1500 frames (75.0/s) extra'
  silent = logger_lib.Progress('x', 10, every=0, log=lines.append, clock=lambda: now[0])
  now[0] = 100.0
  assert not silent(5)


@pytest.mark.parametrize('save_videos, kind', [
    (False, None), (True, 'gif'), ('gif', 'gif'), ('mp4', 'mp4')])
def test_save_videos_true_means_gif(save_videos, kind):
  assert train.video_format(types.SimpleNamespace(save_videos=save_videos)) == kind


def test_debug_run_writes_gifs_videos_metrics_and_progress(debug_run):
  logdir, _, out = debug_run  # The smoke config with MP4 videos (tests/conftest.py).
  run_dir = logdir / '00001'
  found = images(run_dir / 'train')
  steps = [step for step, _ in found['openloop/gif']]
  assert steps == [1000, 2000]  # Every train logging period, at env frames.
  # Smoke batches are 5 x 5: five sequences side by side, five frames.
  frames = decode(found['openloop/gif'][-1][1])
  assert frames.shape == (5, 3 * 64, 5 * 64, 3)
  acc = event_accumulator.EventAccumulator(str(run_dir / 'train'), size_guidance={'tensors': 0})
  acc.Reload()
  strip = tf.image.decode_png(acc.Tensors('openloop/strip')[-1].tensor_proto.string_val[2])
  assert strip.shape == (5 * 3 * 64, 5 * 64, 3)
  videos = images(run_dir / 'test')['test/video']
  assert [step for step, _ in videos] == [1000, 2000]  # One per test phase.
  assert decode(videos[0][1]).shape == (21, 64, 64, 3)
  saved = sorted((run_dir / 'videos').iterdir())  # Read back in test_tensorboard.py.
  assert [p.name for p in saved] == ['test_main_dummy-0000001000.mp4',
                                     'test_main_dummy-0000002000.mp4']
  records = [json.loads(line) for line in open(run_dir / 'metrics.jsonl')]
  for record in records:
    assert {'env_frames', 'phase', 'wall_time', 'global_step', 'updates'} <= set(record)
  test = [r for r in records if 'test/return' in r]
  assert len(test) == 5 and all(r['phase'] == 'test' for r in test)  # 1 seed + 4 eval.
  assert [r['updates'] for r in records if 'model/loss' in r and r['phase'] == 'train'] == [2, 4]
  assert 'Epoch 1 train phase: 1/2 iterations' in out
  assert 'Collect test_main_dummy: ' in out
  # The periodic line shows this process's memory and what the replay holds.
  usage = re.findall(r'^\[\d+ frames\] update \d+: .* \| memory (\d+\.\d\d) GB, replay (\d+) '
                     r'episodes, (\d+) frames, (\d+\.\d) MB$', out, re.M)
  assert usage, out[-3000:]
  for gigabytes, count, steps, megabytes in usage:
    assert float(gigabytes) > 0.1 and int(count) >= 1 and float(megabytes) > 0
    assert int(steps) == 21 * int(count)  # Dummy episodes: 20 steps and the first frame.
