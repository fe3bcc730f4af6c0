"""The `torch-coreml` command line (also `python -m torch_coreml`).

    torch-coreml convert model.pt2 -o model.mlpackage [--precision float32] [--target iOS17]
    torch-coreml inspect model.mlpackage [--program] [--json]
    torch-coreml run model.mlpackage --input x=x.npy [-o outdir]
    torch-coreml analyze model.pt2 [--json]

`model.pt2` is a program written by `torch.export.save`. Results go to stdout. Any failure exits with
status 1 and one line on stderr, `torch-coreml: error: ...`; `--debug` prints the traceback instead,
`-v` shows the library's log messages and warnings. Bad usage exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from typing import Sequence

PROG = "torch-coreml"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: after the subcommand, only override what was given before it when actually given.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show log messages and warnings")

    parser = _Parser(prog=PROG, description="Convert, inspect and run Core ML models made from PyTorch.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("-v", "--verbose", action="store_true", help="show log messages and warnings")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser("convert", parents=[common], help="convert a torch.export program to .mlpackage",
                            description="Convert a program saved with torch.export.save to a Core ML package.")
    p.add_argument("model", metavar="MODEL.pt2", help="file written by torch.export.save")
    p.add_argument("-o", "--output", metavar="OUT.mlpackage", help="default: MODEL.mlpackage next to the input")
    _add_conversion_options(p)
    p.add_argument("--input-names", nargs="+", metavar="NAME", help="model input names, in order (a b or a,b)")
    p.add_argument("--output-names", nargs="+", metavar="NAME", help="model output names, in order (a b or a,b)")
    p.add_argument("--author", default="")
    p.add_argument("--license", default="")
    p.add_argument("--version", dest="model_version", default="", metavar="VERSION", help="the model's version")
    p.add_argument("--description", default="", help="short description stored in the package")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="user-defined metadata (repeatable)")
    p.add_argument("--verify", action="store_true",
                   help="run the package and eager PyTorch on the program's example inputs; print the errors")
    p.set_defaults(func="cmd_convert")

    p = commands.add_parser("inspect", parents=[common], help="describe a .mlpackage",
                            description="Inputs, outputs, metadata, target and MIL op histogram of a package.")
    p.add_argument("package", metavar="PKG.mlpackage")
    p.add_argument("--program", action="store_true", help="also print the MIL program")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func="cmd_inspect")

    p = commands.add_parser("run", parents=[common], help="run a .mlpackage on .npy inputs",
                            description="Run a package on .npy inputs; write one .npy per output.")
    p.add_argument("package", metavar="PKG.mlpackage")
    p.add_argument("-i", "--input", action="append", metavar="NAME=FILE.npy",
                   help="an input by name (repeatable); a bare FILE.npy if the model has one input")
    p.add_argument("-o", "--output", metavar="OUTDIR", help="directory for the output .npy files")
    p.set_defaults(func="cmd_run")

    p = commands.add_parser("analyze", parents=[common], help="report which ops of a program convert",
                            description="Coverage report of a torch.export program, without converting it.")
    p.add_argument("model", metavar="MODEL.pt2", help="file written by torch.export.save")
    _add_conversion_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func="cmd_analyze")
    return parser


def _add_conversion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=("float16", "float32"), default="float16",
                   help="compute precision (default float16)")
    p.add_argument("--target", metavar="TARGET", type=_target,
                   help="minimum deployment target: iOS15..iOS18 or macOS12..macOS15 (default iOS16)")


def _target(text: str) -> str:
    from .mil.targets import parse_target

    try:
        return parse_target(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    debug, verbose = args.debug, args.verbose or args.debug
    with warnings.catch_warnings(), _log_to_stderr(logging.DEBUG if debug else logging.INFO if verbose else None):
        if not verbose:
            # torch.export.load and friends warn about internals the user cannot act on.
            warnings.simplefilter("ignore")
        try:
            from . import cli_commands

            return getattr(cli_commands, args.func)(args)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if debug:
                traceback.print_exc()
            else:
                print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return 1


def _one_line(exc: BaseException) -> str:
    """The error as one line: the first line of its message, typed when it is not one of ours."""
    from .cli_commands import CLIError, first_line
    from .errors import TorchCoreMLError

    text = first_line(exc)
    if not isinstance(exc, (CLIError, TorchCoreMLError)):
        text = f"{type(exc).__name__}: {text}"
    if len(str(exc).strip().splitlines()) > 1:
        text += " (--debug shows the details)"
    return text


class _log_to_stderr:
    """Route the library's logging to stderr at `level` while a command runs (None: errors only)."""

    def __init__(self, level: int | None):
        self.level = level
        self.logger = logging.getLogger("torch_coreml")
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def __enter__(self):
        if self.level is not None:
            self.saved = self.logger.level
            self.logger.setLevel(self.level)
            self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc_info):
        if self.level is not None:
            self.logger.removeHandler(self.handler)
            self.logger.setLevel(self.saved)


if __name__ == "__main__":
    sys.exit(main())
