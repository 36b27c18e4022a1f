"""The paper's published DeepMind Control returns, as package data (see README.md there)."""
