"""Add the starting model's training data to a fine-tune's metadata (`trained_on`), in place.

    python training/inherit_trained_on.py START.safetensors FINE_TUNE.safetensors

`speech-app train --init-from` records only the data of its own run, but the fine-tune's weights
learned from the starting model's data too: the model card lists the synthetic voices (and their
licences) from `trained_on`, so the shipped on/off fine-tune (train_speech_commands_12_onoff.sh)
must name its start's folders as well. The start's metadata is kept under `fine_tuned_from`.
Reads and writes safetensors + JSON only (through a temporary file and a rename).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech_app.modelfile import ModelBundle, ModelFileError, load_model, save_model


def inherit(start_path: Path, model_path: Path) -> Path:
    start, model = load_model(start_path), load_model(model_path)
    info = dict(model.info)
    trained, theirs = dict(info.get("trained_on", {})), start.info.get("trained_on", {})
    for key in ("data", "synthetic"):
        trained[key] = list(dict.fromkeys(trained.get(key, []) + theirs.get(key, [])))
    info["trained_on"] = trained
    info["fine_tuned_from"] = {"file": str(start_path), "trained_on": theirs, "note": start.info.get("note", ""),
                               "averaged": start.info.get("averaged", {})}
    return save_model(model_path, ModelBundle(model.model, model.labels, model.features, info))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=Path)
    parser.add_argument("model", type=Path)
    args = parser.parse_args()
    try:
        print(f"{inherit(args.start, args.model)}: trained_on now includes {args.start}'s data")
    except ModelFileError as err:
        sys.exit(f"inherit_trained_on: {err}")


if __name__ == "__main__":
    main()
