"""terraform/ and cloudbuild.yaml are checked statically (no terraform binary here)."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TF_FILES = sorted((REPO / "terraform").rglob("*.tf"))


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_terraform_file_parses(path):
    with path.open() as handle:
        assert hcl2.load(handle) is not None


def test_every_function_is_deployed_by_terraform():
    functions = sorted(p.parent.name for p in (REPO / "functions").glob("*/main.py"))
    main = (REPO / "terraform" / "main.tf").read_text()
    for name in functions:
        assert f"    {name} " in main or f"    {name}=" in main.replace(" = ", "="), name


def test_every_terraform_variable_is_typed_and_described():
    with (REPO / "terraform" / "variables.tf").open() as handle:
        variables = hcl2.load(handle)["variable"]
    for block in variables:
        [(name, body)] = block.items()
        assert "type" in body and body.get("description"), name
