"""The pinned providers' schemas, and a check of the .tf files' resource, data and provider blocks against them.

Where the schemas come from (no terraform binary and no provider download here):

- google: npm's @cdktf/provider-google (package.json, installed by ./scripts/bootstrap's
  `npm ci`), which cdktf generated from the provider at the version its package.json names
  under cdktf.provider (14.11.0: hashicorp/google 6.12.0). Its jsii assembly (.jsii, JSON)
  holds one Config interface per resource and data source: one property per argument or
  nested block, required unless marked optional, each nested block an interface of its own.
  Property names are cdktf's camelCase, with renames (geth_details -> fetchhDetails,
  build -> buildAttribute, hugepage_size_1g -> hugepageSize1G, ...), so the Terraform name
  is read instead from the link cdktf writes into every property's docs from the provider
  schema: ".../docs/resources/redis_instance#connect_mode RedisInstance#connect_mode".
  The test holds those names to the ones the package's own code writes into Terraform JSON
  (lib/*/index.js), for every resource, data source and nested block. The package ships
  neither the provider's schema JSON nor its docs pages.
- time: npm's @cdktf/provider-time, the same way.
- Terraform's built-in terraform_data: hand-kept, tests/unit/terraform/builtin_resources.toml.

Limits: cdktf gives nested blocks and nested object attributes the same shape, so a nested
schema is checked where it is written as a block (`x { ... }`) and `x = {...}` is let
through; values are not type-checked, only the literal ones of tests/unit/terraform/enums.toml.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
DATA = Path(__file__).resolve().parent / "terraform"
# provider local name -> the npm package generated from it (its version: package.json)
SCHEMA_PACKAGES = {"google": "@cdktf/provider-google", "time": "@cdktf/provider-time"}

# The link cdktf puts in each property's docs: ...#<terraform name> <Class>#<terraform name>}
_PROPERTY_LINK = re.compile(r"\{@link https://registry\.terraform\.io/providers/[^\s}#]*#(\w+) [\w.]+#\w+\}")
# ... and in each resource's, data source's or provider's class docs.
_CLASS_LINK = re.compile(r"Represents a \{@link https://registry\.terraform\.io/providers/[^\s}]+?"
                         r"/docs(?:/(resources|data-sources)/\w+)? (\w+)\}")
_KINDS = {"resources": "resource", "data-sources": "data", None: "provider"}
# An argument's docs listing its values: 'Possible values: ["A", "B"]', 'Possible values include "A", "B"'.
_POSSIBLE = re.compile(r'Possible values(?: include)?:? \[?((?:"[A-Za-z0-9_.-]*"(?:, |,| or | and )?)+)')


@dataclass
class Field:
    """An argument (nested is None) or a nested block of a block."""

    name: str
    required: bool
    nested: Block | None = None
    repeated: bool = False  # a list or set of blocks; else at most one
    docs: str = ""

    @property
    def kind(self) -> str:
        return "argument" if self.nested is None else "block"


@dataclass
class Block:
    fields: dict[str, Field] = field(default_factory=dict)


# --- schemas -------------------------------------------------------------------------------


class Assembly:
    """Resource, data-source and provider-block schemas from one cdktf provider package's .jsii."""

    def __init__(self, package_dir: Path) -> None:
        meta = json.loads((package_dir / "package.json").read_text())
        self.package = f"{meta['name']}@{meta['version']}"
        provider = meta["cdktf"]["provider"]
        self.provider_source = provider["name"].removeprefix("registry.terraform.io/")  # hashicorp/google
        self.provider_version: str = provider["version"]
        self._types: dict[str, Any] = json.loads((package_dir / ".jsii").read_bytes())["types"]
        self._configs: dict[tuple[str, str], str] = {}
        self._directory = package_dir
        for spec in self._types.values():
            link = _CLASS_LINK.search(spec.get("docs", {}).get("summary", ""))
            if spec["kind"] != "class" or not link:
                continue
            [config] = [p["type"]["fqn"] for p in spec["initializer"]["parameters"] if p["name"] == "config"]
            self._configs[(_KINDS[link.group(1)], link.group(2))] = config
        self._blocks: dict[str, Block] = {}

    def types(self, kind: str) -> list[str]:
        return sorted(name for k, name in self._configs if k == kind)

    def block(self, kind: str, type_name: str) -> Block | None:
        fqn = self._configs.get((kind, type_name))
        return None if fqn is None else self._block(fqn)

    def name_disagreements(self) -> list[str]:
        """Where the names read from the docs links differ from those that the package's own code
        writes into Terraform JSON (lib/*/index.js: synthesizeAttributes for a resource's top level,
        <struct>ToTerraform for each nested block): a second reading of the same schema."""
        emitted: dict[str, dict[str, set[str]]] = {}  # lib file -> function -> the keys it returns
        found = []
        config_of = {config: key for key, config in self._configs.items()}
        for fqn, spec in self._types.items():
            if not spec.get("datatype") or fqn.endswith("ProviderConfig"):
                continue
            source = spec["locationInModule"]["filename"].replace("src/", "lib/", 1).removesuffix(".ts") + ".js"
            if source not in emitted:
                emitted[source] = _emitted_names((self._directory / source).read_text())
            function = ("synthesizeAttributes" if fqn in config_of
                        else spec["name"][0].lower() + spec["name"][1:] + "ToTerraform")
            names = emitted[source].get(function)
            read = set(self._block(fqn).fields)
            if names != read:
                found.append(f"{fqn}: docs links {sorted(read)}, {source} {function}: {sorted(names or [])}")
        return found

    def _block(self, fqn: str) -> Block:
        if fqn in self._blocks:
            return self._blocks[fqn]
        block = self._blocks[fqn] = Block()
        spec = self._types[fqn]
        for parent in spec.get("interfaces", []):
            if parent in self._types:
                block.fields.update(self._block(parent).fields)
        for prop in spec.get("properties", []):
            docs = prop.get("docs", {})
            text = "\n".join([docs.get("summary", ""), docs.get("remarks", ""), *docs.get("custom", {}).values()])
            link = _PROPERTY_LINK.search(text)
            name = link.group(1) if link else re.sub(r"(?<!^)(?=[A-Z])", "_", prop["name"]).lower()
            nested, repeated = self._nested(prop["type"])
            block.fields[name] = Field(name, not prop.get("optional", False), nested, repeated, text)
        return block

    def _nested(self, reference: dict[str, Any]) -> tuple[Block | None, bool]:
        """(the nested block's schema, whether it repeats) of a property type, or (None, False)."""
        for option in reference.get("union", {}).get("types", [reference]):
            fqn = option.get("fqn")
            if fqn in self._types and self._types[fqn].get("datatype"):
                return self._block(fqn), False
            element = option.get("collection", {}).get("elementtype", {}).get("fqn")
            if element in self._types and self._types[element].get("datatype"):
                return self._block(element), True
        return None, False


