"""Generate the typed Python stubs in pipelinejobs_client/api/v1 from protos/.

protoc names generated modules after the proto package (``pipelinejobs.v1``); we ship them inside
``pipelinejobs_client.api.v1`` instead so that no generic top-level package is installed, and
rewrite the generated imports accordingly (as temporalio's scripts/gen_protos.py does).

``--check`` regenerates into a temporary folder and fails if the committed files differ.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTO_PACKAGE_DIR = PROTO_ROOT / "pipelinejobs" / "v1"
TARGET = ROOT / "pipelinejobs_client" / "api" / "v1"
TARGET_PACKAGE = "pipelinejobs_client.api.v1"

# Only module references are rewritten: "pipelinejobs.v1.job_pb2" and "from pipelinejobs.v1 import".
# Type names inside the serialized descriptors (".pipelinejobs.v1.JobState") must stay as they are.
_MODULE_REF = re.compile(r"\bpipelinejobs\.v1\.(\w+_pb2(?:_grpc)?)\b")
_FROM_IMPORT = re.compile(r"^from pipelinejobs\.v1 import ", re.MULTILINE)

INIT_TEXT = '"""Generated protobuf and gRPC stubs for pipelinejobs.v1 (do not edit; run `make protos`)."""\n'


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # imported here so --help works without grpcio-tools

    raw = out_dir / "raw"
    raw.mkdir()
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_PACKAGE_DIR.glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    # The mypy-protobuf plugins are installed beside this interpreter, which may not be on PATH.
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={raw}",
        f"--mypy_out={raw}",
        f"--grpc_python_out={raw}",
        f"--mypy_grpc_out={raw}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    final = out_dir / "final"
    final.mkdir()
    for path in sorted((raw / "pipelinejobs" / "v1").iterdir()):
        text = path.read_text()
        text = _FROM_IMPORT.sub(f"from {TARGET_PACKAGE} import ", text)
        text = _MODULE_REF.sub(rf"{TARGET_PACKAGE}.\1", text)
        (final / path.name).write_text(text)
    (final / "__init__.py").write_text(INIT_TEXT)
    (final / "py.typed").write_text("")


def differences(generated: Path, committed: Path) -> list[str]:
    comparison = filecmp.dircmp(generated, committed, ignore=["__pycache__"])
    problems = [f"missing: {name}" for name in comparison.left_only]
    problems += [f"unexpected: {name}" for name in comparison.right_only]
    for name in comparison.common_files:
        if (generated / name).read_bytes() != (committed / name).read_bytes():
            problems.append(f"stale: {name}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        generate(out_dir)
        final = out_dir / "final"
        if options.check:
            problems = differences(final, TARGET) if TARGET.exists() else ["missing: " + str(TARGET)]
            for problem in problems:
                print(f"{problem} (run `make protos`)", file=sys.stderr)
            return 1 if problems else 0
        if TARGET.exists():
            shutil.rmtree(TARGET)
        shutil.copytree(final, TARGET)
    print(f"generated {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
