"""The house plan, enforced: stages import only lower stages, and nothing imports in a circle.

Reads the source with :mod:`ast` (nothing is imported), so it checks every import, those
inside functions included. The layers, lowest first, are ``LAYERS``; a module may import its
own package, any lower layer, and the root configuration only from the application layer.
Each upward import still in the code is listed in ``UPWARD`` with its reason; the test fails
on a new one and on a listed one that no longer exists, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Lowest first. A unit is a subpackage of aio_ray (its first component), a top-level module
# of aio_ray, or one of the application folders.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "frozen", "logsetup", "progress"),
    ("schema", "raycluster"),
    ("bars",),
    ("data",),
    ("indicators",),
    ("patterns",),
    ("library",),  # the database: runs, candidates, rankings, pattern statistics
    ("pine.escape", "pine.builder", "pine.templates"),  # the Pine language, below the families
    ("strategies",),  # families, backtest and search; the search streams into the library
    ("pine",),  # Pine export and verification: over the families and the library
    ("charts",),
    ("vision",),
    ("serve.settings",),  # the serve section's model, pydantic only
    ("config",),  # the root config composes the stages' own config modules
    ("replay", "pipeline"),
    ("cli", "serve", "jobs"),
    ("aio_ray",),  # the package itself: lazy re-exports of the public API
)

_RANKS: dict[str, int] = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

# (importer, imported) module pairs that cross a layer upward, with the reason each stays.
UPWARD: dict[tuple[str, str], str] = {
    ("aio_ray.library.models", "aio_ray.strategies.space"): (
        "a strategy's id hashes its family-aware identity_params, so two spellings of one "
        "strategy share a row; the rule belongs to the families, the id to the library"
    ),
}

SOURCES = ("aio_ray", "serve", "jobs")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The layer unit of a module: the longest prefix named in LAYERS (``pine.builder``
    before ``pine``), else its subpackage of aio_ray or its top-level folder."""
    parts = module.split(".")
    inner = parts[1:] if parts[0] == "aio_ray" else parts
    for k in range(len(inner), 0, -1):
        if ".".join(inner[:k]) in _RANKS:
            return ".".join(inner[:k])
    return inner[0] if inner else "aio_ray"


def _all_modules() -> set[str]:
    return {_module_name(p) for top in SOURCES for p in (REPO / top).rglob("*.py")}


_MODULES: set[str] = set()


def _imports() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (anywhere in its body)."""
    _MODULES.update(_all_modules())
    graph: dict[str, set[str]] = defaultdict(set)
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            module = _module_name(path)
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")[: len(package.split(".")) - node.level + 1]
                        target = ".".join(base + ([node.module] if node.module else []))
                    else:
                        target = node.module or ""
                    # "from p import m" imports module p.m when there is one, else a name of p
                    names = [f"{target}.{a.name}" for a in node.names] + [target]
                    names = [n for n in names if n != target] + [target] * bool(
                        any(f"{target}.{a.name}" not in _MODULES for a in node.names)
                    )
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in SOURCES:
                        graph[module].add(name)
            graph.setdefault(module, set())
    return {m: {t for t in ts if t in _MODULES and t != m} for m, ts in graph.items()}


def test_every_unit_has_a_layer() -> None:
    rank = _RANKS
    missing = sorted({_unit(m) for m in _imports()} - set(rank))
    assert missing == [], f"place these in LAYERS: {missing}"


def test_no_import_cycles_between_modules() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _upward() -> set[tuple[str, str]]:
    rank = _RANKS
    found = set()
    for m, targets in _imports().items():
        for t in targets:
            a, b = _unit(m), _unit(t)
            if a != b and rank[b] > rank[a]:
                found.add((m, t))
    return found


def test_stages_import_only_lower_stages() -> None:
    new = sorted(_upward() - set(UPWARD))
    assert new == [], "upward imports (move the code down, or list it with a reason):\n" + (
        "\n".join(f"{a} -> {b}" for a, b in new)
    )


def test_the_list_of_upward_imports_only_shrinks() -> None:
    stale = sorted(set(UPWARD) - _upward())
    assert stale == [], f"no longer imported, remove from UPWARD: {stale}"


def _unexplained_local_imports() -> list[str]:
    """Imports inside a function without a reason: a comment on the statement's lines or in
    the two lines above it (a group of imports shares one)."""
    found = []
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            lines = path.read_text().splitlines()
            tree = ast.parse("\n".join(lines), str(path))
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if not isinstance(node, ast.Import | ast.ImportFrom):
                        continue
                    end = node.end_lineno or node.lineno
                    near = lines[max(0, node.lineno - 3) : end]
                    if not any("#" in line for line in near):
                        found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_import_inside_a_function_says_why() -> None:
    # Imports belong at the top; the exceptions (optional heavy dependencies, Ray workers,
    # the CLI's start-up time) each carry a one-line reason.
    assert _unexplained_local_imports() == []
