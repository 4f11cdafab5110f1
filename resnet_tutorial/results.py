"""Cached results: where they are found, how they are written, how they are read back.

Some lessons show experiments too long to rerun in class (lesson 08's four-hour
degradation run and its trained nets, lessons 10 and 11's runs without BN, lesions and loss landscapes,
lesson 05's add-vs-cat runs). Their tables are cached as CSV files, each with a
JSON file beside it (``degradation.csv`` + ``degradation.json``) that records the
command, the settings, the machine and the wall time, and the trained nets as
checkpoints. This module is the one place that knows where those files live.

A cache is looked up by its name (``"degradation.csv"``, ``"lesson10"``, ...)
in this order, and the first place that has it wins:

1. ``$RESNET_TUTORIAL_RESULTS``, when set (a folder of your own);
2. the working tree's ``results/``, when the package is imported from a clone of
   the repository (the folder next to ``pyproject.toml``);
3. your results folder, ``~/.cache/resnet-tutorial/results`` (``$XDG_CACHE_HOME``
   is honoured): where a rebuild writes when neither of the above applies;
4. the copy installed with the package (``resnet_tutorial/_results``: the
   repository's ``results/``, shipped in the wheel, about 13 MB).

A rebuild (``python -m resnet_tutorial degradation | why | add-vs-cat | pretrain``) writes
to the first of 1-3 that applies (:func:`output_path`), so it shadows the
installed copy without touching site-packages.

Every file is written by :func:`atomic_path`: into a temporary file in the same
folder, then moved into place with ``os.replace``, so an interrupted run never
leaves a half-written cache for a lesson to read.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

if TYPE_CHECKING:
    import pandas as pd

#: Set this to a folder to read and write cached results there first.
RESULTS_ENV = "RESNET_TUTORIAL_RESULTS"
_PACKAGE = Path(__file__).resolve().parent
#: The copy of the repository's ``results/`` installed with the package (package data).
INSTALLED = _PACKAGE / "_results"

#: The command that rebuilds each cache; ``{out}`` is where it goes (:func:`output_path`).
REBUILD: dict[str, str] = {
    "degradation.csv": "python -m resnet_tutorial degradation --depths 8 20 56 --epochs 15 --subset 1200 "
                       "--test-subset 300 --out {out}",
    "degradation_full.csv": "python -m resnet_tutorial degradation --full --depths 20 32 56 --epochs 12 "
                            "--out {out} --weights-dir {dir}/degradation_full",
    "degradation_full": "python -m resnet_tutorial degradation --full --depths 20 32 56 --epochs 12 "
                        "--out {dir}/degradation_full.csv --weights-dir {out}",
    "lesson10": "python -m resnet_tutorial why --depths 20 56 --out {out}",
    "add_vs_cat.csv": "python -m resnet_tutorial add-vs-cat --out {out}",
    "transfer_resnet20.pt": "python -m resnet_tutorial pretrain --out {out}",
}


def working_tree() -> Path | None:
    """The repository's ``results/`` when the package is imported from a clone (else ``None``)."""
    root = _PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "results").is_dir():
        return root / "results"
    return None


