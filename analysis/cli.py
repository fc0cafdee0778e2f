"""The ``iapo`` command line.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser) and is imported only when used, so ``iapo --help`` starts fast. Errors
are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand name -> module defining ``add_parser``.
COMMANDS = {
    "envs": "analysis.cmd_envs",
    "curves": "analysis.cmd_envs",
    "bench": "analysis.bench",
    "sweep": "analysis.cmd_sweep",
    "import": "analysis.cmd_import",
    "compare": "analysis.cmd_compare",
    "deceive": "analysis.cmd_analysis",
    "complexity": "analysis.cmd_analysis",
    "figures": "analysis.cmd_analysis",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iapo", description="Inference-aware prompt optimization toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"iapo {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("iapo: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
