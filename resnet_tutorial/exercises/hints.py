"""Hints, one at a time: the first call shows hint 1, the next hint 2, then a pointer to the solution."""

from __future__ import annotations

from dataclasses import dataclass

from .catalogue import _EXERCISES
from .report import inline_html

_HINTS_SHOWN: dict[str, int] = {}


@dataclass
class Hint:
    """One hint, shown as a short note; ``number`` counts from 1, 0 means "no hints left"."""

    exercise_id: str
    number: int
    total: int
    text: str

    def __repr__(self) -> str:
        if self.number == 0:
            return self.text
        return f"Hint {self.number} of {self.total} for {self.exercise_id}: {self.text}"

    def _repr_html_(self) -> str:
        head = "" if self.number == 0 else f"<b>Hint {self.number} of {self.total}</b> for <code>{self.exercise_id}</code>: "
        return (f'<div class="rt-hint" style="border-left: 4px solid #1565c0; padding: 4px 12px;">'
                f"{head}{inline_html(self.text)}</div>")


def hint(exercise_id: str) -> Hint:
    """The next hint for an exercise: the first call shows hint 1, the next hint 2, ...

    After the last hint it points to the folded solution. :func:`reset_hints`
    starts the count again.
    """
    if exercise_id not in _EXERCISES:
        return Hint(exercise_id, 0, 0, f"No exercise {exercise_id!r}; known: {', '.join(_EXERCISES)}.")
    hints = _EXERCISES[exercise_id].hints
    n = _HINTS_SHOWN.get(exercise_id, 0)
    if n >= len(hints):
        return Hint(exercise_id, 0, len(hints), f"No more hints for {exercise_id}: the full solution is folded "
                                                "under 'Solution' below its check cell.")
    _HINTS_SHOWN[exercise_id] = n + 1
    return Hint(exercise_id, n + 1, len(hints), hints[n])


def reset_hints(exercise_id: str | None = None) -> None:
    """Start the hint count again for one exercise (or all)."""
    if exercise_id is None:
        _HINTS_SHOWN.clear()
    else:
        _HINTS_SHOWN.pop(exercise_id, None)
