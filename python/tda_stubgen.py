"""Generates the Python gRPC stubs of tda's API (package tda.v1) from the .proto files.

Used by the package build (setup.py) and by CMake (the tda_python_stubs target):

    python3 tda_stubgen.py PROTO_DIR OUT_DIR

writes OUT_DIR/tda/v1/{attribution,jobs,admin}_pb2.py and _pb2_grpc.py. Uses grpc_tools.protoc
when it supports proto3 `optional` (grpcio-tools >= 1.32); otherwise `protoc` with
`grpc_python_plugin` from PATH (Debian 12's python3-grpc-tools, 1.14, is too old).
"""

import pathlib
import shutil
import subprocess
import sys
from typing import List

PROTOS = ["tda/v1/attribution.proto", "tda/v1/jobs.proto", "tda/v1/admin.proto"]


def _protoc_command() -> List[str]:
    try:
        import grpc_tools  # type: ignore
        from grpc_tools import protoc  # type: ignore  # noqa: F401

        version = tuple(int(p) for p in getattr(grpc_tools, "__version__", "0.0").split(".")[:2])
        if version >= (1, 32):
            return [sys.executable, "-m", "grpc_tools.protoc"]
    except (ImportError, ValueError):
        pass
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc is None or plugin is None:
        raise RuntimeError(
            "generating the tda stubs needs grpcio-tools >= 1.32 (pip install grpcio-tools) or "
            "protoc and grpc_python_plugin on PATH (Debian: apt-get install protobuf-compiler "
            "protobuf-compiler-grpc)")
    return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}"]


def generate_stubs(proto_dir: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Writes the tda.v1 stubs under out_dir (created if missing); raises on a protoc error."""
    proto_dir = proto_dir.resolve()
    missing = [p for p in PROTOS if not (proto_dir / p).is_file()]
    if missing:
        raise RuntimeError(f"no {missing[0]} under {proto_dir}: build from a tda checkout")
    out_dir.mkdir(parents=True, exist_ok=True)
    command = _protoc_command() + [
        f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"
    ] + [str(proto_dir / p) for p in PROTOS]
    subprocess.run(command, check=True)
    (out_dir / "tda" / "v1" / "__init__.py").touch()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tda_stubgen.py PROTO_DIR OUT_DIR")
    generate_stubs(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
