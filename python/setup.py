"""Build hook of the tda client package: generates the gRPC stubs from ../proto at build time.

`pip install ./python` runs `build_py`, which calls protoc on ../proto/tda/v1/*.proto and writes
tda/v1/*_pb2.py and *_pb2_grpc.py into the build directory (never into the source tree). The
stubs come from grpc_tools.protoc when it is new enough to know proto3 `optional` (grpcio-tools
>= 1.32), else from the system's protoc with grpc_python_plugin (Debian: protobuf-compiler,
protobuf-compiler-grpc).
"""

import pathlib
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tda_stubgen import generate_stubs  # noqa: E402


class BuildWithStubs(build_py):
    """build_py that also writes the generated tda.v1 modules into build_lib."""

    def run(self) -> None:
        super().run()
        proto_dir = pathlib.Path(__file__).resolve().parent.parent / "proto"
        generate_stubs(proto_dir, pathlib.Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithStubs})
