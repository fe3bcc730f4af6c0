#!/usr/bin/env python3
"""Regenerate torch_coreml/format/proto/coreml_pb2.py from coreml.proto.

Why a pinned, old generator: a generated module must not be newer than the protobuf runtime that
loads it, so the generator's version is the project's protobuf lower bound. grpcio-tools 1.63.2
bundles protoc 26.1, whose Python output (gencode 5.26.1) also carries no runtime version check,
so the committed module loads without warnings on protobuf 5.26.1 up to the current 7.x.

    python scripts/regen_proto.py            # install the pinned grpcio-tools in a temp dir, regenerate
    python scripts/regen_proto.py --check    # exit 1 if the committed module differs from a fresh one
    python scripts/regen_proto.py --installed  # use the grpcio-tools already installed (raises the bound!)

The pinned wheel exists for CPython 3.8-3.12; on a newer interpreter run the script under 3.12.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PINNED_GRPCIO_TOOLS = "1.63.2"
EXPECTED_GENCODE = "5.26.1"  # the protobuf>= lower bound the generated module needs

REPO = Path(__file__).resolve().parent.parent
PROTO = Path("torch_coreml/format/proto/coreml.proto")
GENERATED = PROTO.with_name("coreml_pb2.py")


def generate(out_dir: Path, tools_dir: Path | None) -> Path:
    env = dict(os.environ)
    if tools_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tools_dir), env.get("PYTHONPATH")]))
    # -I at the repo root makes the descriptor's file name the full package path, so it cannot
    # clash with another library's "coreml.proto" in the shared descriptor pool.
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO), f"--python_out={out_dir}", str(PROTO)]
    subprocess.run(command, check=True, env=env, cwd=REPO)
    return out_dir / GENERATED


def install_pinned_tools(target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
               f"grpcio-tools=={PINNED_GRPCIO_TOOLS}"]
    subprocess.run(command, check=True)


def gencode_version(source: str) -> str:
    match = re.search(r"^# Protobuf Python Version: (\S+)$", source, re.MULTILINE)
    return match.group(1) if match else "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed module, write nothing")
    parser.add_argument("--installed", action="store_true", help="use the installed grpcio-tools, not the pin")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        tools_dir = None
        if not args.installed:
            tools_dir = scratch / "tools"
            install_pinned_tools(tools_dir)
        (scratch / "out").mkdir()
        text = generate(scratch / "out", tools_dir).read_text()

    version = gencode_version(text)
    if version != EXPECTED_GENCODE:
        print(f"warning: generated code is for protobuf {version}, expected {EXPECTED_GENCODE}; "
              f"the protobuf lower bound in pyproject.toml must be >= {version}", file=sys.stderr)

    committed = REPO / GENERATED
    if args.check:
        if not committed.exists() or committed.read_text() != text:
            print(f"{GENERATED} is stale: run python scripts/regen_proto.py", file=sys.stderr)
            return 1
        print(f"{GENERATED} is up to date (gencode {version})")
        return 0
    committed.write_text(text)
    print(f"wrote {GENERATED} (gencode {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
