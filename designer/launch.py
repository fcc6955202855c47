"""The `convdesigner` command: a subcommand runs headless (engine.cli, no Qt loaded); anything
else opens the designer, optionally on FILE."""
from __future__ import annotations

import sys

from engine.cli import COMMANDS
from engine.cli import main as headless_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
        return headless_main(argv)
    from .app import main as designer_main

    return designer_main(argv)


if __name__ == "__main__":
    sys.exit(main())
