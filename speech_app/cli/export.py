"""`speech-app export`: the model and its MFCC front end as one ONNX graph."""

from __future__ import annotations

from pathlib import Path

from .exit_status import EXIT_OK, UsageError
from .options import add_model_option

HELP = "write the model (MFCC front end included) for ONNX Runtime"


def add_arguments(p) -> None:
    p.add_argument("out", type=Path, metavar="OUT.onnx")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    add_model_option(p)


def run(args) -> int:
    from ..atomic_files import check_writable
    from ..export import ExportError, export_onnx
    from ..modelfile import ModelFileError, load_model

    check_writable(args.out)  # before the model is read: the same rules as classify -o and train --out
    try:
        path = export_onnx(load_model(args.model), args.out)
    except (ModelFileError, ExportError) as err:
        raise UsageError(str(err)) from None
    print(path)
    return EXIT_OK
