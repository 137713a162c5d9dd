"""Average the weights of two fine-tunes of the same base into one model file (a "model soup").

    python training/average_models.py MAIN.safetensors OTHER.safetensors --weight 0.3 --out OUT.safetensors

Every float tensor becomes (1 - w) * MAIN + w * OTHER, batch-norm statistics and feature
normalisation included; integer tensors (the batch-norm step counter) and the metadata come from
MAIN. Averaging only makes sense between models that share labels, architecture and feature
settings, and in practice a common starting point (two fine-tunes of one base): models trained from
different random starts do not average into a working model, and this script cannot tell them
apart, so the caller vouches for the common base.

The metadata records that the file is an average (of which files, with which weights), keeps the
main model's training history, lists the training data of both (so the model card's voice licences
cover everything the weights learned from), and moves each model's own validation metrics under
`averaged` (they are not the average's). Reads and writes safetensors + JSON only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from speech_app.model import average_weights
from speech_app.modelfile import ModelBundle, ModelFileError, load_model, save_model

SETTINGS_COMPARED = ("labels", "features", "model")  # what two averaged models must share


class AverageError(Exception):
    """Models that cannot be averaged; the message is one line naming both files."""


def settings(bundle: ModelBundle) -> dict:
    return {"labels": list(bundle.labels), "features": bundle.features.to_dict(),
            "model": bundle.model.config.to_dict()}


def check_compatible(main: ModelBundle, other: ModelBundle) -> None:
    ours, theirs = settings(main), settings(other)
    for key in SETTINGS_COMPARED:
        if ours[key] != theirs[key]:
            differing = (sorted(k for k in ours[key] if ours[key].get(k) != theirs[key].get(k))
                         if isinstance(ours[key], dict) else [])
            detail = f" ({', '.join(differing)})" if differing else f" ({ours[key]} vs {theirs[key]})"
            raise AverageError(f"{main.path} and {other.path}: cannot average, their {key} settings differ{detail}")


def averaged_tensors(main: ModelBundle, other: ModelBundle, weight: float) -> dict[str, torch.Tensor]:
    return average_weights([main.model.state_dict(), other.model.state_dict()], [1 - weight, weight])


def averaged_info(main: ModelBundle, other: ModelBundle, weight: float, note: str | None) -> dict:
    info = {k: v for k, v in main.info.items() if k not in ("metrics", "averaged", "package_version", "format_version")}
    trained, theirs = dict(info.get("trained_on", {})), other.info.get("trained_on", {})
    for key in ("data", "synthetic"):  # the average learned from both models' data
        trained[key] = list(dict.fromkeys(trained.get(key, []) + theirs.get(key, [])))
    info["trained_on"] = trained
    info["averaged"] = {
        "rule": "float tensors (1 - w) * main + w * other; integer tensors and training history from main",
        "main": {"file": str(main.path), "weight": 1 - weight, "metrics": main.info.get("metrics", {})},
        "other": {"file": str(other.path), "weight": weight, "metrics": other.info.get("metrics", {}),
                  "trained_on": theirs, "training": other.info.get("training", {})},
    }
    if note:
        info["note"] = note
    return info


def average(main_path: Path, other_path: Path, weight: float, out: Path, note: str | None = None) -> Path:
    if not 0.0 <= weight <= 1.0:
        raise AverageError(f"--weight {weight}: must be between 0 and 1 (the other model's share)")
    main, other = load_model(main_path), load_model(other_path)
    check_compatible(main, other)
    main.model.load_state_dict(averaged_tensors(main, other, weight))
    return save_model(out, ModelBundle(main.model, main.labels, main.features, averaged_info(main, other, weight, note)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("main", type=Path, help="the model whose metadata and training history the average keeps")
    parser.add_argument("other", type=Path)
    parser.add_argument("--weight", type=float, required=True, help="the other model's share w, 0-1")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", help="a line for the model's metadata (shown in the app's model card)")
    args = parser.parse_args()
    try:
        written = average(args.main, args.other, args.weight, args.out, args.note)
    except (AverageError, ModelFileError) as err:
        sys.exit(f"average_models: {err}")
    print(f"{written}: {1 - args.weight:g} x {args.main} + {args.weight:g} x {args.other}")


if __name__ == "__main__":
    main()
