"""speech-app: recognize spoken commands with an MFCC front end and a bidirectional LSTM."""

__version__ = "0.1.0"
