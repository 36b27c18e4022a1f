"""Training: the run manager, the training loop and logging."""
