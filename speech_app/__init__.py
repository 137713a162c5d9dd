"""speech-app: recognize spoken commands with an MFCC front end and a bidirectional LSTM.

    from speech_app import CommandClassifier, load_audio
    classifier = CommandClassifier.from_file()          # the shipped 12-class model
    print(classifier.classify(load_audio("yes.wav")))   # Prediction(labels=['yes'], confidences=[0.98])

The README's "Python API" section shows the rest: streaming detection (`StreamingRecognizer`),
custom words from takes or text (`train_custom_words`), model files and their cards (`load_model`,
`model_card`). tests/test_api_examples.py runs those examples.
"""

__version__ = "0.1.0"

_EXPORTS = {  # public name -> the module (relative to this package) that defines it
    "load_audio": "audio",
    "SAMPLE_RATE": "audio",
    "AudioDecodeError": "audio",
    "FeatureConfig": "features",
    "ModelConfig": "model",
    "load_model": "modelfile",
    "save_model": "modelfile",
    "read_metadata": "modelfile",
    "ModelBundle": "modelfile",
    "ModelFileError": "modelfile",
    "model_card": "card",  # Markdown, no Qt: the card the app's Models panel shows
    "CommandClassifier": "inference",
    "Prediction": "inference",
    "FileResult": "inference",
    "StreamingRecognizer": "streaming",
    "RecognizerSettings": "streaming",
    "Detection": "streaming",
    "recognize_file": "streaming",
    "train": "training.trainer",
    "TrainConfig": "training.trainer",
    "train_custom_words": "training.custom_words",
    "CustomWordsRecipe": "training.custom_words",
    "synthesize_for_words": "training.custom_words",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """Import on first use: `import speech_app` stays instant, torch loads only when needed."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'speech_app' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names too, for tab completion, though none is imported yet."""
    return sorted(set(globals()) | set(__all__))
