"""Interactive explorers that redraw in place, and still run without widgets.

Every explorer in the lessons is a *plain function* ``draw(**params)`` that
returns a matplotlib Figure (or a DataFrame, or anything IPython can display).
Tests call that function directly; :func:`explore` wraps it in ipywidgets:

* one ``Output`` area that is cleared before each redraw (``wait=True``), so
  moving a slider replaces the figure instead of piling up new ones;
* figures are closed after display so pyplot does not also show them;
* ``manual=True`` adds a "Run" button for experiments that take seconds
  (training), so dragging a slider does not start ten runs;
* without ipywidgets, outside a kernel, or with ``RESNET_TUTORIAL_NO_WIDGETS=1``
  the function runs once with the default values and its result is shown.
"""

from __future__ import annotations

import os
from typing import Any, Callable

NO_WIDGETS_ENV = "RESNET_TUTORIAL_NO_WIDGETS"


def widgets_available() -> bool:
    """True when ipywidgets is importable, we run inside a kernel and not disabled."""
    if os.environ.get(NO_WIDGETS_ENV, "").strip() in {"1", "true", "yes"}:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _default_value(control: Any) -> Any:
    """The value a control starts at (a widget's ``.value`` or a plain constant)."""
    return getattr(control, "value", control)


def _show(result: Any) -> None:
    """Display a draw function's result and close figures so they do not pile up."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    if result is not None:
        display(result)
    plt.close("all")


class Explorer:
    """What :func:`explore` returns: handles on an explorer that is already on screen.

    ``explore`` displays the explorer itself. Were it to return the widget box,
    a cell ending in ``explore(...)`` would display it a second time (IPython
    shows a cell's last value), so it returns this handle, which displays as
    nothing. Tests and curious learners reach the parts through ``box``,
    ``controls``, ``output`` and :meth:`redraw`.
    """

    def __init__(self, box: Any, controls: dict[str, Any], output: Any, redraw: Callable[..., None],
                 name: str) -> None:
        self.box, self.controls, self.output, self._redraw, self.name = box, controls, output, redraw, name

    def redraw(self) -> None:
        """Run the draw function again with the controls' current values."""
        self._redraw()

    def _ipython_display_(self) -> None:
        """Nothing: the explorer was displayed once, by ``explore``."""

    def __repr__(self) -> str:
        return f"<explorer of {self.name}({', '.join(self.controls)}), shown above>"


def explore(
    draw: Callable[..., Any],
    *,
    manual: bool = False,
    title: str | None = None,
    **controls: Any,
) -> Any:
    """Show ``draw`` with one control per keyword and redraw in place on change.

    ``controls`` maps parameter names to ipywidgets controls (``IntSlider``,
    ``Dropdown``, ``ToggleButtons``, ``Checkbox``...) or to constants that are
    passed through unchanged. The explorer is displayed here, once; the
    returned :class:`Explorer` displays as nothing, so ``explore(...)`` as a
    cell's last line does not show it twice. Without widgets ``draw`` runs once
    with the default values, its result is shown and ``None`` returned.
    """
    if not widgets_available():
        values = {name: _default_value(c) for name, c in controls.items()}
        result = draw(**values)
        _show(result)
        return None

    import ipywidgets as W
    from IPython.display import display

    live = {k: c for k, c in controls.items() if isinstance(c, W.ValueWidget)}
    fixed = {k: c for k, c in controls.items() if k not in live}
    out = W.Output(layout=W.Layout(min_height="120px"))
    out.add_class("rt-explorer-output")

    def redraw(*_: Any) -> None:
        values = {k: c.value for k, c in live.items()}
        with out:
            out.clear_output(wait=True)
            _show(draw(**values, **fixed))

    for c in live.values():
        if hasattr(c, "continuous_update"):
            # Redraw when the learner lets go or presses a key, not on every pixel.
            c.continuous_update = False
        c.style = {"description_width": "initial"}

    children: list[Any] = []
    if title:
        children.append(W.HTML(f"<b>{title}</b>"))
    children.append(W.HBox(list(live.values()), layout=W.Layout(flex_flow="row wrap")))
    if manual:
        button = W.Button(description="Run", button_style="primary", icon="play")
        button.on_click(redraw)
        children.append(button)
    else:
        for c in live.values():
            c.observe(redraw, names="value")
    children.append(out)
    box = W.VBox(children)
    box.add_class("rt-explorer")
    display(box)
    redraw()
    return Explorer(box, live, out, redraw, getattr(draw, "__name__", "draw"))
