"""Synthetic training speech from the offline speech engines installed on this machine.

    summary = synthesize_words(["yes", "lights on"], Path("synthetic"), per_word=200)
    print(summary.table())

writes `synthetic/<word>/<engine>-<voice>_nohash_<n>.wav`: one-second 16 kHz mono clips, so the
dataset's speaker-hash split keeps each voice in one split. The CLI adds `speech-app synth` with
`add_synth_arguments` and `run_synth`.
"""

from .command import add_synth_arguments, run_synth
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
    "add_synth_arguments",
    "available_engines",
    "run_synth",
    "synthesize_words",
]
