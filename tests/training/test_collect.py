"""Collection schedule and exploration noise (SPEC 8.4, 8.7)."""

import pytest

from dreamer.training import collect


def make(**kwargs):
  envs = [object(), object()]
  return collect.Collection('train_main_x', envs, None, task='x', directory=None, **kwargs)


@pytest.mark.parametrize('ramp, minimum, step, expected', [
    (0, 0.0, 123, 0.4), (100, 0.0, 25, 0.1), (-1e7, 0.25, 5e6, 0.2), (-1e7, 0.25, 9e6, 0.1)])
def test_noise_schedule(ramp, minimum, step, expected):
  noise = make(noise_scale=0.4, noise_ramp=ramp, noise_min=minimum).noise(step)
  assert noise == pytest.approx([expected, expected])


def test_noise_factors_per_env():
  assert make(noise_scale=0.3, noise_factors=[1.0, 0.0]).noise(0) == pytest.approx([0.3, 0.0])
  with pytest.raises(ValueError, match='3 action noise factors for 2 envs'):
    make(noise_factors=[1, 1, 1]).noise(0)


def test_schedule_fires_every_period_after_the_start():
  collection = make(steps_after=10, steps_every=10)
  fired = [s for s in range(0, 60, 5) if collection.due(s, batch=5)]
  assert fired == [10, 20, 30, 40, 50]
