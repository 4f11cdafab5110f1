"""Which exercises this learner has passed, kept in a small JSON file.

The file is ``~/.cache/resnet-tutorial/progress.json`` (``$XDG_CACHE_HOME`` is
honoured; ``RESNET_TUTORIAL_PROGRESS`` names another file, or a folder to keep
``progress.json`` in). It is written atomically (a temporary file, then
``results.atomic_path``); a corrupt file is set aside with a :class:`ProgressFileWarning`
and progress starts afresh. A problem with the file never breaks a check.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

from ..results import atomic_path
from .catalogue import get_exercise, list_exercises

#: Environment variable naming the progress file (or a folder to keep ``progress.json`` in).
PROGRESS_ENV = "RESNET_TUTORIAL_PROGRESS"
PROGRESS_VERSION = 1


class ProgressFileWarning(UserWarning):
    """The progress file could not be read or written; progress goes on without it."""


def progress_path() -> Path:
    """Where progress is kept: ``$RESNET_TUTORIAL_PROGRESS`` (a file, or a folder for
    ``progress.json``), else ``$XDG_CACHE_HOME`` or ``~/.cache``, in ``resnet-tutorial/``."""
    env = os.environ.get(PROGRESS_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        return p / "progress.json" if p.is_dir() else p
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "resnet-tutorial" / "progress.json"


def _valid(data: Any) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("exercises"), dict)
            and all(isinstance(k, str) and isinstance(v, dict) for k, v in data["exercises"].items()))


def _write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`resnet_tutorial.results.atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)


def _load_progress(path: Path) -> dict[str, dict]:
    """The stored entries; a missing file is empty, a corrupt one is set aside and reset (with a warning)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        warnings.warn(f"could not read the exercise progress file {path} ({err}); showing no progress",
                      ProgressFileWarning, stacklevel=3)
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        data = None
    if _valid(data):
        return dict(data["exercises"])
    backup = path.with_name(path.name + ".corrupt")
    try:
        path.replace(backup)
        _write_json_atomic(path, {"version": PROGRESS_VERSION, "exercises": {}})
        kept = f"the old file is kept as {backup}"
    except OSError as err:
        kept = f"it could not be replaced ({err})"
    warnings.warn(f"the exercise progress file {path} was unreadable, so progress starts afresh; {kept}",
                  ProgressFileWarning, stacklevel=3)
    return {}


def _now() -> str:
    return _dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")


def record_progress(exercise_id: str, passed: bool) -> None:
    """Count an attempt (and a pass) for ``exercise_id``; a file problem warns, never raises."""
    path = progress_path()
    entries = _load_progress(path)
    entry = dict(entries.get(exercise_id, {}))
    entry["attempts"] = int(entry.get("attempts", 0)) + 1
    entry["last_tried"] = _now()
    if passed and not entry.get("passed"):
        entry["first_passed"] = _now()
    entry["passed"] = bool(entry.get("passed")) or passed
    entries[exercise_id] = entry
    try:
        _write_json_atomic(path, {"version": PROGRESS_VERSION, "exercises": entries})
    except Exception as err:  # a full disk, a read-only home...: never let it break a check
        warnings.warn(f"could not save exercise progress to {path} ({err}); the check itself is not affected",
                      ProgressFileWarning, stacklevel=3)


def progress(lesson: str | int | None = None):
    """A table (pandas DataFrame) of every exercise: lesson, id, title, status, attempts, first passed.

    ``lesson=2`` shows one lesson. The file it reads is ``progress_path()``
    (also in the table's ``attrs["path"]``).
    """
    import pandas as pd

    path = progress_path()
    entries = _load_progress(path)
    rows = []
    for ex_id in list_exercises(lesson):
        ex, entry = get_exercise(ex_id), entries.get(ex_id, {})
        if entry.get("passed"):
            status = "passed ✓"
        elif entry.get("attempts"):
            status = "tried, not passed yet"
        else:
            status = "not tried"
        rows.append({"lesson": ex.lesson, "exercise": ex_id, "title": ex.title, "status": status,
                     "attempts": int(entry.get("attempts", 0)), "first passed": entry.get("first_passed", "")})
    table = pd.DataFrame(rows, columns=["lesson", "exercise", "title", "status", "attempts", "first passed"])
    table.attrs["path"] = str(path)
    table.attrs["passed"] = int((table["status"] == "passed ✓").sum())
    return table


def reset_progress() -> None:
    """Forget all progress (removes the progress file)."""
    try:
        progress_path().unlink()
    except FileNotFoundError:
        pass