def _emitted_names(code: str) -> dict[str, set[str]]:
    """function -> the keys of the object it returns, for synthesizeAttributes() and each
    <struct>ToTerraform(struct) of a cdktf-generated lib/<name>/index.js."""
    found = {}
    for function, body in re.findall(r"\nfunction (\w+ToTerraform)\(struct\) \{\n((?:(?!\nfunction ).)*?)\n\}\n", code,
                                     re.DOTALL):
        returned = re.search(r"\n    return \{(.*?)\};$", body, re.DOTALL)
        found[function] = set(re.findall(r"^ {8}(\w+): ", returned.group(1), re.MULTILINE)) if returned else set()
    synthesized = re.search(r"\n    synthesizeAttributes\(\) \{\n        return \{(.*?)\};\n", code, re.DOTALL)
    if synthesized:
        found["synthesizeAttributes"] = set(re.findall(r"^ {12}(\w+): ", synthesized.group(1), re.MULTILINE))
    return found


@dataclass(frozen=True)
class Schemas:
    providers: Mapping[str, Assembly]  # by provider local name (google, time)
    builtin: Mapping[str, Block]  # terraform_data

    def lookup(self, kind: str, type_name: str) -> Block | None:
        if kind == "resource" and type_name in self.builtin:
            return self.builtin[type_name]
        assembly = self.providers.get(type_name if kind == "provider" else type_name.split("_", 1)[0])
        return assembly.block(kind, type_name) if assembly else None

    def known(self, kind: str) -> list[str]:
        names = [n for a in self.providers.values() for n in a.types(kind)]
        return names + (list(self.builtin) if kind == "resource" else [])


