"""Dreamer: learning behaviours by latent imagination (Hafner et al., 2019), in TensorFlow 2."""

__version__ = '0.1.0'
