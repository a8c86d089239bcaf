"""Each function's service account may make every Google API call its code makes, and no more.

Offline check 1 of issue 12. Three inputs:

- tests/unit/iam/role_permissions.json: the permissions of the predefined roles Terraform
  grants, from Google's IAM role reference (URL and date per role). Custom roles are read
  from the .tf files themselves.
- tests/unit/iam/api_calls.json: the Google API calls the code can make, the permission
  Google documents for each and what it is checked on; and a short hand-kept list of calls
  the import graph reaches but a function never makes, each with a reason and a guard.
- derived here: which function reaches which call. A function's import closure (every
  import that can run, lazy ones included: the runtime imports its adapters inside
  properties) gives the modules it may execute; the calls found in those modules, minus
  those whose client library its bundle does not carry (functions/<name>/requirements.in,
  which tests/system/test_bundles.py proves sufficient), minus the hand-kept list, are
  what it needs. Each hand-kept entry names a guard, checked here against the code, so an
  entry that stops being true fails instead of hiding a need.

Terraform's side: every IAM grant in terraform/ (python-hcl2), with its `for_each`
evaluated where it decides who the member is or which role it grants. Only a few shapes
are understood (`local.functions`, `{ for name, fn in local.functions : name => fn if
fn.<flag> }`, `toset([...])`, a local holding one of these); anything else fails loudly.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.unit.terraform_tree import load, unquote

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
FUNCTIONS_MODULE = TERRAFORM / "modules" / "functions" / "main.tf"
DATA = Path(__file__).resolve().parent / "iam"
PROJECT = "project"  # the scope of a project-wide grant, and the target of a project-wide call
OWN_ACCOUNT = "${google_service_account.function[each.key].email}"
SIGN = "cloudkms.cryptoKeyVersions.useToSign"
READ_SECRET = "secretmanager.versions.access"


class NotUnderstood(AssertionError):
    """A Terraform or code shape this checker does not evaluate: extend it rather than guess."""


# -- data files ----------------------------------------------------------------------------

@cache
def _snapshot() -> dict[str, dict]:
    return json.loads((DATA / "role_permissions.json").read_text())["roles"]


@cache
def _calls() -> dict:
    return json.loads((DATA / "api_calls.json").read_text())


# -- Terraform -----------------------------------------------------------------------------

def _expression(value: object) -> str | None:
    """The expression of a "${...}" value; None for a literal."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return None


def _resources(module: dict) -> Iterator[tuple[str, str, dict]]:
    for block in module.get("resource", []):
        for kind, bodies in block.items():
            for name, body in bodies.items():
                if not name.startswith("__"):
                    yield kind.strip('"'), name.strip('"'), body


def _locals(module: dict) -> dict:
    return {key: value for block in module.get("locals", []) for key, value in block.items()
            if not key.startswith("__")}


@cache
def _function_flags() -> dict[str, dict]:
    """locals.functions of terraform/modules/functions: name -> its flags (signs, uses_store, ...)."""
    return _locals(load(FUNCTIONS_MODULE))["functions"]


_SELECTION = re.compile(r"\{for (\w+), (\w+) in local\.functions : \1 => \2 if \2\.(\w+)\}")
_TOSET = re.compile(r'toset\(\[\s*((?:"[^"]*"\s*,?\s*)*)\]\)')


def evaluate_for_each(for_each: object, local_values: Mapping, functions: Mapping[str, Mapping]) -> dict[str, str]:
    """each.key -> each.value (a function's name, or the string of a toset) of a for_each."""
    expression = _expression(for_each)
    if expression is None:
        raise NotUnderstood(f"for_each = {for_each!r}")
    local = re.fullmatch(r"local\.(\w+)", expression)
    if local and local.group(1) == "functions":
        return {name: name for name in functions}
    if local:
        if local.group(1) not in local_values:
            raise NotUnderstood(f"for_each = {for_each!r}: no such local")
        return evaluate_for_each(local_values[local.group(1)], local_values, functions)
    selection = _SELECTION.fullmatch(expression)
    if selection:
        flag = selection.group(3)
        unflagged = [name for name, fn in functions.items() if not isinstance(fn.get(flag), bool)]
        if unflagged:
            raise NotUnderstood(f"for_each filters on {flag}, which {unflagged} do not set to true or false")
        return {name: name for name, fn in functions.items() if fn[flag] is True}
    strings = _TOSET.fullmatch(expression)
    if strings:
        values = re.findall(r'"([^"]*)"', strings.group(1))
        return {value: value for value in values}
    raise NotUnderstood(f"for_each = {for_each!r}")


_ACCOUNT = re.compile(r'serviceAccount:\$\{google_service_account\.(\w+)(?:\[(each\.key|"\w+")\])?\.email\}')


def parse_members(member: object, instances: Mapping[str, str] | None) -> list[str]:
    """The principals of a member: "function:<name>" for a function's own account."""
    text = unquote(member)
    if not isinstance(text, str):
        raise NotUnderstood(f"member = {member!r}")
    account = _ACCOUNT.fullmatch(text)
    if account and account.group(1) == "function":
        index = account.group(2)
        if index == "each.key":
            if instances is None:
                raise NotUnderstood(f"member = {member!r} without a for_each")
            return [f"function:{key}" for key in instances]
        if index:
            return [f"function:{index.strip(chr(34))}"]
        raise NotUnderstood(f"member = {member!r}")
    if "google_service_account.function" in text or "each." in text:
        raise NotUnderstood(f"member = {member!r}")
    return [text]


