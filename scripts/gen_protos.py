"""Generate the Python code for every proto under proto/ into gen/.

This is the only way gen/ changes. It runs grpc_tools.protoc from the pinned
grpcio-tools with the googleapis protos of the installed
googleapis-common-protos package on the include path, and writes empty
``__init__.py`` files so that ``gen/`` is an import root. The typed stubs
(``*_pb2.pyi`` and ``*_pb2_grpc.pyi``, what mypy reads) come from the
protoc-gen-mypy and protoc-gen-mypy_grpc plugins of the pinned mypy-protobuf,
installed next to this interpreter. CI runs it and fails when the checked-in
gen/ differs.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import grpc_tools
from google.api import annotations_pb2  # from googleapis-common-protos

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GEN = ROOT / "gen"


def main() -> int:
    """Regenerate gen/ from scratch."""
    googleapis_root = pathlib.Path(annotations_pb2.__file__).resolve().parent.parent.parent
    well_known = pathlib.Path(grpc_tools.__file__).resolve().parent / "_proto"
    plugins = pathlib.Path(sys.executable).parent  # the virtualenv's bin/, not resolved
    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir()
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{googleapis_root}",
        f"-I{well_known}",
        f"--python_out={GEN}",
        f"--grpc_python_out={GEN}",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={GEN}",
        f"--mypy_grpc_out={GEN}",
        *protos,
    ]
    subprocess.run(command, check=True, cwd=PROTO)
    for directory in [GEN / "copytrade", *sorted((GEN / "copytrade").rglob("*"))]:
        if directory.is_dir() and directory.name != "__pycache__":
            (directory / "__init__.py").write_text("")
    print(f"generated {len(protos)} protos into {GEN.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
