"""The package map holds: imports go only in the allowed directions, and no modules import each other in a loop.

Every import counts, at module level or inside a function (a function-local import hides a loop, it does not
break one). Imports under ``if TYPE_CHECKING:`` count for loops but not for directions. The allowed directions
are the table in ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import callwise

PKG = Path(callwise.__file__).resolve().parent

# package -> the packages of ours it may import (its own modules always)
ALLOWED: dict[str, set[str]] = {
    "migrations": set(),
    "knowledge": set(),
    "routing": set(),
    "integrations": set(),
    "infra": {"migrations"},
    "evaluation": {"knowledge", "routing", "integrations"},
    "handoff": {"routing", "integrations"},
    "calls": {"knowledge", "routing", "integrations", "handoff", "evaluation", "infra"},
    "api": {"calls", "handoff", "evaluation", "knowledge", "routing", "integrations", "infra", "migrations"},
    "wiring": {"api", "calls", "handoff", "evaluation", "knowledge", "routing", "integrations", "infra", "migrations"},
    "agent": {"wiring", "calls", "handoff", "evaluation", "knowledge", "routing", "integrations", "infra",
              "migrations"},
    "cli": {"agent", "wiring", "api", "calls", "handoff", "evaluation", "knowledge", "routing", "integrations",
            "infra", "migrations"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, modules: set[str], skip_type_checking: bool = True) -> set[str]:
    """The callwise modules ``path`` imports at run time (``from pkg import mod`` resolves to the module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if skip_type_checking and isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("callwise"):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("callwise"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(this)
    return {m for m in found if m in modules}


def graph(*, typing_too: bool = False) -> dict[str, set[str]]:
    """Module -> the modules it imports; ``typing_too`` adds the imports made only for type checking."""
    files = sorted(PKG.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules, skip_type_checking=not typing_too) for f in files}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_is_in_the_map() -> None:
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED), "add the new package to ALLOWED and docs/ARCHITECTURE.md"


def test_imports_go_only_in_the_allowed_directions() -> None:
    wrong = []
    for module, deps in graph().items():
        src = top(module)
        if not src:
            continue
        for dep in deps:
            dst = top(dep)
            if dst and dst != src and dst not in ALLOWED[src]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports against the package map:\n" + "\n".join(sorted(wrong))


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module are import loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            connect(v)
    return out


def test_no_module_imports_itself_through_a_loop() -> None:
    """Imports made only for type checking count too: a type that two modules need belongs below both."""
    loops = strongly_connected(graph(typing_too=True))
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


@pytest.mark.parametrize("loop", [{"a": {"b"}, "b": {"c"}, "c": {"a"}}])
def test_the_loop_finder_finds_a_loop(loop: dict[str, set[str]]) -> None:
    assert strongly_connected(loop) == [["a", "b", "c"]]


def test_only_the_agent_package_imports_the_voice_framework() -> None:
    offenders = []
    for f in sorted(PKG.rglob("*.py")):
        if top(module_name(f)) in ("agent", "cli"):
            continue
        text = f.read_text()
        if "livekit.agents" in text or "from livekit import agents" in text:
            offenders.append(module_name(f))
    assert not offenders, f"livekit.agents imported outside callwise.agent: {offenders}"