def parse_roles(role: object, instances: Mapping[str, str] | None) -> list[str]:
    """"roles/..." for a predefined role, "custom:<resource name>" for a google_project_iam_custom_role."""
    literal = unquote(role)
    if isinstance(literal, str) and re.fullmatch(r"roles/[\w.]+", literal):
        return [literal]
    expression = _expression(role)
    custom = re.fullmatch(r"google_project_iam_custom_role\.(\w+)\.(?:name|id)", expression or "")
    if custom:
        return [f"custom:{custom.group(1)}"]
    if expression == "each.value" and instances is not None:
        values = list(instances.values())
        if all(re.fullmatch(r"roles/[\w.]+", value) for value in values):
            return values
    raise NotUnderstood(f"role = {role!r}")


# The attribute naming what an IAM member resource grants on.
_SCOPE = {
    "google_project_iam_member": "project",
    "google_kms_crypto_key_iam_member": "crypto_key_id",
    "google_pubsub_topic_iam_member": "topic",
    "google_pubsub_subscription_iam_member": "subscription",
    "google_secret_manager_secret_iam_member": "secret_id",
    "google_storage_bucket_iam_member": "bucket",
    "google_cloud_run_service_iam_member": "service",
    "google_service_account_iam_member": "service_account_id",
}


@dataclass(frozen=True)
class Grant:
    principal: str  # "function:<name>", or the member as written for anyone else
    role: str  # "roles/..." or "custom:<name>"
    scope: str  # PROJECT, or the Terraform expression naming the resource
    resource: str  # where it is written, for messages


def grants_of(module: dict, functions: Mapping[str, Mapping], where: str = "") -> list[Grant]:
    """Every IAM grant a module's resources make."""
    local_values = _locals(module)
    found = []
    for kind, name, body in _resources(module):
        if not re.search(r"_iam_(member|binding|policy)$", kind):
            continue
        address = f"{where}{kind}.{name}"
        if kind.endswith("_iam_policy"):
            raise NotUnderstood(f"{address}: an authoritative policy")
        members = body["members"] if kind.endswith("_iam_binding") else [body["member"]]
        needs_each = any("each." in str(value) for value in [body["role"], *members])
        instances = evaluate_for_each(body["for_each"], local_values, functions) if needs_each else None
        principals = [principal for member in members for principal in parse_members(member, instances)]
        roles = parse_roles(body["role"], instances)
        for_functions = [p for p in principals if p.startswith("function:")]
        attribute = _SCOPE.get(kind.removesuffix("_binding") + "_member" if kind.endswith("_binding") else kind)
        scope = body.get(attribute) if attribute else None
        if for_functions and (scope is None or "each." in str(scope)):
            raise NotUnderstood(f"{address}: cannot tell what it grants {for_functions} on")
        if attribute == "project" and scope == "${var.project_id}":
            scope = PROJECT
        found += [Grant(principal, role, str(scope), address) for principal in principals for role in roles]
    return found


def custom_roles_of(module: dict) -> dict[str, frozenset[str]]:
    return {f"custom:{name}": frozenset(unquote(p) for p in body["permissions"])
            for kind, name, body in _resources(module) if kind == "google_project_iam_custom_role"}


@cache
def _terraform_files() -> tuple[Path, ...]:
    return tuple(sorted(TERRAFORM.rglob("*.tf")))


@cache
def _all_grants() -> tuple[Grant, ...]:
    functions = _function_flags()
    return tuple(grant for path in _terraform_files()
                 for grant in grants_of(load(path), functions, f"{path.relative_to(TERRAFORM)}: "))


@cache
def _all_custom_roles() -> dict[str, frozenset[str]]:
    roles: dict[str, frozenset[str]] = {}
    for path in _terraform_files():
        for name, permissions in custom_roles_of(load(path)).items():
            assert name not in roles, f"two custom roles are called {name}"
            roles[name] = permissions
    return roles


def role_permissions(role: str, snapshot: Mapping[str, dict], custom: Mapping[str, frozenset[str]]) -> frozenset[str]:
    if role in custom:
        return custom[role]
    assert role in snapshot, f"{role} is granted but tests/unit/iam/role_permissions.json has no snapshot of it"
    return frozenset(snapshot[role]["permissions"])


# -- the code: its imports and its Google calls --------------------------------------------