def user_dir() -> Path:
    """``~/.cache/resnet-tutorial/results`` (under ``$XDG_CACHE_HOME`` when that is set)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "resnet-tutorial" / "results"


def search_path() -> list[tuple[str, Path]]:
    """The folders a cache is looked up in, first to last, each with a label saying what it is."""
    places = []
    env = os.environ.get(RESULTS_ENV, "").strip()
    if env:
        places.append((f"${RESULTS_ENV}", Path(env).expanduser()))
    tree = working_tree()
    if tree is not None:
        places.append(("the working tree", tree))
    places.append(("your results folder", user_dir()))
    places.append(("the installed copy", INSTALLED))
    return places


def output_dir() -> Path:
    """Where a rebuild writes: ``$RESNET_TUTORIAL_RESULTS``, else the working tree's ``results/``,
    else :func:`user_dir` (never into the installed package)."""
    env = os.environ.get(RESULTS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return working_tree() or user_dir()


def output_path(name: str) -> Path:
    """Where a rebuild of the cache ``name`` writes (``output_dir() / name``)."""
    return output_dir() / name


def rebuild_command(name: str) -> str:
    """The ``python -m resnet_tutorial ...`` command that rebuilds the cache ``name``."""
    if name not in REBUILD:
        raise ValueError(f"no known cache {name!r}: choose from {sorted(REBUILD)}")
    return REBUILD[name].format(out=output_path(name), dir=output_dir())


def find(name: str) -> Path | None:
    """The first existing ``name`` along :func:`search_path`, or ``None``."""
    for _, folder in search_path():
        if (folder / name).exists():
            return folder / name
    return None


def path(name: str) -> Path:
    """Where ``name`` is read from if it exists anywhere, else where a rebuild would write it.

    For defaults that must not fail at import time; readers call :func:`locate`.
    """
    return find(name) or output_path(name)


def locate(name: str) -> Path:
    """The cache ``name`` (a file or a folder) from the first place of :func:`search_path` that has it.

    Raises ``FileNotFoundError`` naming every place looked in and the command that rebuilds it.
    """
    found = find(name)
    if found is not None:
        return found
    looked = "; ".join(f"{label}: {folder}" for label, folder in search_path())
    rebuild = f"rebuild it with `{rebuild_command(name)}`" if name in REBUILD else "it is not a known cache"
    raise FileNotFoundError(f"no cached {name} in any results folder ({looked}); {rebuild}")


def missing(name: str, where: str | os.PathLike, problem: str = "") -> FileNotFoundError:
    """The error for the cache ``name`` absent or incomplete at ``where``: ``problem`` (default
    "no cached <name>"), the place, and the command that rebuilds it there."""
    where = Path(where)
    rebuild = f"; rebuild it with `{REBUILD[name].format(out=where, dir=where.parent)}`" if name in REBUILD else ""
    return FileNotFoundError(f"{problem or 'no cached ' + name} at {where}{rebuild}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an error, move it into place.

    The one atomic write of the package: whatever writes to the yielded path
    (``DataFrame.to_csv``, ``torch.save``, ``Path.write_text``, a stream) either
    completes and replaces ``path`` in one ``os.replace``, or leaves ``path``
    untouched and no temporary file behind. The folder is created if needed;
    the file gets the usual permissions (``0o666`` minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are shared, not secret
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=float) + "\n", encoding="utf-8")
    return path


def read_json(path: str | os.PathLike) -> dict:
    """The JSON at ``path``, or ``{}`` when there is none."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def meta_path(table: str | os.PathLike) -> Path:
    """The JSON beside a table: ``x.csv`` -> ``x.json``."""
    return Path(table).with_suffix(".json")


def save_table(table: pd.DataFrame, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``table`` as CSV (6 significant digits) and, if given, ``meta`` as the JSON beside it.

    Both atomically; the table first, so a JSON never describes a table that is not there.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if meta is not None:
        write_json(meta_path(path), meta)
    return path


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """The CSV at ``path`` with the JSON beside it in ``.attrs["meta"]`` (``{}`` if there is none)."""
    import pandas as pd

    path = Path(path)
    table = pd.read_csv(path)
    table.attrs["meta"] = read_json(meta_path(path))
    return table


def save_parts(out: str | os.PathLike, parts: Mapping[str, tuple[dict, Sequence[str], Callable[[dict], Mapping]]],
               files: Mapping[str, str], *, force: bool = False, log: Callable[[str], None] = print,
               command: str | None = None, about: Mapping[str, Any] | None = None) -> dict:
    """Compute a folder of cached tables part by part, each written as soon as it is done; return ``meta.json``.

    ``parts``: ``{part: (settings, table names, compute)}``; ``compute(settings)``
    returns ``{table name: DataFrame}``, each saved to ``out / files[name]``.
    ``out/meta.json`` records per part its settings, wall time, the finishing
    time and ``about`` (the machine, versions). A part already recorded with
    the same settings and all its files present is skipped unless ``force``,
    so an interrupted rebuild continues; several callers may share one folder
    (each part is read-modify-written on its own).
    """
    import platform
    import shlex
    import sys
    import time

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta_file = out / "meta.json"
    for part, (settings, tables, compute) in parts.items():
        meta = read_json(meta_file)
        done = meta.get("parts", {}).get(part)
        if (not force and done is not None and done.get("settings") == settings
                and all((out / files[t]).is_file() for t in tables)):
            log(f"{part}: already in {out} with these settings (pass force=True / --force to redo)")
            continue
        t0 = time.perf_counter()
        for name, table in compute(settings).items():
            save_table(table, out / files[name])
        meta = read_json(meta_file)
        meta.setdefault("parts", {})[part] = {
            "settings": settings, "seconds": round(time.perf_counter() - t0, 1),
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            **dict(about or {}), "python": platform.python_version()}
        meta["command"] = command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
        write_json(meta_file, meta)
        log(f"{part}: done in {meta['parts'][part]['seconds']:.0f} s")
    return read_json(meta_file)
