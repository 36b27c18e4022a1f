"""One logger, three outputs: TensorBoard events, metrics.jsonl and the console.

The x-axis of everything written here is environment frames.
"""

import datetime
import json
import pathlib
import time

import numpy as np
import tensorflow as tf

from dreamer.training import summaries


class Logger:
  """Writes scalars, images and GIFs per phase; `phase` is 'train' or 'test'.

  Every scalars() call is one line of metrics.jsonl: env_frames, phase, wall_time (Unix
  seconds), the counters given (global_step, updates) and every scalar by its tag.
  With `write=False` (the other workers of distribute: multi_worker, whose chief writes
  the run's summaries) nothing reaches a file; only print() goes to the console.
  """

  def __init__(self, run_dir, log=print, write=True):
    self._dir = pathlib.Path(run_dir)
    self._writers = {}
    self.writes = write
    self._jsonl = open(self._dir / 'metrics.jsonl', 'a') if write else None
    self._log = log

  def writer(self, phase):
    if phase not in self._writers:
      self._writers[phase] = tf.summary.create_file_writer(str(self._dir / phase))
    return self._writers[phase]

  def scalars(self, phase, frames, values, **counters):
    """Writes every scalar to TensorBoard and one line to metrics.jsonl."""
    if not self.writes:
      return
    values = {k: float(np.asarray(v)) for k, v in values.items()}
    with self.writer(phase).as_default():
      for name, value in values.items():
        tf.summary.scalar(name, value, step=int(frames))
    self._line(phase, frames, counters, values)

  def resume(self, frames, **counters):
    """Marks in metrics.jsonl that a resumed run trains on from `frames` env frames.

    Its earlier records beyond those frames are of training that was lost (see
    dreamer.training.records); TensorBoard shows both.
    """
    if self.writes:
      self._line('resume', frames, counters, {})

  def _line(self, phase, frames, counters, values):
    """One line of metrics.jsonl, on disk at once: a killed run keeps every line."""
    record = {'env_frames': int(frames), 'phase': phase, 'wall_time': round(time.time(), 3)}
    record.update({k: int(v) for k, v in counters.items()})
    record.update(values)
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()  # A few lines per episode.

  def image(self, phase, frames, name, image):
    """image: [H, W, C] uint8 or float in [0, 1]."""
    if not self.writes:
      return
    image = summaries.to_uint8(image)
    with self.writer(phase).as_default():
      tf.summary.image(name, image[None], step=int(frames))

  def gif(self, phase, frames, name, video, fps=summaries.GIF_FPS):
    """video: [T, H, W, C] uint8 or float in [0, 1]; TensorBoard's image tab plays it.

    The GIF bytes go in as the encoded image of an image summary; TensorBoard serves
    them as they are and the browser animates them.
    """
    if not self.writes:
      return
    video = summaries.to_uint8(video)
    _, height, width, channels = video.shape
    image = tf.compat.v1.Summary.Image(
        height=height, width=width, colorspace=channels,
        encoded_image_string=summaries.encode_gif(video, fps))
    proto = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=name, image=image)])
    with self.writer(phase).as_default():
      tf.summary.experimental.write_raw_pb(proto.SerializeToString(), step=int(frames))

  def print(self, message):
    self._log(message)

  def flush(self):
    if self._jsonl:
      self._jsonl.flush()
    for writer in self._writers.values():
      writer.flush()

  def close(self):
    self.flush()
    if self._jsonl:
      self._jsonl.close()
    for writer in self._writers.values():
      writer.close()


class Progress:
  """Progress of a long phase on the console, one plain line at most every `every` seconds.

  Example line: `Seed train-dummy: 1200/2500 frames (310.2/s, 0:00:04 to go)`.
  `start` is how far the phase already was when this began (a run resumed half-way).
  """

  def __init__(self, label, total=None, unit='frames', every=10.0, log=print,
               clock=time.monotonic, start=0):
    self._label, self._total, self._unit = label, total, unit
    self._every = every
    self._log = log
    self._clock = clock
    self._start = (clock(), start)
    self._last = self._start[0]

  def __call__(self, done, extra=''):
    """Reports that `done` units are done; prints if `every` seconds passed since the last."""
    now = self._clock()
    if not self._every or now - self._last < self._every:
      return False
    self._last = now
    start_time, start_done = self._start
    rate = (done - start_done) / max(now - start_time, 1e-9)
    total = self._total if self._total and done <= self._total else None
    text = f'{self._label}: {done}' + (f'/{total}' if total else '') + f' {self._unit} '
    text += f'({rate:.1f}/s'
    if total and rate > 0:
      left = datetime.timedelta(seconds=round((total - done) / rate))
      text += f', {left} to go'
    text += ')' + (f' {extra}' if extra else '')
    self._log(text)
    return True
