"""Generate the Python stubs of ``proto/gaggle/wire/gaggle.proto`` into ``worker/gaggle/wire/``.

    python proto/generate.py            # rewrite worker/gaggle/wire/ (what `make proto` runs)
    python proto/generate.py --out DIR  # write elsewhere (the drift test compares the two)

The proto sits under ``gaggle/wire/`` so that the generated gRPC module imports its messages as
``gaggle.wire.gaggle_pb2``, the name they have once installed. The generator versions are pinned
in pyproject.toml so that the output is the same on every machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("gaggle/wire/gaggle.proto")
OUTPUTS = ("gaggle_pb2.py", "gaggle_pb2.pyi", "gaggle_pb2_grpc.py", "gaggle_pb2_grpc.pyi")


def generate(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        plugins = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside python
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"-I{ROOT / 'proto'}",
            f"--python_out={scratch}",
            f"--grpc_python_out={scratch}",
            f"--mypy_out={scratch}",
            f"--mypy_grpc_out={scratch}",
            str(ROOT / "proto" / PROTO),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            shutil.copyfile(Path(scratch) / PROTO.parent / name, out / name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "worker" / "gaggle" / "wire")
    generate(parser.parse_args().out)
    print(f"generated {', '.join(OUTPUTS)} in {parser.parse_args().out}", file=sys.stderr)
