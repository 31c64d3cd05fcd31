"""Checks of the code's shape, by reading its source (used by tests/test_architecture.py).

`private_uses`: every use of a dependency's private parts, which any upgrade of it may
break: a private module or name imported, a private attribute of one of its objects read or
called, one of its classes or modules patched, its internals matched by name, a driver
module stood in for. Without types it cannot tell whose an object is, so a private
attribute is allowed only on `self`, `cls`, `super()` or a name the file binds to the
project (its imports of the project, its own classes and functions), and only if the
project defines it; `setattr` only on those. A plain assignment to an attribute of an
object (`app.bot.send_message = f`) cannot be told from the project setting its own, and
is not reported unless the object is a dependency's name or reached through `type()`.

`import_graph`: which module of the project imports which, counting imports under
`TYPE_CHECKING` and inside functions (a cycle hidden there is still a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's own code: what is checked, and where its own names are defined.
PROJECT = ("bot", "handlers", "models", "migrations", "tests", "bench", "dev.py")
DEPENDENCIES = frozenset({
    "telegram", "sqlalchemy", "aiohttp", "asyncio", "alembic", "aiosqlite", "asyncpg",
    "httpx", "apscheduler", "pydantic", "cryptography", "uvloop", "orjson", "pymorphy3",
    "matplotlib",
})
# Attributes through which code is matched by its name or driven by hand.
INTERNALS = frozenset({"__qualname__", "__code__", "cr_code", "gi_code", "co_name",
                       "f_code", "cr_frame", "gi_frame", "f_back", "_getframe"})
# Process-wide hooks that hand every coroutine or module of the process to the project.
HOOKS = frozenset({"set_task_factory", "set_coroutine_origin_tracking_depth"})


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def project_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for entry in PROJECT:
        path = root / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [f for f in files if "__pycache__" not in f.parts]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _top(module: str | None) -> str:
    return (module or "").split(".")[0]


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def own_names(trees: Iterable[ast.Module]) -> set[str]:
    """Private names the project defines itself: functions, classes, class attributes and
    attributes it assigns (`self._x = ...`)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Attribute) and _root_name(leaf) in ("self",
                                                                                    "cls"):
                            names.add(leaf.attr)
                        elif isinstance(leaf, ast.Name):
                            names.add(leaf.id)
    return {n for n in names if is_private(n)}


PACKAGES = frozenset(_top(entry.removesuffix(".py")) for entry in PROJECT)


