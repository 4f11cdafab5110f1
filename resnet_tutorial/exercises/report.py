"""What a check found, as plain text (the contract) and as a short HTML report in a notebook."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field


def inline_html(text: str) -> str:
    """Escape ``text`` for HTML and render its `code` and *emphasis* spans."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"(?<![\w*])\*(\S[^*]*?)\*(?![\w*])", r"<em>\1</em>", out)


@dataclass
class CheckResult:
    """What :func:`~resnet_tutorial.exercises.check` found.

    ``passed`` and ``message`` (plain text) are the contract; ``mistakes`` names the
    mistakes recognised (the exercise's own, such as ``"unbiased"``, or the general
    ones: ``"float_for_int"``, ``"wrong_dtype"``, ``"mutated_input"``, ``"half_finished"``,
    ``"too_slow"``, ...). In a notebook the result shows as a short HTML report,
    elsewhere as its message.
    """

    exercise_id: str
    status: str  # "passed", "failed", "not attempted", "unknown exercise"
    title: str = ""
    tried: str = ""
    got: str = ""
    expected: str = ""
    difference: str = ""
    diagnosis: str = ""
    mistakes: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def attempted(self) -> bool:
        return self.status in ("passed", "failed")

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("Tried", self.tried), ("Got", self.got), ("Expected", self.expected),
                ("Difference", self.difference), ("Diagnosis", self.diagnosis)]
        return [(k, v) for k, v in rows if v]

    def _headline(self) -> str:
        if self.status == "passed":
            return f"✓ {self.exercise_id} passed: your function matches the reference on all {len(self.cases)} cases."
        if self.status == "failed":
            return f"✗ {self.exercise_id}: not right yet."
        if self.status == "not attempted":
            return f"○ {self.exercise_id}: not attempted yet."
        return f"? {self.exercise_id}: no such exercise."

    @property
    def message(self) -> str:
        lines = [self._headline()]
        if self.status == "passed":
            lines += [f"  · {c}" for c in self.cases]
        lines += [f"{k}: {v}" for k, v in self._rows()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__

    def _repr_html_(self) -> str:
        color = {"passed": "#2e7d32", "failed": "#c75c00", "not attempted": "#757575"}.get(self.status, "#b00020")
        esc = inline_html
        parts = [f'<div class="rt-check rt-check-{self.status.replace(" ", "-")}" style="border-left: 4px solid '
                 f'{color}; padding: 4px 12px; margin: 4px 0;">',
                 f'<div style="font-weight: bold; color: {color};">{esc(self._headline())}</div>']
        if self.status == "passed":
            parts.append("<ul style='margin: 2px 0;'>" + "".join(f"<li>{esc(c)}</li>" for c in self.cases) + "</ul>")
        if self._rows():
            parts.append('<table style="border-collapse: collapse; margin-top: 2px;">')
            for k, v in self._rows():
                parts.append(f'<tr><td style="vertical-align: top; padding: 2px 10px 2px 0; font-weight: bold; '
                             f'text-align: left;">{esc(k)}</td><td style="text-align: left; padding: 2px 0;">'
                             f'{esc(v)}</td></tr>')
            parts.append("</table>")
        if self.note:
            parts.append(f'<div style="margin-top: 2px; font-style: italic;">{esc(self.note)}</div>')
        parts.append("</div>")
        return "".join(parts)
