"""Lesson 10's measurements: shattered gradients and training without BN.

Every test builds tiny nets itself (no cached weights needed) and checks a
property that an independent computation or a known answer pins down.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from resnet_tutorial.lessons import l10_shattered_gradients as L
from resnet_tutorial.models import CifarResNet




# ---------------------------------------------------------------------------
# 1. shattered gradients
# ---------------------------------------------------------------------------
def test_autocorrelation_is_one_at_lag_zero_and_zero_for_white_noise():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(4096)
    r = L.autocorrelation(noise, 20)
    assert r[0] == pytest.approx(1.0)
    assert np.abs(r[1:]).max() < 4 / math.sqrt(4096)  # white noise: no correlation beyond sampling error


def test_autocorrelation_recovers_an_ar1_process_and_ignores_an_offset():
    rng = np.random.default_rng(1)
    e = rng.standard_normal(20000)
    g = np.zeros_like(e)
    for i in range(1, len(e)):
        g[i] = 0.8 * g[i - 1] + e[i]  # AR(1): correlation 0.8^k at lag k
    r = L.autocorrelation(g + 5.0, 3)
    np.testing.assert_allclose(r[1:], [0.8, 0.64, 0.512], atol=0.03)


def test_naive_autocorrelation_is_fooled_by_an_offset():
    rng = np.random.default_rng(2)
    g = 3.0 + rng.standard_normal(256)  # white noise around a constant
    naive = L.naive_autocorrelation(g, 64)
    assert naive[0] == pytest.approx(1.0)
    assert naive[10] > 0.8 and naive[64] > 0.6  # the mean masquerades as correlation...
    assert abs(L.autocorrelation(g, 64)[10]) < 0.25  # ...which the proper estimate removes
    assert naive[64] == pytest.approx((256 - 64) / 256, abs=0.1)  # the overlap's triangle


def test_autocorrelation_rejects_constants_and_bad_lags():
    with pytest.raises(ValueError, match="constant"):
        L.autocorrelation(np.ones(10))
    with pytest.raises(ValueError, match="max_lag"):
        L.autocorrelation(np.arange(5.0), 5)


def test_shatternet_shapes_and_he_init_scale():
    net = L.ShatterNet(3, width=50, seed=0)
    x = L.shatter_inputs()
    assert x.shape == (256, 1) and float(x.min()) == -2.0 and float(x.max()) == 2.0
    assert net(x).shape == (256, 1)
    assert L.input_gradient(net, x).shape == (256,)
    big = L.ShatterNet(1, width=2000, seed=0)
    # He: weight variance 2 / fan_in (input layer: fan_in = 1); "1/D": 1 / width everywhere
    assert big.layers[0].weight.var().item() == pytest.approx(2 / 2000, rel=0.02)
    assert big.stem.weight.var().item() == pytest.approx(2.0, rel=0.15)
    naive = L.ShatterNet(1, width=2000, init="1/D", seed=0)
    assert naive.stem.weight.var().item() == pytest.approx(1 / 2000, rel=0.15)
    with pytest.raises(ValueError, match="init"):
        L.ShatterNet(2, init="xavier")


def test_input_gradient_matches_finite_differences_with_batch_statistics_held():
    torch.set_default_dtype(torch.float64)
    try:
        net = L.ShatterNet(4, width=30, bn=True, shortcut=True, beta=0.5, seed=3)
        x = torch.linspace(-2, 2, 64).unsqueeze(1)
        g = L.input_gradient(net, x)
        eps = 1e-6
        with L.frozen_statistics(net, x):  # the function the net computes on this batch
            fd = (net(x + eps) - net(x - eps)).squeeze(1) / (2 * eps)
    finally:
        torch.set_default_dtype(torch.float32)
    # piecewise linear: central differences are exact except at the few points next to a kink
    close = torch.isclose(g, fd, rtol=1e-5, atol=1e-8)
    assert close.float().mean() > 0.9
    # and the batch statistics matter: without freezing them a shift of all inputs is no derivative
    assert not torch.allclose(g, torch.zeros_like(g))


def test_bias_free_relu_net_without_bn_has_one_kink():
    # positively homogeneous: f(x) = x f(1) for x > 0, so dy/dx takes two values
    _, g = L.shatter_gradients(10, seed=0, biases=False)
    assert L._kinks(g) == 1
    _, g_bias = L.shatter_gradients(10, seed=0)
    assert L._kinks(g_bias) > 20


def test_deep_plain_bn_gradients_decorrelate_but_residual_ones_do_not():
    t = L.correlation_vs_depth({"plain": dict(bn=True), "res": dict(bn=True, shortcut=True, beta=0.1)},
                               depths=(1, 24), seeds=range(3))
    m = t.groupby(["variant", "depth"])["corr"].mean()
    assert m["plain", 1] > 0.9 and abs(m["plain", 24]) < 0.3
    assert m["res", 24] > 0.7
    assert set(t.columns) >= {"variant", "depth", "seed", "corr", "grad_rms", "kinks"}


def test_replication_table_and_fits_have_their_columns():
    t = L.replication_table(depths=(1, 8), seeds=range(2))
    assert len(t) == 2 * len(L.REPLICATION_STEPS)
    naive = t[t["step"].str.startswith("naive")].set_index("depth")
    assert naive.loc[8, "grad_rms"] < naive.loc[1, "grad_rms"] / 4  # 1/D halves the signal per ReLU layer
    fits = L.decay_fits(L.correlation_vs_depth({"plain": dict(bn=True)}, depths=(4, 6, 8), seeds=range(2)))
    assert 0 < fits.loc["plain", "per_layer_factor"] < 1


# ---------------------------------------------------------------------------
# 2. paths and lesions
# ---------------------------------------------------------------------------
# 4. training without BN, and the cache
# ---------------------------------------------------------------------------
def test_zero_init_without_bn_zeroes_the_last_conv_and_starts_as_the_identity():
    net = CifarResNet(8, in_channels=1, bn=False, zero_init_residual=True)
    blocks = net.blocks()
    assert all(torch.count_nonzero(b.conv2.weight) == 0 and torch.count_nonzero(b.conv2.bias) == 0 for b in blocks)
    x = torch.relu(torch.randn(2, 16, 8, 8))
    assert torch.equal(blocks[0](x), x)


def test_fixup_scaling_shrinks_each_branch_first_conv_by_root_n():
    plain = L.build_nobn_net(14, bn=False, zero_init_residual=True, seed=0)
    scaled = L.build_nobn_net(14, bn=False, zero_init_residual=True, branch_scale=True, seed=0)
    for a, b in zip(plain.blocks(), scaled.blocks()):
        assert torch.allclose(b.conv1.weight, a.conv1.weight / math.sqrt(6))
        assert torch.count_nonzero(b.conv2.weight) == 0


def test_without_bn_the_default_init_explodes_with_depth_and_zero_init_does_not():
    t = L.init_output_scale(depths=(8, 32), images=20).set_index(["variant", "depth"])["logit_std"]
    default = t["no BN, default init"]
    assert default[32] > 8 * default[8]  # variance doubles per block: 12 more blocks, 2^6 in std
    zero = t["no BN, last conv = 0"]
    assert zero[32] < 2 * zero[8] + 1e-6  # every block starts as the identity: depth changes nothing


def test_train_without_bn_runs_and_reports():
    small = {"BN": dict(bn=True), "no BN, zero": dict(bn=False, zero_init_residual=True)}
    curves, summary = L.train_without_bn(depth=8, steps=3, batch_size=16, per_class=5, test_per_class=2,
                                         variants=small, warmup=2, lrs=(0.01, 0.02), amp="off")
    assert list(summary["variant"]) == list(small) * 2 and list(summary["lr"]) == [0.01, 0.01, 0.02, 0.02]
    assert set(curves.columns) == {"variant", "lr", "seed", "step", "loss"} and len(curves) == 12
    assert (summary["steps_done"] == 3).all()
    # accuracy is a count over the 20 test images (2 per class): a multiple of 1/20 in [0, 1]
    hits = summary["test_acc"] * 20
    assert summary["test_acc"].between(0, 1).all() and ((hits - hits.round()).abs() < 1e-6).all()


def test_a_diverging_run_is_reported_as_such():
    _, summary = L.train_without_bn(depth=56, steps=20, batch_size=16, per_class=4, test_per_class=1,
                                         variants={"default": dict(bn=False)}, lrs=(0.05,), warmup=1)
    row = summary.iloc[0]
    assert row["first_loss"] > 100  # 27 blocks without BN: logits in the hundreds at the start
    assert row["steps_done"] < 20 and math.isnan(row["final_loss"]) and math.isnan(row["test_acc"])


def test_nobn_run_streams_every_variant_and_marks_the_diverged_one():
    run = L.NoBNRun()
    frames: list[bytes] = []
    run.sink = frames.append
    assert run.run(depth=56, lr=0.05, steps=12, batch_size=16, warmup=1, per_class=4, test_per_class=1) == "done"
    assert list(run.series) == list(L.NOBN_VARIANTS)  # one curve per variant, in the table's order
    default = run.series["no BN, default init"]
    first = run.curves[run.curves.variant == "no BN, default init"].loss.iloc[0]
    assert default.diverged and first > 100  # the explosion: drawn at the top edge, its value in the legend
    assert default.label == (f"no BN, default init (loss {first:.3g} at step 1: above the plot, NaN at step "
                             f"{len(default.xs) + 1})")
    assert len(default.xs) < 12 and default.ys[0] == run.top
    bn = run.series["BN (reference)"]
    assert bn.xs == [float(k) for k in range(1, 13)]  # every step is on the plot
    summary = run.summary.set_index("variant")
    assert list(summary.index) == list(L.NOBN_VARIANTS) and summary.loc["BN (reference)", "steps_done"] == 12
    assert bn.ys == pytest.approx(list(run.curves[run.curves.variant == "BN (reference)"].loss))
    assert len(frames) >= 1 + len(L.NOBN_VARIANTS) and "diverged" in run._status.get_text()
    with pytest.raises(ValueError, match="positive"):
        run.run(steps=0)


def test_describe_nobn_run_names_diverged_guessing_and_learning_variants():
    summary = pd.DataFrame([
        {"variant": "a", "steps_done": 2, "final_loss": float("nan"), "test_acc": float("nan")},
        {"variant": "b", "steps_done": 100, "final_loss": 2.31, "test_acc": 0.11},
        {"variant": "c", "steps_done": 100, "final_loss": 2.28, "test_acc": 0.31},  # near ln 10, but it learned
        {"variant": "d", "steps_done": 100, "final_loss": 0.65, "test_acc": 0.72},
    ])
    text = L.describe_nobn_run(summary).splitlines()
    assert text == ["- **a**: diverged, the loss was NaN after 2 step(s).",
                    "- **b**: still guessing: loss 2.31 (ln 10 = 2.30), test accuracy 11%, chance level.",
                    "- **c**: learning: loss 2.28, test accuracy 31%.",
                    "- **d**: learning: loss 0.65, test accuracy 72%."]
    with pytest.raises(ValueError, match="finished run"):
        L.describe_nobn_run(pd.DataFrame())


def test_cache_round_trip_and_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(L, "CACHE_SETTINGS", {**L.CACHE_SETTINGS, "depth": 8, "steps": 2, "seeds": [0], "lrs": [0.01],
                                              "batch_size": 8, "per_class": 2, "test_per_class": 1, "warmup": 1,
                                              "amp": "off"})
    calls = []
    meta = L.build_cache(out=tmp_path, log=calls.append, command="test")
    assert meta["parts"]["nobn"]["seconds"] >= 0 and "CPU" in meta["parts"]["nobn"]["machine"]
    assert json.loads((tmp_path / "meta.json").read_text())["command"] == "test"
    assert L.load_cache(tmp_path)["nobn_summary"].steps_done.max() <= 2
    calls.clear()
    L.build_cache(out=tmp_path, log=calls.append)
    assert any("already in" in c for c in calls)  # finished parts are skipped
    with pytest.raises(FileNotFoundError, match="incomplete"):
        L.load_cache(tmp_path / "elsewhere")


def test_explorer_returns_a_figure():
    import matplotlib.pyplot as plt

    fig = L.draw_shatter_explorer(depth=3, bn=False, shortcut=True, beta=0.3)
    assert len(fig.axes) == 2
    plt.close(fig)
