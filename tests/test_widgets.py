"""The explorer helper: redraw on change, one figure, fallback without widgets."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from resnet_tutorial import config, widgets


def _draw(n: int = 3, color: str = "red"):
    fig, ax = plt.subplots()
    ax.plot(range(n), color=color)
    return fig


def test_pick_follows_fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.FAST_ENV, "1")
    assert config.is_fast() and config.pick(10, 1) == 1
    monkeypatch.setenv(config.FAST_ENV, "0")
    assert not config.is_fast() and config.pick(10, 1) == 10


def test_fallback_runs_draw_once_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(widgets, "_show", lambda result: calls.append(result))
    assert not widgets.widgets_available()  # plain pytest process: no kernel
    widgets.explore(lambda n, color: (n, color), n=W.IntSlider(value=4, min=1, max=9), color="blue")
    assert calls == [(4, "blue")]


def test_widget_path_redraws_on_change_and_closes_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    slider = W.IntSlider(value=3, min=1, max=9)
    explorer = widgets.explore(_draw, n=slider, color="green")
    figures = [o for o in shown if isinstance(o, plt.Figure)]
    assert len(figures) == 1 and len(figures[0].axes[0].lines[0].get_xdata()) == 3
    slider.value = 7  # what a person's key press does
    figures = [o for o in shown if isinstance(o, plt.Figure)]
    assert len(figures) == 2 and len(figures[1].axes[0].lines[0].get_xdata()) == 7
    assert plt.get_fignums() == []  # closed after display: nothing piles up in pyplot
    assert "rt-explorer" in explorer.box._dom_classes
    assert slider.continuous_update is False
    # displayed once, by explore: the box, then the first figure, and the handle displays nothing
    assert [type(o).__name__ for o in shown[:2]] == ["VBox", "Figure"]
    assert shown.count(explorer.box) == 1


def test_returned_handle_does_not_display_the_explorer_again() -> None:
    from IPython.core.formatters import DisplayFormatter

    box = W.VBox([])
    handle = widgets.Explorer(box, {}, W.Output(), lambda: None, "draw")
    data, _ = DisplayFormatter().format(handle)  # what IPython does with a cell's last value
    assert data == {}
    data_box, _ = DisplayFormatter().format(box)
    assert "application/vnd.jupyter.widget-view+json" in data_box  # the box itself would show again


def test_manual_explorer_waits_for_the_button(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr(widgets, "_show", lambda result: calls.append(result))
    monkeypatch.setattr("IPython.display.display", lambda obj: None)
    slider = W.IntSlider(value=2, min=1, max=9)
    explorer = widgets.explore(lambda n: n, manual=True, n=slider)
    assert calls == [2]
    slider.value = 5
    assert calls == [2]  # no rerun until Run is pressed
    button = next(c for c in explorer.box.children if isinstance(c, W.Button))
    button.click()
    assert calls == [2, 5]
