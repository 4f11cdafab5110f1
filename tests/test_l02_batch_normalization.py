"""Lesson 02's module: the conv-BN demo, the gradcheck negative control, and the three explorers.

Expectations are computed independently in the tests (numpy, torch.nn.functional, the quadratic's
closed-form optimum), not with the module's own helpers.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from resnet_tutorial.data import MEAN, STD, load_tensors  # noqa: E402
from resnet_tutorial.lessons import l02_batch_normalization as L02  # noqa: E402
from resnet_tutorial.models import make_deep_cnn  # noqa: E402


# ----------------------------------------------------------------- section 1: BN on a real conv block
def test_bn_in_action_normalizes_each_channel_as_the_formula_says():
    demo = L02.bn_in_action(n=16, scales=(0.25, 1.0, 4.0))
    before, after = demo["before"].double(), demo["after"].double()
    mean = before.mean(dim=(0, 2, 3), keepdim=True)
    var = ((before - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    torch.testing.assert_close(after, (before - mean) / torch.sqrt(var + 1e-5), atol=1e-5, rtol=1e-4)
    t = demo["table"]
    assert list(t.index) == [0, 1, 2]
    # the filters were scaled 0.25, 1, 4: the channels really start on different scales
    assert t["std before"].iloc[2] > 4 * t["std before"].iloc[0]
    assert t["std after"].between(0.99, 1.01).all() and (t["mean after"].abs() < 1e-5).all()
    with pytest.raises(ValueError, match="scales"):
        L02.bn_in_action(scales=(1.0, -1.0))


def test_plot_bn_in_action_draws_the_block_and_both_histograms():
    demo = L02.bn_in_action(n=8)
    fig = L02.plot_bn_in_action(demo)
    assert len(fig.axes) == 3
    assert [len(ax.patches) for ax in fig.axes[1:]] == [3, 3]  # one step histogram per channel


# ----------------------------------------------------------------- section 3: the negative control
def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=g).requires_grad_(True)
    gamma = (torch.rand(2, dtype=torch.float64, generator=g) + 0.5).requires_grad_(True)
    beta = torch.randn(2, dtype=torch.float64, generator=g).requires_grad_(True)
    return x, gamma, beta


def test_wrong_backward_has_the_right_forward_and_the_constant_statistics_gradient():
    x, gamma, beta = _inputs()
    y = L02.bn_with_wrong_backward(x, gamma, beta)
    ref = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    torch.testing.assert_close(y, ref)
    up = torch.randn_like(x)
    gx, gg, gb = torch.autograd.grad((y * up).sum(), (x, gamma, beta))
    rx, rg, rb = torch.autograd.grad((ref * up).sum(), (x, gamma, beta))
    var = x.detach().var(dim=(0, 2, 3), unbiased=False).view(1, -1, 1, 1)
    torch.testing.assert_close(gx, up * gamma.detach().view(1, -1, 1, 1) / torch.sqrt(var + 1e-5))
    torch.testing.assert_close(gg, rg)  # gamma's and beta's gradients are right ...
    torch.testing.assert_close(gb, rb)
    assert (gx - rx).abs().max() > 0.1  # ... the input's is not


def test_gradcheck_catches_the_wrong_backward_and_passes_the_right_one():
    x, gamma, beta = _inputs(1)
    assert not torch.autograd.gradcheck(L02.bn_with_wrong_backward, (x, gamma, beta), raise_exception=False)
    assert torch.autograd.gradcheck(lambda a, b, c: F.batch_norm(a, None, None, b, c, training=True),
                                    (x, gamma, beta), raise_exception=False)


# ----------------------------------------------------------------- section 4: gamma and beta learned back
def _optimum(target_mean: float, target_std: float, n: int = 4000, seed: int = 0) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Least-squares gamma, beta for y ≈ gamma x_hat + beta, with numpy, from the same draw."""
    y = (target_mean + target_std * torch.randn(n, generator=torch.Generator().manual_seed(seed))).double().numpy()
    z = 3 * y - 7
    x_hat = (z - z.mean()) / np.sqrt(z.var() + 1e-5)
    gamma = np.mean((x_hat - x_hat.mean()) * (y - y.mean())) / x_hat.var()
    return float(gamma), float(y.mean() - gamma * x_hat.mean()), x_hat, y


def test_affine_recovery_reaches_the_least_squares_optimum_in_one_step_at_lr_half():
    gamma, beta, _, _ = _optimum(2.0, 0.5)
    h = L02.affine_recovery(2.0, 0.5, lr=0.5, steps=3)["history"]
    # curvature 2 in gamma and beta: lr 0.5 is a Newton step
    assert h["gamma"].iloc[1] == pytest.approx(gamma, abs=1e-4)
    assert h["beta"].iloc[1] == pytest.approx(beta, abs=1e-4)


