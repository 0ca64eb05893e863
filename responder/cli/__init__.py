"""`respond`: the console entry point. It parses the command line (responder.cli.args,
which needs nothing but argparse), and only then imports the commands and with them the
AWS stack: `respond --help` and `--version` answer at once, and a leaked key's response
starts parsing before boto3 has loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from responder.cli.args import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from responder.cli import commands  # noqa: PLC0415 - the stack, only once a command runs

    return commands.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
