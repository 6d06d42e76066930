"""Writing and checking the generated modules (errors, structs and bindings) beside the artifacts."""

from __future__ import annotations

from pathlib import Path

from .artifacts import all_artifacts
from .binding_codegen import generate_bindings
from .codegen import generate_revert_errors
from .errors import ArtifactError
from .struct_codegen import generate_structs

HERE = Path(__file__).resolve().parent
TARGETS = {"revert_errors.py": generate_revert_errors, "structs.py": generate_structs, "bindings.py": generate_bindings}


def _expected() -> dict[Path, str]:
    all_artifacts.cache_clear()
    artifacts = list(all_artifacts().values())
    return {HERE / name: make(artifacts) for name, make in TARGETS.items()}


def write_generated() -> list[Path]:
    written = []
    for path, text in _expected().items():
        path.write_text(text)
        written.append(path)
    return written


def check_generated() -> None:
    for path, text in _expected().items():
        if not path.is_file() or path.read_text() != text:
            raise ArtifactError(
                f"{path.name} does not match contracts/build",
                hint="run `flexledger compile` (or `make compile`) and commit the result",
            )
