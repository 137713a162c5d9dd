"""speech-app: recognize spoken commands with an MFCC front end and a bidirectional LSTM.

    from speech_app import CommandClassifier, load_audio
    classifier = CommandClassifier.from_file()          # the shipped 12-class model
    print(classifier.classify(load_audio("yes.wav")))   # Prediction(labels=['yes'], confidences=[0.98])
"""

__version__ = "0.1.0"

_EXPORTS = {
    "load_audio": "audio",
    "SAMPLE_RATE": "audio",
    "FeatureConfig": "features",
    "ModelConfig": "model",
    "load_model": "modelfile",
    "save_model": "modelfile",
    "CommandClassifier": "inference",
    "train": "training.trainer",
    "TrainConfig": "training.trainer",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """Import on first use: `import speech_app` stays instant, torch loads only when needed."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'speech_app' has no attribute {name!r}")
