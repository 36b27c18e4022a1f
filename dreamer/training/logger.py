"""One logger, three outputs: TensorBoard events, metrics.jsonl and the console.

The x-axis of everything written here is environment frames.
"""

import json
import pathlib
import time

import numpy as np
import tensorflow as tf


class Logger:
  """Writes scalars (and images) per phase; `phase` is 'train' or 'test'."""

  def __init__(self, run_dir, log=print):
    self._dir = pathlib.Path(run_dir)
    self._writers = {}
    self._jsonl = open(self._dir / 'metrics.jsonl', 'a')
    self._log = log
    self._start = time.time()

  def writer(self, phase):
    if phase not in self._writers:
      self._writers[phase] = tf.summary.create_file_writer(str(self._dir / phase))
    return self._writers[phase]

  def scalars(self, phase, frames, values, **counters):
    """Writes every scalar to TensorBoard and one line to metrics.jsonl."""
    values = {k: float(np.asarray(v)) for k, v in values.items()}
    with self.writer(phase).as_default():
      for name, value in values.items():
        tf.summary.scalar(name, value, step=int(frames))
    record = {'env_frames': int(frames), 'phase': phase,
              'wall_time': round(time.time() - self._start, 3)}
    record.update({k: int(v) for k, v in counters.items()})
    record.update(values)
    self._jsonl.write(json.dumps(record) + '\n')

  def image(self, phase, frames, name, image):
    """image: [H, W, C] uint8 or float in [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
      image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    with self.writer(phase).as_default():
      tf.summary.image(name, image[None], step=int(frames))

  def print(self, message):
    self._log(message)

  def flush(self):
    self._jsonl.flush()
    for writer in self._writers.values():
      writer.flush()

  def close(self):
    self.flush()
    self._jsonl.close()
    for writer in self._writers.values():
      writer.close()
