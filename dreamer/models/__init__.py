"""The world model: recurrent state-space model, encoder, decoder and prediction heads."""
