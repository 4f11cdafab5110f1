"""The package's layout rules, checked from the source (docs/DESIGN.md explains them).

* the library never imports a lesson module (``resnet_tutorial.lessons``) or an
  app module (``widgets``, ``config``, ``cli``, ``executor``, ``exercises`` and its modules, ``__main__``);
* no import cycle between the package's modules, imports inside functions included;
* no function longer than 90 lines, no module longer than 800 (one named exception);
* every lesson notebook ``NN_name.ipynb`` has its module ``lessons/lNN_name.py``, and back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "resnet_tutorial"
APP_MODULES = {"widgets", "config", "cli", "executor", "exercises", "__main__"}
MAX_FUNCTION_LINES = 90
MAX_MODULE_LINES = 800
#: modules allowed over MAX_MODULE_LINES for now, and why
OVERSIZED: dict[str, str] = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) if parts else ""


def imported_modules(path: Path) -> set[str]:
    """Package modules ``path`` imports anywhere in its source (relative or absolute imports)."""
    me = module_name(path)
    package_parts = me.split(".")[:-1] if path.name != "__init__.py" else me.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("resnet_tutorial"):
                target = node.module[len("resnet_tutorial"):].lstrip(".")
            else:
                continue
            candidates = [f"{target}.{a.name}".lstrip(".") for a in node.names] + [target]
            found |= {c for c in candidates if c in MODULES}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("resnet_tutorial."):
                    found.add(alias.name[len("resnet_tutorial."):])
    return found - {me, ""}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def is_app(name: str) -> bool:
    top = name.split(".")[0]  # a package's modules share its side: exercises.checker is app, diagnostics.* library
    return top in APP_MODULES or top == "lessons"


def test_the_checker_sees_imports_inside_functions():
    # data.fast_loaders picks the device: the import graph must see device, even if imported lazily
    assert "device" in GRAPH["data"]
    assert "diagnostics" in GRAPH["lessons.l03_residual_block"]
    assert "train" in GRAPH["diagnostics.gradient_flow"]  # update_to_data_ratios imports train_steps inside it
    assert "lessons.l04_shape_tracing_resnet18" in GRAPH["exercises.l04_shape_tracing_resnet18"]  # lazily, too
    assert is_app("exercises.checker") and not is_app("diagnostics.gradient_flow")


def test_library_never_imports_lessons_or_app_modules():
    bad = {m: sorted(i for i in imports if is_app(i)) for m, imports in GRAPH.items() if not is_app(m) and m}
    bad = {m: i for m, i in bad.items() if i}
    assert not bad, f"library modules importing lesson/app modules: {bad}"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH.get(m, ())):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_no_function_over_90_lines():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert not long, "split these functions: " + "; ".join(long)


def test_no_module_over_800_lines():
    long = {}
    for name, path in MODULES.items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES and name not in OVERSIZED:
            long[name or "__init__"] = n
    assert not long, ("split these modules along a seam (one concept per module; a package whose __init__ "
                      f"re-exports keeps the imports working): {long}")
    assert set(OVERSIZED) <= set(MODULES), f"OVERSIZED names a module that does not exist: {set(OVERSIZED) - set(MODULES)}"


def test_every_lesson_has_its_module_and_back():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    modules = {p.stem[1:] for p in (PACKAGE / "lessons").glob("l[0-9][0-9]_*.py")}
    assert notebooks == modules, (
        f"notebooks without a lessons/ module: {sorted(notebooks - modules)}; "
        f"lesson modules without a notebook: {sorted(modules - notebooks)}"
    )


def test_library_docstrings_name_the_lessons_that_use_them():
    # d2l-style tags ("Lessons: 01, 03."), kept true by scripts/tag_lessons.py
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "tag_lessons.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
