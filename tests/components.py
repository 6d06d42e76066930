"""The checkout's Python distributions, read from their pyproject.toml files: the folder of each,
the packages it provides, and what it declares (the layout and import-direction tests use them).

The namespace package ``flexledger`` has a portion in each component folder
(``chain/flexledger/chain/``, ``core/flexledger/errors.py``, ...); the edge agent provides its own
top-level package. Nothing here is hard-coded: a new component folder with a pyproject.toml joins.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flexledger.chain import paths

ROOT = paths.project_root()
NAMESPACE = "flexledger"


def normalise(distribution: str) -> str:
    """A distribution's name as PEP 503 compares them (``SQLAlchemy`` is ``sqlalchemy``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True)
class Component:
    name: str  # the distribution, normalised
    folder: Path  # the one holding its pyproject.toml
    source: Path  # the folder its editable install puts on sys.path
    tops: tuple[str, ...]  # the top-level packages it ships (flexledger: a namespace portion)
    requires: frozenset[str]  # the distributions it declares, normalised

    @cache  # noqa: B019 (components are few and live as long as the session)
    def portions(self) -> list[str]:
        """The names it provides directly under the namespace (``chain``; ``errors``, ``rules``, ...)."""
        namespace = self.source / NAMESPACE
        if NAMESPACE not in self.tops or not namespace.is_dir():
            return []
        return sorted(p.stem for p in namespace.iterdir()
                      if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.name != "__pycache__")

    def modules(self) -> Iterator[tuple[str, Path]]:
        """Every module it ships, by dotted name, with its file."""
        for top in self.tops:
            for file in sorted((self.source / top).rglob("*.py")):
                parts = file.relative_to(self.source).with_suffix("").parts
                yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), file


@cache
def components() -> tuple[Component, ...]:
    found = []
    for pyproject in [ROOT / "pyproject.toml", *sorted(ROOT.glob("*/pyproject.toml"))]:
        config = tomllib.loads(pyproject.read_text())
        if "project" not in config:
            continue
        where = config["tool"]["setuptools"]["packages"]["find"]
        include = where.get("include", [NAMESPACE])
        requires = frozenset(normalise(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0])
                             for d in config["project"].get("dependencies", []))
        found.append(Component(
            name=normalise(config["project"]["name"]),
            folder=pyproject.parent,
            source=(pyproject.parent / where["where"][0]).resolve(),
            tops=tuple(sorted({p.split(".")[0].rstrip("*") for p in include})),
            requires=requires,
        ))
    return tuple(found)


def provider(name: str) -> Component | None:
    """The component that ships the module ``name`` (a dotted name); None outside the checkout."""
    parts = name.split(".")
    for component in components():
        if parts[0] == NAMESPACE and len(parts) > 1:
            if parts[1] in component.portions():
                return component
        elif parts[0] in component.tops and parts[0] != NAMESPACE:
            return component
    return None