def _hand_kept_block(spec: Mapping[str, Any]) -> Block:
    block = Block()
    for name in spec.get("required", []):
        block.fields[name] = Field(name, True)
    for name in spec.get("optional", []):
        block.fields[name] = Field(name, False)
    for name, nested in spec.get("blocks", {}).items():
        block.fields[name] = Field(name, nested.get("min_items", 0) > 0, _hand_kept_block(nested),
                                   nested.get("max_items", 0) != 1)
    return block


@cache
def assembly(package: str) -> Assembly:
    directory = NODE_MODULES / package
    if not (directory / ".jsii").is_file():
        raise FileNotFoundError(f"{directory}/.jsii is missing: run ./scripts/bootstrap (npm ci installs {package})")
    return Assembly(directory)


@cache
def schemas() -> Schemas:
    builtin = tomllib.loads((DATA / "builtin_resources.toml").read_text())
    return Schemas({name: assembly(package) for name, package in SCHEMA_PACKAGES.items()},
                   {name: _hand_kept_block(spec) for name, spec in builtin.items()})


@cache
def enums() -> dict[str, dict[str, list[str]]]:
    """resource type -> argument path (blocks joined by dots) -> the values it takes."""
    return tomllib.loads((DATA / "enums.toml").read_text())


def possible_values(docs: str) -> set[str] | None:
    """The values an argument's docs list ('Possible values: ["A", "B"]'), if they do."""
    found = _POSSIBLE.search(docs.replace('\\"', '"'))
    return set(re.findall(r'"([^"]*)"', found.group(1))) if found else None


# --- Terraform's own arguments -------------------------------------------------------------

_CONDITION = Block({"condition": Field("condition", True), "error_message": Field("error_message", True)})
_CHECKS = {"precondition": Field("precondition", False, _CONDITION, True),
           "postcondition": Field("postcondition", False, _CONDITION, True)}
# developer.hashicorp.com/terraform/language/meta-arguments/lifecycle
_RESOURCE_LIFECYCLE = Block({name: Field(name, False) for name in
                             ("create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by")}
                            | _CHECKS)
_DATA_LIFECYCLE = Block(dict(_CHECKS))
# developer.hashicorp.com/terraform/language/meta-arguments; a provider block's alias is in
# its schema, and its version is Terraform's (deprecated, still accepted).
_META_ARGUMENTS = {"resource": {"count", "for_each", "depends_on", "provider"},
                   "data": {"count", "for_each", "depends_on", "provider"}, "provider": {"version"}}
_LIFECYCLES = {"resource": _RESOURCE_LIFECYCLE, "data": _DATA_LIFECYCLE}
_UNCHECKED_META_BLOCKS = {"resource": {"provisioner", "connection"}, "data": set(), "provider": set()}
_DYNAMIC_ARGUMENTS = {"for_each", "iterator", "labels"}


# --- the check -----------------------------------------------------------------------------


def _is_block(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__")
                                                           for v in value)


def _is_labelled_block(value: object) -> bool:
    """`dynamic "x" {...}` and the like: [{'"x"': {..., "__is_block__": True}}, ...]."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(group, dict) and all(isinstance(group[k], dict) and group[k].get("__is_block__")
                                        for k in _keys(group)) for group in value)


def _keys(body: Mapping[str, Any]) -> Iterator[str]:
    return (key for key in body if not key.startswith("__"))


def _labelled(value: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, body) of each block in `dynamic "x" {...}` / `provisioner "x" {...}` form."""
    for group in value if isinstance(value, list) else []:
        for label, body in group.items():
            if not label.startswith("__"):
                yield label.strip('"'), body


def _literal(value: object) -> str | None:
    if (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' and "${" not in value
            and "%{" not in value and not value.startswith('"<<')):
        return value[1:-1]
    return None


def _suggest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


