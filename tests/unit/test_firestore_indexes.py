"""Every Firestore query the store makes has the composite index it needs in Terraform.

Google's emulator answers any query; Firestore refuses one that needs a composite index
nobody created (FAILED_PRECONDITION), so a missing index would first show in the cloud.
This reads each query of shared/store/ from the code (its collection, `where` filters and
`order_by`), every variant of it (a filter inside an `if` is optional), and asks for the
index Firestore would: the equality fields, then the field of the inequality or the
order. A query over one field, or of equalities only, needs none.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

from tests.unit.terraform_tree import MODULES, load, text

REPO = Path(__file__).resolve().parents[2]
STORE = sorted((REPO / "shared" / "store").glob("*.py"))
RANGE_OPS = {"<", "<=", ">", ">=", "!=", "not-in"}
# (collection, equality fields, order) -> why no query of that shape is ever made
UNREACHED: dict[tuple[str, tuple[str, ...], tuple[str, str]], str] = {}


@dataclass(frozen=True)
class Clause:
    field: str
    kind: str  # "eq" | "range" | "order"
    direction: str = "ASCENDING"
    optional: bool = False


def _constant(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _clauses(function: ast.FunctionDef) -> tuple[str | None, list[Clause]]:
    optional_nodes = {id(n) for stmt in ast.walk(function) if isinstance(stmt, ast.If)
                      for body in stmt.body for n in ast.walk(body)}
    collection, clauses = None, []
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, optional = node.func.attr, id(node) in optional_nodes
        if name == "collection" and node.args:
            collection = _constant(node.args[0]) or collection
        elif name == "where":
            [keyword] = [k for k in node.keywords if k.arg == "filter"]
            assert isinstance(keyword.value, ast.Call), ast.unparse(node)
            field, op = (_constant(a) for a in keyword.value.args[:2])
            assert field and op, f"a filter the check cannot read: {ast.unparse(node)}"
            clauses.append(Clause(field, "range" if op in RANGE_OPS else "eq", optional=optional))
        elif name == "order_by" and node.args and (field := _constant(node.args[0])):
            direction = next((ast.unparse(k.value).rsplit(".", 1)[-1] for k in node.keywords if k.arg == "direction"),
                             "ASCENDING")
            clauses.append(Clause(field, "order", direction, optional))
    return collection, clauses


def needed_indexes() -> dict[tuple[str, tuple[str, ...], tuple[str, str]], str]:
    """(collection, equality fields sorted, (inequality/order field, direction)) -> where."""
    needed = {}
    for path in STORE:
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef):
                continue
            collection, clauses = _clauses(function)
            optional = [c for c in clauses if c.optional]
            for size in range(len(optional) + 1):
                for chosen in itertools.combinations(optional, size):
                    variant = [c for c in clauses if not c.optional] + list(chosen)
                    ordered = [c for c in variant if c.kind != "eq"]
                    equal = sorted({c.field for c in variant if c.kind == "eq"} - {c.field for c in ordered})
                    if not ordered or not equal:
                        continue  # one field, or equalities only: single-field indexes serve it
                    fields = {c.field for c in ordered}
                    assert len(fields) == 1, f"{function.name}: inequalities or orders on {sorted(fields)}"
                    last = ordered[-1] if ordered[-1].kind == "order" else ordered[0]
                    assert collection, f"{path.name}:{function.name}: a query whose collection the check cannot read"
                    needed[(collection, tuple(equal), (last.field, last.direction))] = f"{path.name}:{function.name}"
    return needed


def terraform_indexes() -> set[tuple[str, tuple[str, ...], tuple[str, str]]]:
    indexes = set()
    for block in load(MODULES / "firestore" / "main.tf")["locals"]:
        for entry in block.get("indexes", {}).values():
            fields = [text(f) for f in entry["fields"]]
            *equal, last = fields
            direction = "DESCENDING" if last.startswith("-") else "ASCENDING"
            indexes.add((text(entry["collection"]), tuple(sorted(equal)), (last.lstrip("-"), direction)))
    return indexes


def test_every_query_that_needs_a_composite_index_has_it_in_terraform():
    missing = {key: where for key, where in needed_indexes().items()
               if key not in terraform_indexes() and key not in UNREACHED}
    assert not missing, f"add these to terraform/modules/firestore/main.tf's indexes: {missing}"


def test_the_check_reads_the_queries_it_should():
    needed = needed_indexes()
    assert needed[("usage_days", ("license_id",), ("day", "ASCENDING"))].endswith("license_days")
    assert needed[("sessions", ("license_id",), ("ended_at", "ASCENDING"))].endswith("sessions_overlapping")
    assert needed[("events", ("tenant_id",), ("at", "DESCENDING"))].endswith("list_events")
    assert all(key in needed for key in UNREACHED), "an exemption no query needs any more"
