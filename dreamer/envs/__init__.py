"""Environments: one adapter per suite plus plain-numpy wrappers. Never imports TensorFlow.

The interface every environment here follows:

  env.obs_space: dict of name -> Box, always including 'image' (uint8, H x W x C) for
      pixel tasks, plus any vector observations (float32) the task provides.
  env.act_space: Box; continuous in [low, high]^A, or `discrete=True` for one-hot
      actions in [0, 1]^A (the env takes the argmax).
  env.reset() -> obs dict.
  env.step(action) -> (obs dict, reward float, done bool, info dict). `info['done_reason']`
      is 'timeout' when the episode ended by a time limit (the step is not terminal).
  env.close().
"""
