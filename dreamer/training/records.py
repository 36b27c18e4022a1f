"""Reads a run's metrics.jsonl as one line of training, whatever resumes it went through.

A resumed run continues from its newest checkpoint, which may be older than the last
records its earlier process wrote; the logger then writes a `resume` record at the
restored env frames (0 when no checkpoint was saved). The records of the earlier process
beyond those frames belong to training that was lost: the resumed run's records replace
them here, while the file keeps everything. No TensorFlow, so plotting needs none.
"""

import json


def read(path):
  """The records of `path` that the run's training stands on, in the order written.

  A line still being written by a running job (not yet valid JSON) is skipped.
  """
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if record.get('phase') == 'resume':
        kept = [r for r in kept if r.get('env_frames', 0) <= record['env_frames']]
      else:
        kept.append(record)
  return kept


def random_play(records):
  """Mean return of the test directory's random seed episodes (recorded before any update),
  or None when the run has none."""
  seeds = [r['test/return'] for r in records if 'test/return' in r and r.get('updates') == 0]
  return sum(seeds) / len(seeds) if seeds else None


def evaluations(records):
  """[(env frames, score)] of the run's evaluations: each test phase's mean test return."""
  return [(r['env_frames'], r['test/score']) for r in records if 'test/score' in r]
