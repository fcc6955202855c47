"""The `convdesigner` command: a subcommand runs headless (engine.cli, no Qt loaded); nothing, Qt
options or a .h5 model / .json graph FILE open the designer; any other word is an unknown command
(one line, exit 2), never the designer."""
from __future__ import annotations

import sys
from pathlib import Path

DESIGNER_FILES = (".h5", ".hdf5", ".json")


def opens_designer(argv: list[str]) -> bool:
    """Nothing, options (Qt's), or a model or graph FILE first."""
    return (not argv or argv[0] not in ("-h", "--help") and argv[0].startswith("-")
            or Path(argv[0]).suffix.lower() in DESIGNER_FILES)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:   # a Ctrl+C while numpy, numba or Qt load ends quietly too
        if not opens_designer(argv):
            from engine.cli import main as headless_main

            return headless_main(argv)
        from .app import main as designer_main

        return designer_main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
