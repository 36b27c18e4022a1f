"""Episodes on disk and the sequence sampler that feeds training."""
