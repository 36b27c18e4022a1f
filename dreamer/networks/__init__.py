"""Neural network building blocks: layers, conv encoder/decoder, dense heads, distributions."""
