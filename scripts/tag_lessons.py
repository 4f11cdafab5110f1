#!/usr/bin/env python
"""Tag every library function and class a lesson uses with the lessons that use it (as d2l does).

    python scripts/tag_lessons.py           # rewrite the "Lessons: ..." line of each docstring
    python scripts/tag_lessons.py --check   # exit 1 and list what is out of date (the test runs this)

A notebook "uses" a name when one of its code cells imports it from a library
module (``from resnet_tutorial.data import fast_loaders``) or reaches it as an
attribute of an imported library module (``diagnostics.grad_norms``). A library
package (``diagnostics/``) counts as one module: the tag goes on the definition
in whichever of its files defines the name. Lesson
modules (``resnet_tutorial.lessons``) and app modules (widgets, config, cli,
executor, exercises) are not tagged: they are the lessons' own side. The tag
is the docstring's last line, ``Lessons: 01, 03.``, so a reader can go from
the code to the lessons, and the lessons already name the code.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "resnet_tutorial"
NOT_LIBRARY = {"widgets", "config", "cli", "executor", "exercises", "__main__", "__init__"}
TAG = re.compile(r"^\s*Lessons: [0-9, ]+\.\s*$")


def library_modules() -> dict[str, list[Path]]:
    """Library modules by the name notebooks import (``diagnostics``), each with the files that define it:
    one for a module, the submodules for a package (``diagnostics/gradient_flow.py``, ...)."""
    found = {p.stem: [p] for p in PACKAGE.glob("*.py") if p.stem not in NOT_LIBRARY}
    for init in PACKAGE.glob("*/__init__.py"):
        package = init.parent.name
        if package not in NOT_LIBRARY and package != "lessons":
            found[package] = sorted(p for p in init.parent.glob("*.py") if p.name != "__init__.py")
    return found


def _code(cell_source: str) -> str:
    # IPython magics and shell escapes are not Python
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell_source.splitlines())


def uses_in_notebook(path: Path, modules: set[str]) -> set[tuple[str, str]]:
    """``(module, name)`` pairs of library objects the notebook's code cells use."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    aliases: dict[str, str] = {}
    used: set[tuple[str, str]] = set()
    trees = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            trees.append(ast.parse(_code(cell.source)))
        except SyntaxError:
            continue  # an exercise stub with "..." placeholders may not parse; it uses nothing of ours
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "resnet_tutorial":
                    for a in node.names:
                        if a.name in modules:
                            aliases[a.asname or a.name] = a.name
                elif node.module.startswith("resnet_tutorial."):
                    mod = node.module.split(".")[1]  # resnet_tutorial.diagnostics.gradient_flow -> diagnostics
                    if mod in modules:
                        used |= {(mod, a.name) for a in node.names}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                used.add((aliases[node.value.id], node.attr))
    return used


def lessons_per_object() -> dict[tuple[str, str], list[str]]:
    modules = set(library_modules())
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for key in uses_in_notebook(nb, modules):
            found[key].add(nb.name[:2])
    return {k: sorted(v) for k, v in found.items()}


def _documented_defs(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level functions and classes, and methods of top-level classes, by name."""
    defs: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
    return defs


def retag(path: Path, wanted: dict[str, list[str]]) -> tuple[str, list[str]]:
    """The module's source with every tag set to ``wanted`` (name -> lessons), and what changed."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line) of a docstring -> new lines
    changed: list[str] = []
    for name, node in _documented_defs(tree).items():
        lessons = wanted.get(name)
        doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) else None
        if doc is None or not isinstance(getattr(doc, "value", None), ast.Constant) or not isinstance(doc.value.value, str):
            if lessons:
                changed.append(f"{path.stem}.{name}: used by lessons {', '.join(lessons)} but has no docstring")
            continue
        first, last = doc.lineno - 1, doc.end_lineno - 1
        block = lines[first:last + 1]
        indent = re.match(r"\s*", block[0]).group(0)
        body = [ln for ln in block if not TAG.match(ln)]
        if not lessons and len(body) == len(block):
            continue  # untagged and unused: leave the docstring as it is
        tag = f"{indent}Lessons: {', '.join(lessons)}.\n" if lessons else None
        new = _with_tag(body, tag, indent)
        if new != block:
            changed.append(f"{path.stem}.{name}: " + (f"Lessons: {', '.join(lessons)}" if lessons else "no lesson uses it"))
            edits.append((first, last, new))
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last + 1] = new
    return "".join(lines), changed


def _with_tag(block: list[str], tag: str | None, indent: str) -> list[str]:
    """A docstring's lines with ``tag`` as its last line (before the closing quotes)."""
    text = "".join(block)
    quote = '"""' if '"""' in text else "'''"
    if len(block) == 1:  # one-line docstring: open it up
        if tag is None:
            return block
        inner = block[0].strip()[3:-3]
        return [f"{indent}{quote}{inner}\n", "\n", tag, f"{indent}{quote}\n"]
    closing = block[-1]
    body = block[:-1]
    while len(body) > 1 and body[-1].strip() == "":  # no blank line left before the closing quotes
        body = body[:-1]
    if closing.strip() != quote:  # text on the closing line: move the quotes to a line of their own
        body = body + [closing.replace(quote, "").rstrip() + "\n"]
        closing = f"{indent}{quote}\n"
    if tag is None:
        return body + [closing]
    return body + ["\n", tag, closing] if body[-1].strip() else body + [tag, closing]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a tag is out of date")
    args = parser.parse_args(argv)
    per_object = lessons_per_object()
    problems: list[str] = []
    for mod, paths in sorted(library_modules().items()):
        wanted = {name: lessons for (m, name), lessons in per_object.items() if m == mod}
        for path in paths:
            new_source, changed = retag(path, wanted)
            problems += changed
            if changed and not args.check:
                path.write_text(new_source, encoding="utf-8")
    if problems:
        print(("out of date (run python scripts/tag_lessons.py):\n  " if args.check else "retagged:\n  ")
              + "\n  ".join(problems))
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
