"""Synthetic training speech from the offline speech engines installed on this machine.

    summary = synthesize_words(["yes", "lights on"], Path("synthetic"), per_word=200)
    print(summary.table())

writes `synthetic/<word>/<engine>-<voice>_nohash_<n>.wav`: one-second 16 kHz mono clips, so the
dataset's speaker-hash split keeps each voice in one split. The `speech-app synth` subcommand is
`speech_app.cli.synth`; training data from text alone is `speech_app.synth.text_training`.
"""

from .engines import ALL_ENGINES, INSTALL_COMMAND, SpeechEngine, SynthesisError, available_engines
from .generator import NoEngineError, SynthSummary, SynthUsageError, synthesize_words

__all__ = [
    "ALL_ENGINES",
    "INSTALL_COMMAND",
    "NoEngineError",
    "SpeechEngine",
    "SynthSummary",
    "SynthUsageError",
    "SynthesisError",
    "available_engines",
    "synthesize_words",
]
