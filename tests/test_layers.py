"""Layers only call downward, and no two modules import each other round a cycle (ARCHITECTURE.md).

The import graph is read from the source (every import statement, those inside functions included,
those under `if TYPE_CHECKING:` left out), with `proxy/` mapped to `pytest_seedreplay.proxy` as it is
installed. import-linter reads the installed package's folder, which in an editable install does not
hold `proxy/`; this check does, from the repository."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom. A module may import its own layer's modules and those of lower layers only.
LAYERS = [
    ["cli"],
    ["plugin", "hooks"],
    ["session", "summary"],
    ["wording"],
    ["guard", "recorder", "settings"],
    ["cassettes"],
    ["finetune"],
    ["proxy"],
    ["similar", "paraphrase"],
    ["drift", "report"],
    ["store"],
    ["shapes"],
    ["policy", "savings"],
    ["core"],
]
# The simulator is an upstream stand-in: it shares only these with the proxy.
SIM_MAY_IMPORT = {"pytest_seedreplay.proxy.serve", "pytest_seedreplay.proxy.errors"}


def module_files() -> dict[str, Path]:
    files = {}
    for base, prefix in ((ROOT / "pytest_seedreplay", ["pytest_seedreplay"]), (ROOT / "proxy", ["pytest_seedreplay", "proxy"])):
        for path in base.rglob("*.py"):
            parts = prefix + list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:  # `from x import name` may name a function, not a module
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (resolve(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:
                    resolved = resolve(f"{target}.{alias.name}") or resolve(target)
                    if resolved:
                        found.add(resolved)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return {m for m in found if m.startswith("pytest_seedreplay")}


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself: the public API, which may name anything (lazily)
    for number, names in enumerate(LAYERS):
        if parts[1] in names:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and ARCHITECTURE.md)")


def test_every_module_has_a_layer():
    for module in graph():
        layer_of(module)


def test_layers_only_call_downward():
    upward = []
    for module, imported in graph().items():
        mine = layer_of(module)
        for target in imported:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs < mine:
                upward.append(f"{module} -> {target}")
            if theirs is None and mine is not None:
                upward.append(f"{module} -> {target} (the package root: import from the module that owns the name)")
    assert not upward, "imports that call a higher layer:\n" + "\n".join(sorted(upward))


def test_the_simulator_needs_only_core_shapes_and_the_serve_helpers():
    wrong = [
        f"{module} -> {target}"
        for module, imported in graph().items()
        if module.startswith("pytest_seedreplay.proxy.sim")
        for target in imported
        if not target.startswith(("pytest_seedreplay.proxy.sim", "pytest_seedreplay.core", "pytest_seedreplay.shapes"))
        and target not in SIM_MAY_IMPORT
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            strong(node)
    assert not cycles, "modules importing each other round a cycle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_check_sees_an_upward_import(tmp_path):
    # The checker itself must catch what it is for: a store module importing the proxy.
    path = tmp_path / "bad.py"
    path.write_text("from pytest_seedreplay.proxy.app import make_proxy_app\n", encoding="utf-8")
    found = imports_of("pytest_seedreplay.store.bad", path, {"pytest_seedreplay.proxy.app", "pytest_seedreplay.proxy"})
    assert found == {"pytest_seedreplay.proxy.app"} and layer_of("pytest_seedreplay.proxy.app") < layer_of(
        "pytest_seedreplay.store.bad"
    )


def test_the_proxy_state_sits_below_what_reads_it():
    """ProxyState lives in proxy/state.py, below the request path, the metrics and shared flights: they
    import it (for type hints too), it imports none of them, and none of them imports the app back."""

    def proxy_imports(name: str) -> set[str]:
        tree = ast.parse((ROOT / "proxy" / f"{name}.py").read_text(encoding="utf-8"))
        return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}

    assert proxy_imports("state").isdisjoint({"app", "cache", "metrics", "shared_flight", "workers"})
    for reader in ("cache", "metrics", "shared_flight", "workers"):
        assert "app" not in proxy_imports(reader), reader
