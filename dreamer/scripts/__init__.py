"""Entry points: read flags and config, build components with factories, call training."""