@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _executed_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run (module level or inside a function), not those only for type checkers."""
    hidden = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
              for child in node.body for sub in ast.walk(child)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in hidden:
            yield node


def _module_file(dotted: str) -> Path | None:
    base = REPO.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_files(path: Path) -> set[Path]:
    found = set()
    for node in _executed_imports(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise NotUnderstood(f"{path}: a relative import")
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        for dotted in names:
            parts = dotted.split(".")
            if parts[0] != "shared":
                continue
            for depth in range(1, len(parts) + 1):  # a package's __init__ runs before its modules
                module = _module_file(".".join(parts[:depth]))
                if module:
                    found.add(module)
    return found


@cache
def import_closure(main: Path) -> frozenset[Path]:
    seen, todo = set(), [main]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += _imported_files(path)
    return frozenset(seen)


_GOOGLE_ROOTS = ("google", "firebase_admin", "googleapiclient")


def _google_names(tree: ast.Module) -> set[str]:
    """The names Google imports bind in a module (google_crc32c is a local checksum, not Google's API)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names if alias.name.split(".")[0] in _GOOGLE_ROOTS}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _GOOGLE_ROOTS:
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _chain(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes (through calls: `a.b(x).c` -> `a.b().c`); None otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _chain(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    if isinstance(node, ast.Call):
        inner = _chain(node.func)
        return None if inner is None else f"{inner}()"
    return None


def _on(chain: str | None, roots: Iterable[str]) -> bool:
    return chain is not None and any(chain == root or chain.startswith((root + ".", root + "(")) for root in roots)


def google_calls_in(tree: ast.Module, clients: Iterable[str], firestore: bool) -> set[str]:
    """The names of the Google calls a module makes (see api_calls.json's `about`)."""
    google = _google_names(tree)
    roots = google | set(clients)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in google:
                found.add(node.func.id)
            elif isinstance(node.func, ast.Attribute) and _on(_chain(node.func.value), roots):
                found.add(node.func.attr)
        if firestore and isinstance(node, ast.Attribute):
            vocabulary = set(_calls()["firestore_operations"]) | set(_calls()["firestore_untabled"])
            if node.attr in vocabulary:
                found.add(node.attr)
    return found


@dataclass(frozen=True)
class Call:
    name: str
    api: str
    client: str  # the distribution that makes it
    permissions: tuple[str, ...]
    on: tuple[str, ...]  # PROJECT or env:<VARIABLE>


def classify(name: str, firestore: bool, where: str) -> Call | None:
    """The call `name` makes; None if it sends no request. A `requests` row named
    "<module>:<name>" is that module's call (the same API on other resources than elsewhere:
    shared/webhook_secrets.py reads the webhook secrets, shared/google_secrets.py Redis's)."""
    calls = _calls()
    if firestore and name in calls["firestore_operations"]:
        entry = calls["firestore_operations"][name]
        return Call(name, entry["api"], calls["firestore_client"], tuple(entry["permissions"]), (PROJECT,))
    if f"{where}:{name}" in calls["requests"]:
        name = f"{where}:{name}"
    if name in calls["requests"]:
        entry = calls["requests"][name]
        return Call(name, entry["api"], entry["client"], tuple(entry["permissions"]), tuple(entry.get("on", ())))
    if name in calls["no_request"]:
        return None
    raise AssertionError(f"{where} calls {name} on a Google client, which tests/unit/iam/api_calls.json does not "
                         "classify: add it to `requests` (with the permission Google documents) or `no_request`")


@cache
def calls_of_module(path: Path) -> frozenset[Call]:
    relative = str(path.relative_to(REPO))
    spec = _calls()["modules"].get(relative)
    if spec is None:
        return frozenset()
    firestore = spec.get("firestore", False)
    found = {classify(name, firestore, relative) for name in google_calls_in(_tree(path), spec["clients"], firestore)}
    return frozenset(call for call in found if call is not None)


def _production_modules() -> list[Path]:
    return sorted(p for root in ("shared", "functions") for p in (REPO / root).rglob("*.py")
                  if "__pycache__" not in p.parts)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _requirements(function: str) -> frozenset[str]:
    text = (REPO / "functions" / function / "requirements.in").read_text()
    return frozenset(_canonical(line.split("#", 1)[0].strip()) for line in text.splitlines()
                     if line.split("#", 1)[0].strip())


def _main(function: str) -> Path:
    return REPO / "functions" / function / "main.py"


@cache
def _declared_anywhere() -> frozenset[str]:
    return frozenset(name for function in FUNCTIONS for name in _requirements(function))


def reachable_calls(function: str) -> dict[str, Call]:
    """The calls the import graph and the bundle's libraries allow (before the hand-kept list). A
    library no requirements.in names (google-auth: the Google clients' own dependency) is not filtered on."""
    calls: dict[str, Call] = {}
    for module in import_closure(_main(function)):
        for call in calls_of_module(module):
            client = _canonical(call.client)
            if client in _requirements(function) or (not call.permissions and client not in _declared_anywhere()):
                calls[call.name] = call
    return calls


def _unreached_entries() -> list[dict]:
    return _calls()["unreached"]


@cache
def _told(function: str) -> frozenset[str]:
    """The environment variables Terraform gives the function: local.environment's,
    local.redis_environment's where uses_redis and local.mail_environment's where sends_mail
    (tests/unit/test_terraform_env_parity.py checks the function resource merges exactly
    these). A resource named by a variable a function is not given is one its code cannot name."""
    values = _locals(load(FUNCTIONS_MODULE))
    told = set(values["environment"])
    if _function_flags()[function]["uses_redis"]:
        told |= set(values["redis_environment"])
    if _function_flags()[function]["sends_mail"]:
        told |= set(values["mail_environment"])
    return frozenset(told)


def _names_something_told(call: Call, function: str) -> bool:
    return not call.on or any(on == PROJECT or on.removeprefix("env:") in _told(function) for on in call.on)


@cache
def needed_calls(function: str) -> dict[str, Call]:
    calls = {name: call for name, call in reachable_calls(function).items() if _names_something_told(call, function)}
    for entry in _unreached_entries():
        if function in entry["functions"]:
            for name in entry["calls"]:
                calls.pop(name, None)
    return calls


@cache
def _environment_targets() -> dict[str, str]:
    """Environment variable -> the Terraform expression it is set to, from the functions module's locals."""
    targets: dict[str, str] = {}
    for value in _locals(load(FUNCTIONS_MODULE)).values():
        if isinstance(value, dict):
            for key, expression in value.items():
                if not key.startswith("__"):
                    assert key not in targets, f"{key} is set by two locals"
                    targets[key] = expression
    return targets


def resolve_target(on: str) -> str:
    if on == PROJECT:
        return PROJECT
    variable = on.removeprefix("env:")
    assert on.startswith("env:") and variable in _environment_targets(), \
        f"api_calls.json: {on} is neither 'project' nor an environment variable Terraform sets"
    return _environment_targets()[variable]


@cache
def needs(function: str) -> frozenset[tuple[str, str]]:
    """(permission, target) pairs the function's code path needs."""
    return frozenset((permission, resolve_target(on)) for call in needed_calls(function).values()
                     for permission in call.permissions for on in call.on
                     if on == PROJECT or on.removeprefix("env:") in _told(function))


# -- checks, over data (the real data below; small inline data in the negative tests) ------

def coverage(needed: Mapping[str, Iterable[tuple[str, str]]], grants: Iterable[Grant],
             permissions_of: Callable[[str], frozenset[str]]) -> dict[str, dict[tuple[str, str], list[str]]]:
    """For each function: each needed (permission, target) -> the roles that grant it there ([] = a gap)."""
    grants = list(grants)
    table = {}
    for function, pairs in needed.items():
        table[function] = {
            (permission, target): sorted({grant.role for grant in grants
                                          if grant.principal == f"function:{function}"
                                          and grant.scope in (PROJECT, target)
                                          and permission in permissions_of(grant.role)})
            for permission, target in sorted(pairs)}
    return table


def gaps(needed: Mapping[str, Iterable[tuple[str, str]]], grants: Iterable[Grant],
         permissions_of: Callable[[str], frozenset[str]]) -> dict[str, list[tuple[str, str]]]:
    found = {function: [pair for pair, roles in rows.items() if not roles]
             for function, rows in coverage(needed, grants, permissions_of).items()}
    return {function: missing for function, missing in found.items() if missing}


def over_grants(needed: Mapping[str, Iterable[tuple[str, str]]], grants: Iterable[Grant],
                permissions_of: Callable[[str], frozenset[str]], flags: Mapping[str, Mapping]) -> list[str]:
    """Least privilege: a grant to a function that serves none of its needs there; signing
    without `signs` or without the code signing; reading secrets its code reads none of."""
    problems = []
    for grant in grants:
        if not grant.principal.startswith("function:"):
            continue
        function = grant.principal.removeprefix("function:")
        pairs = set(needed.get(function, ()))
        held = permissions_of(grant.role)
        if not any(permission in held and grant.scope in (PROJECT, target) for permission, target in pairs):
            problems.append(f"{function}: {grant.role} on {grant.scope} serves nothing its code needs "
                            f"({grant.resource})")
        needed_permissions = {permission for permission, _ in pairs}
        if SIGN in held and not (flags[function].get("signs") is True and SIGN in needed_permissions):
            problems.append(f"{function}: {grant.role} gives {SIGN}, but signs = {flags[function].get('signs')} "
                            f"and its code needs it: {SIGN in needed_permissions}")
        if READ_SECRET in held and READ_SECRET not in needed_permissions:
            problems.append(f"{function}: {grant.role} gives {READ_SECRET}, but its code reads no secret")
    return problems


# -- guards of the hand-kept list ------------------------------------------------------------

def _class(path: Path, name: str) -> ast.ClassDef:
    [found] = [node for node in ast.walk(_tree(path)) if isinstance(node, ast.ClassDef) and node.name == name]
    return found


def self_uses(cls: ast.ClassDef, method: str) -> set[str]:
    """What `method` touches on self, through the methods it calls on self: "x" for self.x, "x.y" for self.x.y."""
    methods = {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}
    uses: set[str] = set()
    seen, todo = set(), [method]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(methods[name]):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                uses.add(node.attr)
                if node.attr in methods:
                    todo.append(node.attr)
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                  and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
                uses.add(f"{node.value.attr}.{node.attr}")
    return uses


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def runtime_uses(tree: ast.Module) -> dict[str, set[str | None]]:
    """`runtime().<attribute>` -> the methods called on it (directly or through a local name); None
    for any other use. A runtime() that escapes (assigned, passed on) raises: it cannot be followed."""
    parents = _parents(tree)
    aliases: dict[str, str] = {}
    uses: dict[str, set[str | None]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "runtime"):
            continue
        holder = parents[id(node)]
        if not (isinstance(holder, ast.Attribute) and holder.value is node):
            raise NotUnderstood(f"runtime() used as {ast.unparse(holder)!r}: this check cannot follow it")
        user = parents[id(holder)]
        if isinstance(user, ast.Attribute) and isinstance(parents[id(user)], ast.Call) \
                and parents[id(user)].func is user:
            uses.setdefault(holder.attr, set()).add(user.attr)
        elif isinstance(user, ast.Assign) and len(user.targets) == 1 and isinstance(user.targets[0], ast.Name):
            aliases[user.targets[0].id] = holder.attr
            uses.setdefault(holder.attr, set())
        else:
            uses.setdefault(holder.attr, set()).add(None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in aliases and isinstance(node.ctx, ast.Load):
            user = parents[id(node)]
            called = isinstance(user, ast.Attribute) and isinstance(parents[id(user)], ast.Call) \
                and parents[id(user)].func is user
            uses[aliases[node.id]].add(user.attr if called else None)
    return uses


RUNTIME = REPO / "shared" / "runtime.py"


def _runtime_properties() -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in _class(RUNTIME, "Runtime").body if isinstance(node, ast.FunctionDef)}


def properties_reaching(target: str) -> set[str]:
    """The Runtime properties whose adapter is, or is built from, `target` (through self.<property>)."""
    properties = _runtime_properties()
    refers = {name: {n.attr for n in ast.walk(body) if isinstance(n, ast.Attribute)
                     and isinstance(n.value, ast.Name) and n.value.id == "self" and n.attr in properties}
              for name, body in properties.items()}
    reaching, grew = {target}, True
    while grew:
        grew = False
        for name, used in refers.items():
            if name not in reaching and used & reaching:
                reaching.add(name)
                grew = True
    return reaching


def _runtime_uses_of(function: str) -> dict[str, set[str | None]]:
    """runtime().<attribute> uses over the function's whole import closure (the runtime's own module aside)."""
    merged: dict[str, set[str | None]] = {}
    for module in import_closure(_main(function)) - {RUNTIME}:
        for attribute, methods in runtime_uses(_tree(module)).items():
            merged.setdefault(attribute, set()).update(methods)
    return merged


def _constructors_call_nothing_on_their_arguments(path: Path, name: str) -> None:
    init = next(n for n in _class(path, name).body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    arguments = {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}
    for node in ast.walk(init):
        if isinstance(node, ast.Call):
            chain = _chain(node.func) or ""
            assert chain.split(".")[0] not in arguments and not chain.startswith(("self._root", "self._client")), \
                f"{name}.__init__ calls {chain}: constructing it may call KMS"


def guard_seat_operations_without_kms(function: str) -> None:
    kms = properties_reaching("root_signer")
    assert kms == {"root_signer", "signer", "lease_checker", "seat_service", "usage_reports"}, \
        f"the runtime's KMS wiring changed ({sorted(kms)}): re-check this guard"
    uses = _runtime_uses_of(function)
    reached = {attribute for attribute in uses if attribute in kms}
    assert reached <= {"seat_service"}, f"{function} uses {sorted(reached)}"
    methods = uses.get("seat_service", set())
    assert None not in methods, f"{function} uses runtime().seat_service other than by calling its methods"
    service = _class(REPO / "shared" / "licensing" / "seat_service.py", "SeatService")
    for method in methods:
        touched = self_uses(service, str(method)) & {"_signer", "_lease_proof"}
        assert not touched, f"SeatService.{method} uses {sorted(touched)}"
    init = next(n for n in service.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    for parameter in ("signer", "lease_proof"):
        uses_of = [n for n in ast.walk(init) if isinstance(n, ast.Name) and n.id == parameter]
        assert len(uses_of) == 1, f"SeatService.__init__ hands {parameter} on: re-check this guard"
    builders = {(_chain(n.func) or "") for prop in ("root_signer", "signer", "lease_checker")
                for n in ast.walk(_runtime_properties()[prop]) if isinstance(n, ast.Call)}
    for module, cls in (("shared/tokens/kms_root.py", "KmsRootSigner"),
                        ("shared/tokens/delegation.py", "DelegatedSigner"),
                        ("shared/tokens/verification.py", "LeaseTokenChecker")):
        assert cls in builders, f"the runtime no longer builds {cls}: re-check this guard"
        _constructors_call_nothing_on_their_arguments(REPO / module, cls)


def _json_function_keywords(function: str) -> dict[str, object]:
    calls = [node for node in ast.walk(_tree(_main(function))) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "json_function"]
    assert len(calls) == 1, f"{function}: expected one json_function(...)"
    return {k.arg: k.value.value if isinstance(k.value, ast.Constant) else ast.unparse(k.value)
            for k in calls[0].keywords if k.arg}


def guard_no_account_checks(function: str) -> None:
    assert _json_function_keywords(function).get("checks_accounts") in (None, False), \
        f"{function} checks accounts"
    properties = _runtime_properties()
    checking = [name for name, body in properties.items() for n in ast.walk(body) if isinstance(n, ast.keyword)
                and n.arg == "check_account" and not (isinstance(n.value, ast.Constant) and n.value.value is False)]
    assert checking == ["admin_token_verifier"], f"accounts are checked through {checking}"
    endpoint = _tree(REPO / "shared" / "http" / "endpoint.py")
    parents = _parents(endpoint)
    for node in ast.walk(endpoint):
        if isinstance(node, ast.Attribute) and node.attr == "admin_token_verifier":
            chooser = parents[id(node)]
            assert isinstance(chooser, ast.IfExp) and chooser.body is node \
                and ast.unparse(chooser.test) == "checks_accounts", \
                "the endpoint uses the admin_token_verifier other than when checks_accounts"
    uses = _runtime_uses_of(function)
    assert "admin_token_verifier" not in set(uses) - set(runtime_uses(endpoint)), \
        f"{function} uses runtime().admin_token_verifier directly"


def guard_webhook_secrets_admin_only(function: str) -> None:
    properties = _runtime_properties()
    building = [name for name, body in properties.items() for n in ast.walk(body)
                if isinstance(n, ast.Name) and n.id == "SecretWriter"]
    assert building == ["webhook_admin"], f"SecretWriter is built by {building}: re-check this guard"
    assert properties_reaching("webhook_admin") == {"webhook_admin"}, "another property is built from webhook_admin"
    # health hands the whole runtime to shared/health.py: no file of any closure but the
    # runtime's own names the property at all
    naming = {path for path in import_closure(_main(function)) - {RUNTIME} if "webhook_admin" in path.read_text()}
    assert not naming, f"{function}'s code names webhook_admin: {sorted(str(p) for p in naming)}"


def _built_only_by(adapter: str, prop: str) -> None:
    building = [name for name, body in _runtime_properties().items() for n in ast.walk(body)
                if isinstance(n, ast.Name) and n.id == adapter]
    assert building == [prop], f"{adapter} is built by {building}: re-check this guard"


def _uses_none_of(function: str, properties: set[str]) -> None:
    """No module of the function's closure but the runtime's own reads an attribute of these
    names (health hands the whole runtime on: any attribute of that name anywhere counts)."""
    using = {str(path.relative_to(REPO)) for path in import_closure(_main(function)) - {RUNTIME}
             for node in ast.walk(_tree(path)) if isinstance(node, ast.Attribute) and node.attr in properties}
    assert not using, f"{function}'s code uses one of {sorted(properties)}: {sorted(using)}"


def guard_webhook_secret_reads_where_webhooks_are_delivered(function: str) -> None:
    _built_only_by("SigningSecretReader", "webhook_delivery")
    reaching = properties_reaching("webhook_delivery")
    assert reaching == {"webhook_delivery", "webhook_admin", "webhook_dispatch"}, \
        f"webhook_delivery is reached from {sorted(reaching)}: re-check this guard"
    _uses_none_of(function, reaching)


def guard_publishing_by_the_sweep_only(function: str) -> None:
    _built_only_by("PubSubPublisher", "notification_outbox")
    reaching = properties_reaching("notification_outbox")
    assert reaching == {"notification_outbox", "sweeper"}, \
        f"notification_outbox is reached from {sorted(reaching)}: re-check this guard"
    _uses_none_of(function, reaching)


def guard_public_keys_only(function: str) -> None:
    kms = properties_reaching("root_signer")
    uses = _runtime_uses_of(function)
    reached = {attribute: uses[attribute] for attribute in uses if attribute in kms}
    assert reached == {"root_signer": {"public_jwks"}}, f"{function} uses {reached}"
    touched = self_uses(_class(REPO / "shared" / "tokens" / "kms_root.py", "KmsRootSigner"), "public_jwks")
    client_calls = {use.removeprefix("_client.") for use in touched if use.startswith("_client.")}
    assert client_calls == {"list_crypto_key_versions", "get_public_key"}, f"public_jwks calls {client_calls}"


def guard_pulling_by_notify_only(function: str) -> None:
    _built_only_by("PubSubInbox", "webhook_dispatch")
    reaching = properties_reaching("webhook_dispatch")
    assert reaching == {"webhook_dispatch"}, f"webhook_dispatch is reached from {sorted(reaching)}: re-check this guard"
    _uses_none_of(function, reaching)


GUARDS: dict[str, Callable[[str], None]] = {
    "seat-operations-without-kms": guard_seat_operations_without_kms,
    "no-account-checks": guard_no_account_checks,
    "public-keys-only": guard_public_keys_only,
    "webhook-secrets-admin-only": guard_webhook_secrets_admin_only,
    "webhook-secret-reads-admin-and-notify": guard_webhook_secret_reads_where_webhooks_are_delivered,
    "publishing-by-the-sweep-only": guard_publishing_by_the_sweep_only,
    "pulling-by-notify-only": guard_pulling_by_notify_only,
}

FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/main.py"))


def _permissions(role: str) -> frozenset[str]:
    return role_permissions(role, _snapshot(), _all_custom_roles())


def _real_needs() -> dict[str, frozenset[tuple[str, str]]]:
    return {function: needs(function) for function in FUNCTIONS}


def _function_grants() -> list[Grant]:
    return [grant for grant in _all_grants() if grant.principal.startswith("function:")]


# -- the data files ------------------------------------------------------------------------

def test_every_predefined_role_terraform_grants_has_a_snapshot():
    granted = {grant.role for grant in _all_grants() if grant.role.startswith("roles/")}
    missing = sorted(granted - set(_snapshot()))
    assert not missing, ("add these roles' permissions (from Google's IAM role reference) to "
                         f"role_permissions.json: {missing}")


def test_every_snapshot_says_where_and_when_it_was_read():
    for role, entry in _snapshot().items():
        assert entry["source"].startswith("https://cloud.google.com/iam/docs/roles-permissions/"), role
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["read_on"]) and entry["seen"] and entry["permissions"], role
        assert entry["permissions"] == sorted(set(entry["permissions"])), f"{role}: sorted, once each"
        assert all(re.fullmatch(r"[a-z]+(\.[A-Za-z]+){2}", p) for p in entry["permissions"]), role
    for name, call in _calls()["requests"].items():
        assert call["permissions"] or call["why_none"], name
        assert not call["permissions"] or call["source"].startswith("https://cloud.google.com/"), name


def test_roles_bound_to_a_function_are_snapshotted_whole():
    """Least privilege asks what a role does not hold: only a whole list can say."""
    partial = sorted({grant.role for grant in _function_grants() if grant.role.startswith("roles/")
                      and not _snapshot()[grant.role]["complete"]})
    assert not partial, f"role_permissions.json must list all the permissions of {partial}"


def test_custom_roles_hold_only_permissions_google_documents():
    documented = {p for entry in _snapshot().values() for p in entry["permissions"]}
    for role, permissions in _all_custom_roles().items():
        assert permissions, role
        assert permissions <= documented, f"{role}: {sorted(permissions - documented)} appear in no documented role"


# -- the code side -------------------------------------------------------------------------

def test_every_google_client_in_the_code_is_classified():
    """A module that imports a Google client library must be listed in api_calls.json, and each
    call it makes on one classified (classify() fails on an unknown one)."""
    listed = set(_calls()["modules"])
    for path in _production_modules():
        relative = str(path.relative_to(REPO))
        if _google_names(_tree(path)):
            assert relative in listed, f"{relative} imports a Google client: list it in api_calls.json `modules`"
        calls_of_module(path)
    assert listed <= {str(p.relative_to(REPO)) for p in _production_modules()}, "api_calls.json lists a missing module"


def test_every_tabulated_call_is_made_somewhere():
    """A stale row would claim a permission nothing uses."""
    made = {call.name for path in _production_modules() for call in calls_of_module(path)}
    tabulated = {name for name, entry in _calls()["requests"].items() if entry["permissions"]}
    tabulated |= {name for name, entry in _calls()["firestore_operations"].items() if entry["permissions"]}
    assert tabulated <= made, f"api_calls.json has calls the code no longer makes: {sorted(tabulated - made)}"


def test_the_terraform_functions_are_the_code_functions():
    assert sorted(_function_flags()) == FUNCTIONS


def test_each_function_runs_as_its_own_account():
    [body] = [body for kind, name, body in _resources(load(FUNCTIONS_MODULE))
              if kind == "google_cloudfunctions2_function" and name == "fn"]
    assert body["for_each"] == "${local.functions}"
    [service] = body["service_config"]
    assert service["service_account_email"] == OWN_ACCOUNT, "each function runs as its own account (its grants')"


@pytest.mark.parametrize("entry", _unreached_entries(), ids=lambda e: f"{e['guard']}")
def test_every_hand_kept_exclusion_still_holds_and_removes_something(entry):
    assert entry["guard"] in GUARDS and entry["reason"], entry
    for function in entry["functions"]:
        GUARDS[entry["guard"]](function)
        reachable = reachable_calls(function)
        assert any(name in reachable for name in entry["calls"]), \
            f"{function}: the import graph reaches none of {entry['calls']} any more; drop this entry"


# -- the check itself ----------------------------------------------------------------------

@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_may_make_every_call_its_code_makes(function):
    missing = gaps({function: needs(function)}, _function_grants(), _permissions)
    assert not missing, (f"{function}'s service account lacks (permission, on what): {missing.get(function)}; "
                         f"its calls: {sorted(needed_calls(function))}")


def test_no_function_holds_a_grant_it_does_not_need():
    problems = over_grants(_real_needs(), _function_grants(), _permissions, _function_flags())
    assert not problems, "\n".join(problems)


def test_only_the_signing_functions_may_sign_and_only_redis_users_read_secrets():
    for function in FUNCTIONS:
        held = {p for grant in _function_grants() if grant.principal == f"function:{function}"
                for p in _permissions(grant.role)}
        flags = _function_flags()[function]
        assert (SIGN in held) == flags["signs"] == ("asymmetric_sign" in needed_calls(function)), function
        # the Redis secrets and the SMTP password: exactly the Redis users and the mail senders;
        # any secret (webhook signing secrets too): its readers
        assert (flags["uses_redis"] or flags["sends_mail"]) == ("access_secret_version" in needed_calls(function)), \
            function
        assert (READ_SECRET in held) == any(permission == READ_SECRET for permission, _ in needs(function)), function


def test_the_terraform_flags_say_what_the_code_does():
    for function in FUNCTIONS:
        flags = _function_flags()[function]
        store = [call for call in needed_calls(function).values() if call.client == _calls()["firestore_client"]]
        assert flags["uses_store"] == bool(store), function
        assert flags["signs"] == ("asymmetric_sign" in needed_calls(function)), function


# -- the checker catches what it should (small inline data) ------------------------------------

FLAGS = {"sweep": {"signs": False, "uses_redis": True, "uses_store": True},
         "jwks": {"signs": False, "uses_redis": False, "uses_store": False},
         "acquire": {"signs": True, "uses_redis": True, "uses_store": True}}
KEY, AUTH, CA = "${var.kms_key_id}", "${var.redis_auth_secret}", "${var.redis_ca_secret}"


def _inline(roles: dict[str, list[str]]) -> Callable[[str], frozenset[str]]:
    return lambda role: frozenset(roles[role])


def test_a_role_without_a_needed_permission_is_a_gap():
    roles = _inline({"roles/datastore.user": ["datastore.entities.get"]})
    needed = {"sweep": {("datastore.entities.get", PROJECT), ("datastore.entities.list", PROJECT)}}
    grants = [Grant("function:sweep", "roles/datastore.user", PROJECT, "inline")]
    assert gaps(needed, grants, roles) == {"sweep": [("datastore.entities.list", PROJECT)]}


def test_a_grant_on_another_resource_is_a_gap():
    roles = _inline({"roles/secretmanager.secretAccessor": [READ_SECRET]})
    needed = {"sweep": {(READ_SECRET, AUTH), (READ_SECRET, CA)}}
    grants = [Grant("function:sweep", "roles/secretmanager.secretAccessor", AUTH, "inline"),
              Grant("function:jwks", "roles/secretmanager.secretAccessor", CA, "inline")]
    assert gaps(needed, grants, roles) == {"sweep": [(READ_SECRET, CA)]}
    project_wide = [Grant("function:sweep", "roles/secretmanager.secretAccessor", PROJECT, "inline")]
    assert gaps(needed, project_wide, roles) == {}


def test_the_predefined_kms_roles_would_not_let_a_function_list_the_key_versions():
    """The history: roles/cloudkms.signerVerifier and publicKeyViewer lack cryptoKeyVersions.list."""
    module = copy.deepcopy(load(FUNCTIONS_MODULE))
    replaced = {"signer": '"roles/cloudkms.signerVerifier"', "public_key_reader": '"roles/cloudkms.publicKeyViewer"'}
    for kind, name, body in _resources(module):
        if kind == "google_kms_crypto_key_iam_member":
            body["role"] = replaced[name]
    grants = grants_of(module, _function_flags())
    kms_needs = {name: {pair for pair in pairs if pair[0].startswith("cloudkms.")}
                 for name, pairs in _real_needs().items()}
    found = gaps(kms_needs, grants, lambda role: role_permissions(role, _snapshot(), custom_roles_of(module)))
    signing = sorted(name for name, flags in _function_flags().items() if flags["signs"])
    assert found == {name: [("cloudkms.cryptoKeyVersions.list", KEY)] for name in [*signing, "jwks"]}


def test_signing_by_a_function_that_does_not_sign_is_flagged():
    roles = _inline({"custom:lease_root_signer": ["cloudkms.cryptoKeyVersions.list", SIGN]})
    needed = {"sweep": {("cloudkms.cryptoKeyVersions.list", KEY)}}
    grants = [Grant("function:sweep", "custom:lease_root_signer", KEY, "inline")]
    [problem] = over_grants(needed, grants, roles, FLAGS)
    assert SIGN in problem and "signs = False" in problem
    assert over_grants({"acquire": {("cloudkms.cryptoKeyVersions.list", KEY), (SIGN, KEY)}},
                       [Grant("function:acquire", "custom:lease_root_signer", KEY, "inline")], roles, FLAGS) == []


def test_reading_secrets_without_redis_is_flagged():
    roles = _inline({"roles/secretmanager.secretAccessor": [READ_SECRET]})
    grants = [Grant("function:jwks", "roles/secretmanager.secretAccessor", AUTH, "inline")]
    problems = over_grants({"jwks": set()}, grants, roles, FLAGS)
    assert len(problems) == 2 and "serves nothing" in problems[0] and "reads no secret" in problems[1]


def test_a_role_that_serves_no_need_is_flagged():
    roles = _inline({"roles/firebaseauth.viewer": ["firebaseauth.users.get"]})
    grants = [Grant("function:sweep", "roles/firebaseauth.viewer", PROJECT, "inline")]
    [problem] = over_grants({"sweep": {("datastore.entities.get", PROJECT)}}, grants, roles, FLAGS)
    assert "serves nothing" in problem


def test_the_for_each_evaluator_knows_its_shapes_and_refuses_the_rest():
    functions = {"a": {"signs": True}, "b": {"signs": False}}
    local_values = {"signers": "${{for name, fn in local.functions : name => fn if fn.signs}}"}
    assert evaluate_for_each("${local.functions}", local_values, functions) == {"a": "a", "b": "b"}
    assert evaluate_for_each("${local.signers}", local_values, functions) == {"a": "a"}
    assert evaluate_for_each('${toset(["roles/x.y", "roles/x.z"])}', {}, functions) == \
        {"roles/x.y": "roles/x.y", "roles/x.z": "roles/x.z"}
    for shape in ("${{for name, fn in local.functions : name => fn if fn.signs && fn.public}}",
                  "${{for name, fn in local.functions : name => fn if !fn.signs}}",
                  "${merge(local.functions, {})}", "${local.nowhere}", "local.functions",
                  "${{for name, fn in local.functions : name => fn if fn.public}}"):
        with pytest.raises(NotUnderstood):
            evaluate_for_each(shape, local_values, functions)


def test_members_and_roles_of_unknown_shapes_are_refused():
    keys = {"a": "a"}
    assert parse_members('"serviceAccount:${google_service_account.function[each.key].email}"', keys) == ["function:a"]
    assert parse_members('"serviceAccount:${google_service_account.function["jwks"].email}"', None) == ["function:jwks"]
    assert parse_members('"allUsers"', None) == ["allUsers"]
    for member in ('"serviceAccount:${google_service_account.function[local.x].email}"',
                   '"serviceAccount:${each.value}"',
                   '"serviceAccount:${google_service_account.function[each.key].email}"'):
        with pytest.raises(NotUnderstood):
            parse_members(member, None if "each.key" in member else keys)
    for role in ("${var.role}", "${each.value}", '"role/typo"'):
        with pytest.raises(NotUnderstood):
            parse_roles(role, None)
    module = {"resource": [{'"google_kms_crypto_key_iam_member"': {'"x"': {
        "for_each": "${{for name, fn in local.functions : name => fn if fn.signs}}",
        "crypto_key_id": "${each.value.key}", "role": '"roles/cloudkms.signerVerifier"',
        "member": '"serviceAccount:${google_service_account.function[each.key].email}"'}}}]}
    with pytest.raises(NotUnderstood):
        grants_of(module, {"a": {"signs": True}})


def test_the_guards_see_a_seat_operation_that_starts_using_the_signer():
    service = ast.parse("class SeatService:\n"
                        "    def validate(self, caller, request):\n        return self._count(request)\n"
                        "    def _count(self, request):\n        self._lease_proof.proves_lease(request.token)\n"
                        "    def release(self, caller, request):\n"
                        "        return self._seats.release(request)\n").body[0]
    assert isinstance(service, ast.ClassDef)
    assert {"_lease_proof", "_lease_proof.proves_lease"} <= self_uses(service, "validate")
    assert not self_uses(service, "release") & {"_signer", "_lease_proof"}
    main = ast.parse("def f(call):\n    s = runtime().seat_service\n    return s.validate(call), runtime().settings\n")
    assert runtime_uses(main) == {"seat_service": {"validate"}, "settings": {None}}
    with pytest.raises(NotUnderstood):
        runtime_uses(ast.parse("readiness(runtime())\n"))
