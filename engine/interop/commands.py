"""The `export` and `import` commands (DESIGN.md 3.3); engine/cli.py adds them to its parser."""
from __future__ import annotations

import sys
from pathlib import Path

from . import open_model


def cmd_export(args) -> int:
    from ..outputs import check_output, weights_note

    check_output(args.out, args.model, suffixes=(".onnx",) if args.to == "onnx" else (),
                 folder=args.to == "pytorch")
    model = open_model(args.model, args.weights or "best")
    if args.to == "onnx":
        from .onnx import export_onnx

        export_onnx(model, args.out, raw_inputs=args.raw_inputs)
    else:
        from .pytorch import export_pytorch

        if args.raw_inputs:
            model.normalization = None
        export_pytorch(model, args.out, origin=Path(args.model).name)
    if not args.quiet:   # the note after the export: an error stays one line
        note = weights_note(args.model, not model.initial, args.weights, model.best)
        if note:
            print(note, file=sys.stderr)
        print(f"wrote {args.out}")
    return 0


def cmd_import(args) -> int:
    from ..outputs import MODEL_SUFFIXES, check_output
    from .importers import import_model

    check_output(args.out, args.source, suffixes=MODEL_SUFFIXES)
    import_model(args.source, args.out)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("export", help="write MODEL as ONNX or as PyTorch code and weights")
    p.add_argument("model")
    p.add_argument("--to", choices=("onnx", "pytorch"), required=True)
    p.add_argument("--out", required=True, help="the .onnx file, or the folder for model.py "
                   "and model.safetensors")
    p.add_argument("--weights", choices=("best", "last"),
                   help="the best epoch's weights where the file keeps them (default), or the last")
    p.add_argument("--raw-inputs", action="store_true",
                   help="leave the stored normalisation out: inputs are already normalised")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("import", help="build a model file from ONNX or a Keras .h5/.keras file")
    p.add_argument("source")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=cmd_import)

