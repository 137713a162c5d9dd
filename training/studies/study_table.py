"""Per-word recall on real validation speech for several models, as a markdown table.

    python training/studies/study_table.py runs/study/real.safetensors runs/study/synthetic.safetensors ...
"""

import argparse
from pathlib import Path

from speech_app.modelfile import read_metadata


def main(paths: list[Path]) -> None:
    metas = {p.stem: read_metadata(p) for p in paths}
    labels = next(iter(metas.values()))["labels"]
    print("| word | " + " | ".join(metas) + " |")
    print("|---|" + "---|" * len(metas))
    for label in labels:
        cells = [f"{m['metrics']['validation']['recall'].get(label, float('nan')):.3f}" for m in metas.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| **accuracy** | " + " | ".join(f"**{m['metrics']['validation']['accuracy']:.3f}**" for m in metas.values()) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="model files, one column each")
    main(parser.parse_args().models)
