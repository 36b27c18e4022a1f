"""dreamer.training.records: a resumed run's metrics.jsonl read as one line of training."""

import json

from dreamer.training import records


def write(path, rows, tail=''):
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + tail)


def test_each_resume_drops_the_records_beyond_its_frames(tmp_path):
  first = [{'env_frames': f, 'phase': 'test', 'test/return': f} for f in (0, 10, 20, 30)]
  second = [{'env_frames': f, 'phase': 'train', 'x': 2} for f in (30, 40)]
  third = [{'env_frames': f, 'phase': 'test', 'x': 3} for f in (10, 20)]
  rows = (first + [{'env_frames': 20, 'phase': 'resume'}] + second
          + [{'env_frames': 0, 'phase': 'resume'}] + third)
  write(tmp_path / 'metrics.jsonl', rows, tail='{"env_frames": 5')  # Still being written.
  # The checkpoint at 20 keeps 0-20 of the first process; starting again at 0 keeps
  # only what was recorded at frame 0 (random play).
  assert records.read(tmp_path / 'metrics.jsonl') == first[:1] + third


def test_a_run_without_resumes_is_read_as_written(tmp_path):
  rows = [{'env_frames': f, 'phase': p} for f in (0, 10, 10, 20) for p in ('train', 'test')]
  write(tmp_path / 'metrics.jsonl', rows)
  assert records.read(tmp_path / 'metrics.jsonl') == rows


def test_random_play_and_evaluations():
  rows = [
      {'env_frames': 0, 'phase': 'train', 'updates': 0, 'train/return': 999},
      {'env_frames': 0, 'phase': 'test', 'updates': 0, 'test/return': 10},
      {'env_frames': 1000, 'phase': 'test', 'updates': 0, 'test/return': 20},
      {'env_frames': 5000, 'phase': 'test', 'updates': 40, 'test/return': 300},
      {'env_frames': 5000, 'phase': 'test', 'updates': 40, 'test/score': 300},
      {'env_frames': 9000, 'phase': 'test', 'updates': 80, 'test/score': 500}]
  assert records.random_play(rows) == 15  # The test seed episodes, not the train ones.
  assert records.evaluations(rows) == [(5000, 300), (9000, 500)]
  assert records.random_play(rows[3:]) is None