@dataclass
class _Module:
    """What one check needs to know of the module around a block."""

    schemas: Schemas
    enums: Mapping[str, Mapping[str, list[str]]]
    variable_defaults: dict[str, str]  # var name -> literal default
    errors: list[str] = field(default_factory=list)

    def check_block(self, where: str, type_name: str, schema: Block, body: Mapping[str, Any],
                    path: tuple[str, ...], meta: str | None) -> None:
        """meta: 'resource' / 'data' / 'provider' at a top-level block (its meta-arguments allowed)."""
        inside = f"{where}, in {'.'.join(path)}" if path else where
        present = set()
        for key in _keys(body):
            value = body[key]
            if key == "dynamic" and "dynamic" not in schema.fields and _is_labelled_block(value):
                for label, dynamic in _labelled(value):
                    present.add(label)
                    self._check_dynamic(where, inside, type_name, schema, label, dynamic, path)
                continue
            present.add(key)
            if meta and key in _META_ARGUMENTS[meta] and key not in schema.fields:
                if _is_block(value):
                    self.errors.append(f'{inside}: "{key}" is a meta-argument, not a block')
                continue
            if meta in _LIFECYCLES and key == "lifecycle":
                for one in value if _is_block(value) else []:
                    self.check_block(where, "", _LIFECYCLES[meta], one, (*path, "lifecycle"), None)
                continue
            if meta and key in _UNCHECKED_META_BLOCKS[meta]:
                continue
            spec = schema.fields.get(key)
            if spec is None:
                kind = "block" if _is_block(value) or _is_labelled_block(value) else "argument"
                self.errors.append(f'{inside}: unknown {kind} "{key}"{_suggest(key, schema.fields)}')
                continue
            if _is_block(value):
                if spec.nested is None:
                    self.errors.append(f'{inside}: "{key}" is an argument, not a block (write {key} = ...)')
                    continue
                if not spec.repeated and len(value) > 1:
                    self.errors.append(f'{inside}: block "{key}" may appear once, found {len(value)}')
                for one in value:
                    self.check_block(where, type_name, spec.nested, one, (*path, key), None)
            elif spec.nested is None:
                self._check_enum(inside, type_name, (*path, key), value)
        for name, spec in schema.fields.items():
            if spec.required and name not in present:
                self.errors.append(f'{inside}: missing required {spec.kind} "{name}"')

    def _check_dynamic(self, where: str, inside: str, type_name: str, schema: Block, label: str,
                       dynamic: Mapping[str, Any], path: tuple[str, ...]) -> None:
        spec = schema.fields.get(label)
        if spec is None or spec.nested is None:
            what = "unknown block" if spec is None else "an argument, not a block:"
            self.errors.append(f'{inside}: dynamic "{label}": {what} "{label}"{_suggest(label, schema.fields)}')
            return
        here = f'{inside}: dynamic "{label}"'
        for key in _keys(dynamic):
            if key not in _DYNAMIC_ARGUMENTS | {"content"}:
                self.errors.append(f'{here}: unknown argument "{key}" (a dynamic block takes for_each, '
                                   'iterator, labels and one content block)')
        if "for_each" not in dynamic:
            self.errors.append(f'{here}: missing required argument "for_each"')
        content = dynamic.get("content")
        if not isinstance(content, list) or not _is_block(content) or len(content) != 1:
            self.errors.append(f'{here}: needs exactly one "content" block')
            return
        self.check_block(where, type_name, spec.nested, content[0], (*path, label), None)

    def _check_enum(self, inside: str, type_name: str, path: tuple[str, ...], value: object) -> None:
        allowed = self.enums.get(type_name, {}).get(".".join(path))
        if allowed is None:
            return
        literal, origin = _literal(value), ""
        variable = re.fullmatch(r"\$\{var\.(\w+)\}", value) if isinstance(value, str) else None
        if literal is None and variable and variable.group(1) in self.variable_defaults:
            literal, origin = self.variable_defaults[variable.group(1)], f" (the default of var.{variable.group(1)})"
        if literal is not None and literal not in allowed:
            self.errors.append(f'{inside}: "{path[-1]}" = "{literal}"{origin} is not one of {sorted(allowed)}'
                               f'{_suggest(literal, allowed)}')