def project_bound(tree: ast.Module) -> set[str]:
    """Names a file binds to the project's own modules and objects: its imports of the
    project, and the classes and functions it defines at the top."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names
                         if _top(a.name) in PACKAGES)
        elif isinstance(node, ast.ImportFrom) and (node.level or _top(node.module) in PACKAGES):
            names.update(a.asname or a.name for a in node.names)
    return names


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, own: set[str], bound: set[str]) -> None:
        self.path = path
        self.own = own
        self.found: list[Finding] = []
        # Names bound in this file to a dependency (a module or anything imported from one).
        self.foreign: set[str] = set()
        # Names bound in this file to the project's own modules, classes and functions.
        self.bound = bound
        # For each class being read: the private names it defines itself, and whether it
        # extends a dependency's class (then `self._x` must be its own).
        self.classes: list[tuple[set[str], bool]] = []

    def report(self, node: ast.AST, what: str) -> None:
        self.found.append(Finding(self.path, getattr(node, "lineno", 0), what))

    # imports ---------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _top(alias.name) in DEPENDENCIES:
                self.foreign.add((alias.asname or alias.name).split(".")[0])
                if any(is_private(part) for part in alias.name.split(".")):
                    self.report(node, f"imports the private module {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or _top(node.module) not in DEPENDENCIES:
            return
        assert node.module is not None
        if any(is_private(part) for part in node.module.split(".")):
            self.report(node, f"imports from the private module {node.module}")
        for alias in node.names:
            self.foreign.add(alias.asname or alias.name)
            if is_private(alias.name):
                self.report(node, f"imports the private name {alias.name} of {node.module}")

    # classes ---------------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        defined: set[str] = set()
        for child in ast.walk(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(child.name)
            elif isinstance(child, ast.Assign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                    elif isinstance(target, ast.Attribute) and _root_name(target) == "self":
                        defined.add(target.attr)
        extends = any(_root_name(base) in self.foreign for base in node.bases)
        self.classes.append((defined, extends))
        self.generic_visit(node)
        self.classes.pop()

    # attributes ------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if name in INTERNALS:
            self.report(node, f"reads {name}: matches or drives code by its internals")
        elif is_private(name):
            root = _root_name(node)
            inherited = self.classes and self.classes[-1][1] and root == "self" and \
                name not in self.classes[-1][0]
            if inherited:
                self.report(node, f"uses {name}, a private attribute of the class it extends")
            elif name not in self.own:
                self.report(node, f"uses {name}, a private attribute it does not define")
            elif root not in ("self", "cls", "super") and root not in self.bound:
                # `loop._ready`: the project has a `_ready` of its own, but nothing says
                # this object is the project's.
                self.report(node, f"uses {name} of {ast.unparse(node.value)}, an object "
                                  "the project does not define here")
        self.generic_visit(node)

    def _patched(self, target: ast.expr, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute) and _root_name(target) in self.foreign:
            self.report(node, f"patches {ast.unparse(target)}, a dependency's attribute")
        if isinstance(target, ast.Attribute) and _through_its_class(target.value):
            self.report(node, f"patches {ast.unparse(target)}, a class reached through an "
                              "object")
        if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "sys.modules":
            self.report(node, "replaces a module in sys.modules")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._patched(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._patched(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._patched(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._patched(target, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else \
            func.id if isinstance(func, ast.Name) else ""
        if called in ("setattr", "delattr") and node.args:
            first = node.args[0]
            root = _root_name(first)
            if root in self.foreign or _through_its_class(first):
                self.report(node, f"patches {ast.unparse(first)} with {called}")
            elif not (isinstance(first, ast.Constant) or root in ("self", "cls") or
                      root in self.bound):
                self.report(node, f"patches {ast.unparse(first)} with {called}, an object "
                                  "the project does not define here")
            for arg in node.args[:2]:  # monkeypatch.setattr("telegram.Bot.x", ...)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                        "." in arg.value and _top(arg.value) in DEPENDENCIES:
                    self.report(node, f"patches {arg.value}")
        if called in ("getattr", "hasattr") and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and \
                    is_private(name.value) and name.value not in self.own:
                self.report(node, f"reaches for {name.value} by its name")
        if called in HOOKS:
            self.report(node, f"installs a process-wide hook ({called})")
        if called in ("create_engine", "create_async_engine") and \
                any(k.arg == "module" for k in node.keywords):
            self.report(node, "stands in for the database driver (module=)")
        self.generic_visit(node)


def _through_its_class(node: ast.expr) -> bool:
    """`type(x)` or `x.__class__`: an object's class, whosever it is."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and
            node.func.id == "type") or \
        (isinstance(node, ast.Attribute) and node.attr == "__class__")


def private_uses(paths: Iterable[Path], root: Path = ROOT) -> list[Finding]:
    sources = {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in paths}
    own = own_names(sources.values())
    found: list[Finding] = []
    for path, tree in sources.items():
        checker = _Checker(str(path.relative_to(root)) if path.is_relative_to(root)
                           else str(path), own, project_bound(tree))
        checker.visit(tree)
        found.extend(checker.found)
    return found


# ------------------------------------------------------------------------------ imports


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.Module, name: str, is_package: bool) -> Iterator[str]:
    """Every module `tree` imports, wherever the import stands (absolute names)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                yield f"{base}.{alias.name}"  # a module, or a name in `base`
            yield base


def import_graph(packages: Iterable[str], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (directly)."""
    paths = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    modules = {module_name(p, root): p for p in paths}

    def resolve(imported: str) -> str | None:
        while imported and imported not in modules:
            imported = imported.rpartition(".")[0]
        return imported or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = {resolve(i) for i in imports_of(tree, name, path.name == "__init__.py")}
        # A package's __init__ is imported on the way to any of its modules: not an edge.
        graph[name] = {t for t in targets if t and t != name and
                       not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def external_imports(path: Path) -> set[str]:
    """The top-level packages a file imports from outside the project (or anything)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {_top(i) for i in imports_of(tree, module_name(path), path.name == "__init__.py")}
