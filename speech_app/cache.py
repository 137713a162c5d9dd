"""Where speech-app keeps what it can make again (decoded clips, synthetic speech, ONNX exports,
conversation windows): one folder per kind under the user's cache folder. No torch, no I/O."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder(kind: str) -> Path:
    """`$XDG_CACHE_HOME/speech-app/<kind>` (`~/.cache` when XDG_CACHE_HOME is unset)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "speech-app" / kind
