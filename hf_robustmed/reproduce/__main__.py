"""``python -m hf_robustmed.reproduce`` (e.g. under ``accelerate launch``): the ``hf-robustmed reproduce`` command.

An entry point, like ``hf_robustmed.cli``: the library below it never imports the command line.
"""

import sys
from collections.abc import Sequence

from ..cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``hf-robustmed reproduce`` with ``argv`` (default: the process's arguments)."""
    return cli_main(["reproduce", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
