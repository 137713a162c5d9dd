"""Build speech_app/data/conversation_data/: the continuous speech the custom-word recipe carries.

    python training/make_conversation_speech.py [--data /work/shared/data/continuous_speech]

Only the learn side of training/conversation_split.json goes in (the measuring speakers never do):
- `train/`: what the recipe cuts into `_unknown_` windows (conversation_share);
- `calibrate/`: every CALIBRATE_EVERY-th learn LibriSpeech speaker, never trained on: what the recipe
  listens to after training to say how many false alarms per hour to expect.
Ogg Vorbis, 16 kHz mono, as the bundled negatives. The README beside them carries the attribution.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_conversation  # noqa: E402

from speech_app.audio import SAMPLE_RATE, load_audio  # noqa: E402

OUT = ROOT / "speech_app" / "data" / "conversation_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=bench_conversation.DATA / "continuous_speech")
    args = parser.parse_args()
    bench_conversation.DATA = args.data.parent
    for part in ("train", "calibrate"):
        for path, source in bench_conversation.split_files(f"learn-{part}"):
            out = OUT / part / source / f"{path.stem}.ogg"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out), load_audio(path), SAMPLE_RATE, format="OGG", subtype="VORBIS")
        files = sorted((OUT / part).rglob("*.ogg"))
        seconds = sum(sf.info(str(f)).duration for f in files)
        print(f"{part}: {len(files)} files, {seconds / 60:.1f} min, "
              f"{sum(f.stat().st_size for f in files) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
