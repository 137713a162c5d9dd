"""A model file of a run's last epoch (training keeps its best validation epoch; the checkpoint next
to the model holds the last weights), so both can be scored on the development test.

    python training/studies/last_epoch_model.py runs/x/model.safetensors runs/x/model_last.safetensors
"""

import argparse
from pathlib import Path

from speech_app.modelfile import load_model, save_model
from speech_app.training.trainer import checkpoint_path, read_checkpoint


def main(model: Path, out: Path) -> None:
    bundle = load_model(model)
    state = read_checkpoint(checkpoint_path(model))
    bundle.model.load_state_dict(state["model"])
    bundle.info = {**bundle.info, "note": f"last epoch ({state['epoch']}) of the run that wrote {model.name}"}
    save_model(out, bundle)
    print(f"wrote {out} (epoch {state['epoch']})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A model file of a run's last epoch, from the checkpoint "
                                                 "beside the run's model file.")
    parser.add_argument("model", type=Path, help="the run's model file (its checkpoint lies beside it)")
    parser.add_argument("out", type=Path, help="the model file of the last epoch to write")
    args = parser.parse_args()
    main(args.model, args.out)