def test_affine_recovery_failure_modes():
    _, _, x_hat, y = _optimum(2.0, 0.5)
    diverged = L02.affine_recovery(2.0, 0.5, lr=1.5)
    assert diverged["diverged_at"] is not None and np.isnan(diverged["recovered"]).all()
    # |1 - 2 lr| = 2 per step: from |gamma - 0.5| = 0.5 it passes 1e6 after about 21 steps
    assert 15 <= diverged["diverged_at"] <= 25
    assert L02.affine_recovery(2.0, 0.5, lr=1.0)["diverged_at"] is None  # lr 1 bounces, does not grow
    zero = L02.affine_recovery(2.0, 0.5, gamma="frozen at 0", steps=300)
    assert zero["gamma"] == 0.0 and zero["beta"] == pytest.approx(y.mean(), abs=1e-3)
    assert np.ptp(zero["recovered"]) == 0.0  # every output is beta: the input is lost
    assert zero["history"]["loss"].iloc[-1] == pytest.approx(y.var(), rel=1e-3)
    one = L02.affine_recovery(2.0, 0.5, gamma="frozen at 1", steps=300)
    expected = np.mean((x_hat + y.mean() - y) ** 2)
    assert one["gamma"] == 1.0 and one["history"]["loss"].iloc[-1] == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ValueError, match="gamma"):
        L02.affine_recovery(gamma="learnt")
    with pytest.raises(ValueError, match="lr"):
        L02.affine_recovery(lr=0.0)


def test_affine_explorer_updates_in_place_and_shows_the_divergence():
    view = L02.AffineRecoveryExplorer()
    fig = view.draw()
    edges = view.edges
    for patch in (view.bn_hist, view.ideal_hist):  # densities: each histogram's area is 1
        assert np.sum(patch.get_data().values * np.diff(edges)) == pytest.approx(1.0, abs=0.01)
    lo, hi = view.ax1.get_xlim()
    assert lo <= 2.0 - 4 * 0.5 and hi >= 4.0
    assert view.draw(target_mean=-3.0, target_std=3.0) is fig  # the same figure, updated
    lo, hi = view.ax1.get_xlim()
    assert lo <= -3.0 - 3 * 3.0 and hi >= 3.0
    view.draw(lr=1.5)
    assert np.isnan(view.rec_line.get_ydata()).all() and "diverged" in view.t1.get_text()
    view.draw(gamma="frozen at 0")
    assert "the input is lost" in view.t1.get_text()


# ----------------------------------------------------------------- section 6: batch spread
def test_batch_spread_matches_the_pools_own_statistics():
    pool, trials = 2000, 600
    view = L02.BatchSpreadExplorer(pool=pool, trials=trials)
    images, _ = load_tensors(train=True)
    pixels = (images[:pool].double() / 255 - MEAN) / STD
    per_image = pixels.mean(dim=(1, 2))
    for b in (4, 64):
        img = view.compute(batch_size=b, source="B images")["mean"].std()
        pix = view.compute(batch_size=b, source="B single pixels")["mean"].std()
        assert img == pytest.approx(float(per_image.std()) / math.sqrt(b), rel=0.15)
        assert pix == pytest.approx(float(pixels.std()) / math.sqrt(b), rel=0.15)
        assert img < pix / 2  # an image is worth several independent pixels
    with pytest.raises(ValueError, match="batch_size"):
        view.compute(batch_size=1)
    with pytest.raises(ValueError, match="source"):
        view.compute(source="B rows")


def test_batch_spread_explorer_draws_every_batch():
    view = L02.BatchSpreadExplorer(pool=500, trials=300)
    view.draw(batch_size=64, source="B images")
    assert view.h1.get_data().values.sum() == 300  # batch means of 64 images all lie within ±2
    assert "B = 64" in view.t1.get_text()


# ----------------------------------------------------------------- section 7: the training run
def test_bn_training_run_first_points_are_the_untrained_nets_losses():
    run = L02.BNTrainingRun()
    run.draw(depth=3, lr=0.05, steps=4, per_class=10, batch_size=16)
    assert set(run.series) == {"no BN", "with BN"}
    assert all(s.xs == [1.0, 2.0, 3.0, 4.0] for s in run.series.values())
    x, y = L02.stratified_subset(True, 10, 0)
    xb, yb = next(L02.random_batches(x, y, 16, 0))
    for name, bn in (("no BN", False), ("with BN", True)):
        torch.manual_seed(0)
        net = make_deep_cnn(3, channels=8, activation="relu", bn=bn).train()
        assert run.series[name].ys[0] == pytest.approx(F.cross_entropy(net(xb), yb).item(), rel=1e-5)
    run.draw(depth=3, lr=0.05, steps=2, per_class=10, batch_size=16)
    assert len(run.runs) == 1  # the first run stays, faded


def test_bn_training_run_marks_a_diverged_net():
    run = L02.BNTrainingRun()
    run.draw(depth=2, lr=1e12, steps=6, per_class=10, batch_size=16)
    assert any(s.diverged and "diverged" in s.label for s in run.series.values())
    with pytest.raises(ValueError, match="lr"):
        L02.BNTrainingRun().draw(lr=0.0)


def test_train_eval_chart_keeps_the_chance_label_off_the_bars():
    import pandas as pd

    acc = pd.DataFrame({"scenario": ["eval mode (correct)", "train mode, batch of 1"], "accuracy": [0.8, 0.1]})
    fig = L02.plot_train_eval(acc)
    ax = fig.axes[0]
    label = next(t for t in ax.texts if t.get_text().startswith("chance"))
    bar_tops = min(p.get_y() for p in ax.patches)  # bars span y-0.4..y+0.4, the first at 0
    assert label.get_position()[1] < bar_tops and ax.get_ylim()[1] < label.get_position()[1]