def parse(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False))


def _variable_defaults(parsed: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    defaults = {}
    for body_of in (doc.get("variable", []) for doc in parsed.values()):
        for name, body in _labelled(body_of):
            literal = _literal(body.get("default"))
            if literal is not None:
                defaults[name] = literal
    return defaults


def _blocks(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(kind, type, name, body) of each resource, data and provider block of a parsed file."""
    for kind in ("resource", "data"):
        for group in document.get(kind, []):
            for type_label, instances in group.items():
                for name, body in _labelled([instances]):
                    yield kind, type_label.strip('"'), name, body
    for name, body in _labelled(document.get("provider", [])):
        yield "provider", name, "", body


def _line(text: str, kind: str, type_name: str, name: str) -> int:
    labels = rf'"{re.escape(type_name)}"' + (rf'\s+"{re.escape(name)}"' if name else "")
    header = re.search(rf"^[ \t]*{kind}\s+{labels}", text, re.MULTILINE)
    return text.count("\n", 0, header.start()) + 1 if header else 0


def _address(kind: str, type_name: str, name: str) -> str:
    return {"resource": f"{type_name}.{name}", "data": f"data.{type_name}.{name}",
            "provider": f'provider "{type_name}"'}[kind]


def check_module(files: Mapping[str, str], known: Schemas | None = None,
                 enum_table: Mapping[str, Mapping[str, list[str]]] | None = None) -> list[str]:
    """Every problem in one module's resource, data and provider blocks: file name -> .tf text."""
    parsed = {name: parse(text) for name, text in files.items()}
    module = _Module(known or schemas(), enums() if enum_table is None else enum_table, _variable_defaults(parsed))
    for file_name, document in parsed.items():
        for kind, type_name, name, body in _blocks(document):
            where = f"{file_name}:{_line(files[file_name], kind, type_name, name)}: {_address(kind, type_name, name)}"
            schema = module.schemas.lookup(kind, type_name)
            if schema is not None:
                module.check_block(where, type_name, schema, body, (), kind)
                continue
            provider = type_name if kind == "provider" else type_name.split("_", 1)[0]
            if provider in module.schemas.providers:
                why = (f"no {kind} of that name in {module.schemas.providers[provider].package}"
                       f"{_suggest(type_name, module.schemas.known(kind))}")
            else:
                why = (f'no schema for provider "{provider}": add its @cdktf/provider-* package to package.json '
                       "(and to SCHEMA_PACKAGES in tests/unit/terraform_schema.py), or a hand-kept schema to "
                       "tests/unit/terraform/builtin_resources.toml")
            module.errors.append(f"{where}: unknown {kind} type {type_name}: {why}")
    return module.errors


# --- provider versions ---------------------------------------------------------------------


def admits(constraint: str, version: str) -> bool:
    """Whether a Terraform version constraint ("= 6.12.0", ">= 1.2, < 2", "~> 0.12") admits version."""

    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split("."))

    have = parts(version)
    for clause in constraint.split(","):
        match = re.fullmatch(r"\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+(?:\.\d+){0,2})\s*", clause)
        if not match:
            raise ValueError(f"unsupported version constraint: {constraint!r}")
        operator, want = match.group(1) or "=", parts(match.group(2))
        padded = want + (0,) * (3 - len(want))
        if operator == "~>":
            upper = (want[0] + 1,) if len(want) == 1 else (*want[:-2], want[-2] + 1)
            ok = padded <= have < upper + (0,) * (3 - len(upper))
        else:
            ok = {"=": have == padded, "!=": have != padded, ">=": have >= padded, "<=": have <= padded,
                  ">": have > padded, "<": have < padded}[operator]
        if not ok:
            return False
    return True


def required_providers(text: str) -> dict[str, tuple[str, str]]:
    """local name -> (source, version constraint) of a file's terraform { required_providers }."""
    found = {}
    for terraform in parse(text).get("terraform", []):
        for block in terraform.get("required_providers", []):
            for name in _keys(block):
                spec = block[name]
                found[name] = (str(spec.get("source", "")).strip('"'), str(spec.get("version", "")).strip('"'))
    return found
