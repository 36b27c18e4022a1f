"""Pictures of what the agent learned: open-loop prediction GIFs, image strips, videos.

The grids are plain numpy; GIFs are encoded with Pillow, MP4 files with the ffmpeg binary
that the imageio-ffmpeg wheel ships.
"""

import io
import pathlib

import imageio.v3 as iio
import numpy as np
from PIL import Image

GIF_FPS = 20  # SPEC 9.3.
MAX_STRIP_FRAMES = 100


class VideoError(ValueError):
  """A video that cannot be written, explained in one line."""


def to_uint8(images):
  """Floats in [0, 1] -> uint8 (0.5 becomes 128); uint8 passes through."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images
  # A diverged model predicts NaN: show it black rather than as whatever the cast makes.
  images = np.nan_to_num(images, nan=0.0)
  return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def openloop_grid(truth, model):
  """The frames of the open-loop GIF: truth / model / error rows, sequences side by side.

  Args:
    truth, model: [N, T, H, W, C] floats in [0, 1].
  Returns:
    [T, 3H, N * W, C] uint8 frames; error = (model - truth + 1) / 2, so a perfect
    prediction is uniform grey.
  """
  truth, model = np.asarray(truth, np.float32), np.asarray(model, np.float32)
  if truth.shape != model.shape or truth.ndim != 5:
    raise ValueError(f'truth {truth.shape} and model {model.shape} must both be [N, T, H, W, C]')
  error = (model - truth + 1) / 2
  rows = np.concatenate([truth, model, error], 2)  # [N, T, 3H, W, C]
  num, length, height, width, channels = rows.shape
  frames = rows.transpose(1, 2, 0, 3, 4).reshape(length, height, num * width, channels)
  return to_uint8(frames)


def image_strip(*rows, max_frames=MAX_STRIP_FRAMES):
  """One still image: per sequence, the given rows stacked, time along the horizontal axis.

  Args:
    rows: arrays [N, T, H, W, C] in [0, 1] (e.g. truth, reconstruction, prediction).
  Returns:
    [N * len(rows) * H, min(T, max_frames) * W, C] uint8.
  """
  rows = [np.asarray(r)[:, :max_frames] for r in rows]
  stacked = np.stack(rows, 1)  # [N, R, T, H, W, C]
  num, count, length, height, width, channels = stacked.shape
  image = stacked.transpose(0, 1, 3, 2, 4, 5).reshape(
      num * count * height, length * width, channels)
  return to_uint8(image)


def encode_gif(frames, fps=GIF_FPS):
  """[T, H, W, C] uint8 (C = 1 or 3) -> bytes of an animated, looping GIF.

  Each colour frame gets its own 256-colour palette from Pillow's fast octree quantizer:
  about 2 ms for a 192x320 frame, against about 180 ms for the median cut that Pillow (and
  imageio through it) uses by default. Identical consecutive frames are merged into one
  longer frame by the encoder.
  """
  frames = to_uint8(frames)
  if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
    raise ValueError(f'GIF frames must be [T, H, W, 1 or 3], got {frames.shape}')
  if frames.shape[-1] == 1:
    images = [Image.fromarray(frame[..., 0], 'L') for frame in frames]
  else:
    images = [Image.fromarray(frame, 'RGB').quantize(256, method=Image.Quantize.FASTOCTREE)
              for frame in frames]
  out = io.BytesIO()
  images[0].save(out, format='GIF', save_all=True, append_images=images[1:],
                 duration=1000 / fps, loop=0)
  return out.getvalue()


def write_video(path, frames, fps=GIF_FPS):
  """Writes [T, H, W, C] frames as a GIF or MP4, chosen by the file extension."""
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  check_video_path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  # ffmpeg picks its container by the extension, so the temporary name keeps it.
  tmp = path.with_name(f'.{path.stem}.tmp{suffix}')
  try:
    if suffix == '.gif':
      tmp.write_bytes(encode_gif(frames, fps))
    else:
      encode_mp4(tmp, frames, fps)
    tmp.replace(path)
  finally:
    tmp.unlink(missing_ok=True)


def encode_mp4(path, frames, fps=GIF_FPS):
  """Writes [T, H, W, C] uint8 frames as H.264 in yuv420p, which every player decodes.

  yuv420p needs even sides: an odd height or width gets one more black row or column
  (ffmpeg would otherwise rescale every frame).
  """
  frames = to_uint8(frames)
  if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
    raise ValueError(f'video frames must be [T, H, W, 1 or 3], got {frames.shape}')
  if frames.shape[-1] == 1:
    frames = np.repeat(frames, 3, -1)
  _, height, width, _ = frames.shape
  frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
  iio.imwrite(path, frames, plugin='FFMPEG', fps=fps, codec='libx264',
              pixelformat='yuv420p', macro_block_size=2, ffmpeg_log_level='error')
  if not path.exists() or not path.stat().st_size:
    # The writer reports ffmpeg failures on stderr only.
    raise VideoError(f'ffmpeg wrote no video to {path}')


def check_video_path(path):
  """Raises VideoError unless a video can be written to `path` (checked before work)."""
  suffix = pathlib.Path(path).suffix.lower()
  if suffix == '.gif':
    return
  if suffix != '.mp4':
    raise VideoError(f"cannot write video '{path}': use a .gif or .mp4 file name")
  try:
    import imageio_ffmpeg  # noqa: F401
  except ImportError:
    raise VideoError(
        f"cannot write '{path}': MP4 needs the imageio-ffmpeg package "
        '(pip install imageio-ffmpeg); a .gif file works without it') from None


def write_predictions(logger, phase, frames, agent, data):
  """Open-loop GIF and reconstruction strip of a batch; nothing if the model has no images."""
  if agent.predict_images is None or 'image' not in data:
    return False
  images = {k: v.numpy() for k, v in agent.predict_images(data).items()}
  grid = openloop_grid(images['truth'], images['prediction'])
  logger.gif(phase, frames, 'openloop/gif', grid)
  strip = image_strip(images['truth'], images['reconstruction'], images['prediction'])
  logger.image(phase, frames, 'openloop/strip', strip)
  return True

