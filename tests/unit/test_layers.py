"""The layering DESIGN promises, checked on the import statements themselves.

    shared/domain      the standard library only
    shared/licensing   the domain, its own modules and a few cross-cutting ones; never an
                       adapter (shared.seats|store|tokens|auth|ratelimit|http) nor a
                       backend library (redis, google.*, firebase_admin)
    functions/*        never each other;  shared/  never functions/
    no module named utils / helpers / manager anywhere (tests included)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ADAPTERS = ("shared.seats", "shared.store", "shared.tokens", "shared.auth", "shared.ratelimit", "shared.http",
            "shared.webhook_http", "shared.webhook_secrets", "shared.google_secrets",
            "shared.pubsub", "shared.smtp_mail")
BACKENDS = ("redis", "google", "firebase_admin", "grpc", "functions_framework", "flask", "urllib3", "smtplib")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _python_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", _python_files("shared/domain"), ids=lambda p: p.name)
def test_the_domain_needs_only_the_standard_library(path):
    foreign = {n for n in _imports(path) if n.split(".")[0] not in sys.stdlib_module_names
               and not n.startswith("shared.domain") and n != "__future__"}
    assert not foreign, f"{path.relative_to(REPO)} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", _python_files("shared/licensing"), ids=lambda p: p.name)
def test_use_cases_import_no_adapter_and_no_backend(path):
    bad = {n for n in _imports(path) if _under(n, ADAPTERS) or _under(n, BACKENDS)}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_functions_never_import_each_other_and_shared_never_imports_functions():
    for path in _python_files("functions") + _python_files("shared"):
        assert not {n for n in _imports(path) if _under(n, ("functions", "main"))}, path


def test_no_module_is_named_for_nothing_in_particular():
    vague = {"utils", "util", "helpers", "helper", "manager", "misc", "common"}
    named = [p for folder in ("shared", "functions", "scripts", "client", "tests") for p in _python_files(folder)
             if p.stem.lower() in vague or any(part.lower() in vague for part in p.relative_to(REPO).parts[:-1])
             or p.stem.lower().endswith(("_utils", "_helpers", "_manager"))]
    assert not named, [str(p.relative_to(REPO)) for p in named]
