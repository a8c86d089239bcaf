"""The Terraform tree as data (python-hcl2), for the offline checks of tests/unit.

python-hcl2 keeps HCL's quotes ('"fn"', '"python311"') and writes expressions as
"${...}"; `unquote` and `expression` undo that. Blocks come as lists of one-key dicts;
`resources` flattens them to (module, type, name, body).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULES = TERRAFORM / "modules"


@cache
def load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def text(value: Any) -> str:
    """A string literal's value: without its quotes, with HCL's \\" and \\\\ escapes undone."""
    return str(unquote(value)).replace('\\"', '"').replace("\\\\", "\\")


def expression(value: Any) -> str:
    """The expression inside "${...}" (or a literal string without its quotes)."""
    text = unquote(value)
    if isinstance(text, str) and text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


@dataclass(frozen=True)
class Resource:
    module: str  # the directory under terraform/modules (or environments/<env>)
    path: Path
    kind: str  # "resource" or "data"
    type: str
    name: str
    body: dict[str, Any]

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{self.module}: {prefix}{self.type}.{self.name}"


def blocks(path: Path, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for block in load(path).get(kind, []):
        for type_, named in block.items():
            for name, body in named.items():
                yield unquote(type_), unquote(name), body


def resources(directory: Path | None = None) -> list[Resource]:
    """Every resource and data block under `directory` (default: every module)."""
    found = []
    for path in sorted((directory or MODULES).rglob("*.tf")):
        for kind in ("resource", "data"):
            for type_, name, body in blocks(path, kind):
                found.append(Resource(path.parent.name, path, kind, type_, name, body))
    return found


def module_resources(module: str) -> dict[str, Resource]:
    """One module's resources by "type.name"."""
    return {f"{r.type}.{r.name}": r for r in resources(MODULES / module) if r.kind == "resource"}


def module_calls(path: Path) -> dict[str, dict[str, Any]]:
    return {unquote(name): body for block in load(path).get("module", []) for name, body in block.items()}


def locals_of(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load(path).get("locals", []):
        merged.update(block)
    return merged
