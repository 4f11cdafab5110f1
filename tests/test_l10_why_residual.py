"""Lesson 10's measurements: shattered gradients, paths and lesions, loss landscapes, training without BN.

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

from resnet_tutorial.lessons import l10_why_residual_networks_train as L
from resnet_tutorial.models import CifarResNet


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, as a trained net has."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net


@pytest.fixture
def tiny_resnet() -> CifarResNet:
    torch.manual_seed(0)
    return _randomise_bn(CifarResNet(14, in_channels=1)).eval()  # 6 blocks, 2 of them downsampling


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
@pytest.mark.parametrize("n", [0, 1, 5, 27])
def test_path_counts_are_binomial_and_sum_to_two_to_the_n(n):
    t = L.path_length_counts(n)
    assert t["paths"].sum() == 2 ** n
    assert t["fraction"].sum() == pytest.approx(1.0)
    assert list(t["length"]) == list(range(n + 1))
    if n == 5:
        assert list(t["paths"]) == [1, 5, 10, 10, 5, 1]


def test_block_table_marks_downsampling_blocks(tiny_resnet):
    t = L.block_table(tiny_resnet)
    assert len(t) == 6 and t["downsampling"].sum() == 2
    assert list(t.loc[t["downsampling"], "name"]) == ["layer2.0", "layer3.0"]
    with pytest.raises(ValueError, match="no ResidualBlock"):
        L.block_table(torch.nn.Linear(2, 2))


def test_deleting_a_zero_branch_block_changes_nothing(tiny_resnet):
    x = torch.randn(3, 1, 28, 28)
    before = tiny_resnet(x)
    with L.deleted(tiny_resnet, [1]):
        changed = tiny_resnet(x)
    assert not torch.allclose(before, changed)  # a working block's deletion is felt
    tiny_resnet.blocks()[1].zero_init_residual()
    intact = tiny_resnet(x)
    with L.deleted(tiny_resnet, [1]):
        assert torch.equal(tiny_resnet(x), intact)  # its branch already gave 0: deletion is exact
    assert torch.equal(tiny_resnet(x), intact)  # and the net is restored afterwards


def test_deleting_a_downsampling_block_keeps_its_zero_pad_shortcut(tiny_resnet):
    block = tiny_resnet.blocks()[2]
    x = torch.relu(torch.randn(2, block.in_channels, 28, 28))
    with L.deleted(tiny_resnet, [2]):
        out = block(x)
    assert torch.equal(out, torch.relu(block.shortcut(x)))
    assert torch.count_nonzero(out[:, block.in_channels:]) == 0


def test_plain_blocks_are_replaced_by_the_identity_and_downsampling_ones_refuse():
    torch.manual_seed(0)
    plain = CifarResNet(14, in_channels=1, shortcut="none").eval()
    block = plain.blocks()[1]
    x = torch.randn(2, 16, 8, 8)
    with L.deleted(plain, [1]):
        assert torch.equal(block(x), x)
    with pytest.raises(ValueError, match="identity cannot replace"), L.deleted(plain, [2]):
        pass
    assert "forward" not in vars(plain.blocks()[2])


def test_lesion_tables(tiny_resnet):
    x, y = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))
    single = L.lesion_single(tiny_resnet, x, y)
    assert len(single) == 6 and single["deletable"].all() and single["acc"].between(0, 1).all()
    plain = CifarResNet(14, in_channels=1, shortcut="none").eval()
    ps = L.lesion_single(plain, x, y)
    assert ps.loc[ps["downsampling"], "acc"].isna().all() and not ps.loc[ps["downsampling"], "deletable"].any()
    rnd = L.lesion_random(tiny_resnet, x, y, draws=3, seed=0)
    assert set(rnd["k"]) == {0, 1, 2, 3, 4}
    assert len(rnd[rnd["k"] == 4]) == 1  # deleting all 4 shape-keeping blocks: one way only
    again = L.lesion_random(plain, x, y, draws=3, seed=0)
    assert list(again["blocks"]) == list(rnd["blocks"])  # twins lose the same blocks
    with pytest.raises(ValueError, match="k must be"):
        L.lesion_random(tiny_resnet, x, y, ks=[5])


def _autograd_gradient_at_first_block(net, x, y):
    h0 = L._stem(net, x).detach().requires_grad_(True)
    h = h0
    for b in net.blocks():
        h = b(h)
    loss = F.cross_entropy(L._head(net, h), y, reduction="sum")
    return torch.autograd.grad(loss, h0)[0]


@pytest.mark.parametrize("train_mode", [False, True])
def test_path_gradients_sum_to_the_full_gradient(tiny_resnet, train_mode):
    tiny_resnet.train(train_mode)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    pg = L.PathGradients(tiny_resnet, x, y)
    reference = _autograd_gradient_at_first_block(tiny_resnet, x, y)
    assert torch.allclose(pg.grad(None), reference, atol=1e-6)
    every_path = sum(pg.grad(s) for k in range(pg.n + 1) for s in itertools.combinations(range(pg.n), k))
    assert torch.allclose(every_path, reference, atol=1e-6)  # the 2^n paths cover the gradient exactly
    assert not torch.allclose(pg.grad([]), reference)  # one path alone does not


def test_shortcut_only_path_of_an_identity_stack_is_the_top_gradient():
    torch.manual_seed(0)
    net = CifarResNet(8, in_channels=1, preact=True).eval()
    x, y = torch.randn(2, 1, 28, 28), torch.randint(0, 10, (2,))
    pg = L.PathGradients(net, x, y)
    g = pg.grad([])  # through every shortcut: subsample / zero-pad, never a weight
    assert g.shape == pg.h0.shape
    assert torch.count_nonzero(g[:, :, 1::2, :]) == 0  # option A drops every second row on the way


def test_branch_gains_split_the_gradient_each_block_receives(tiny_resnet):
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    pg = L.PathGradients(tiny_resnet, x, y)
    gains = pg.gains()
    assert list(gains["block"]) == list(range(6)) and (gains[["branch", "shortcut"]] > 0).all().all()
    np.testing.assert_allclose(gains["ratio"], gains["branch"] / gains["shortcut"])
    tiny_resnet.blocks()[3].zero_init_residual()
    zeroed = L.PathGradients(tiny_resnet, x, y).gains()
    assert zeroed.loc[3, "branch"] < 1e-6 * zeroed.loc[3, "shortcut"]  # gamma = 0: the branch passes nothing back


def test_path_gradients_refuse_a_plain_net():
    with pytest.raises(ValueError, match="residual net"):
        L.PathGradients(CifarResNet(8, shortcut="none").eval(), torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))


def test_gradient_by_path_length_and_effective_paths(tiny_resnet):
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    t = L.gradient_by_path_length(tiny_resnet, x, y, draws=3)
    assert set(t["k"]) == set(range(7)) and (t["grad_norm"] > 0).all()
    assert len(t[t["k"] == 0]) == 1 and len(t[t["k"] == 6]) == 1
    eff, (lo, hi) = L.effective_paths(t, 6)
    assert eff["share"].sum() == pytest.approx(1.0)
    assert list(eff["paths"]) == [1, 6, 15, 20, 15, 6, 1]
    assert 0 <= lo <= hi <= 6
    assert eff.loc[lo:hi, "share"].sum() >= 0.9 - 1e-9


def test_effective_paths_finds_the_shortest_range():
    t = pd.DataFrame({"k": [0, 1, 2, 3], "grad_norm": [0.0, 0.0, 1.0, 0.0]})
    eff, span = L.effective_paths(t, 3)
    assert span == (2, 2)


# ---------------------------------------------------------------------------
# 3. loss landscapes
# ---------------------------------------------------------------------------
def test_direction_has_the_trained_filter_norms_and_zero_bn_entries(tiny_resnet):
    d = L.filter_normalized_direction(tiny_resnet, seed=0)
    params = {k: v.detach() for k, v in tiny_resnet.named_parameters()}
    assert set(d) == set(params)
    conv = "layer1.0.conv1.weight"
    np.testing.assert_allclose(d[conv].flatten(1).norm(dim=1), params[conv].flatten(1).norm(dim=1), rtol=1e-5)
    np.testing.assert_allclose(d["fc.weight"].norm(dim=1), params["fc.weight"].norm(dim=1), rtol=1e-5)
    assert all(torch.count_nonzero(d[k]) == 0 for k, p in params.items() if p.dim() == 1)
    assert not torch.allclose(d[conv], params[conv])  # a random direction, not the weights
    other = L.filter_normalized_direction(tiny_resnet, seed=1)
    v1 = torch.cat([v.flatten() for v in d.values()])
    v2 = torch.cat([v.flatten() for v in other.values()])
    assert abs(float(F.cosine_similarity(v1, v2, dim=0))) < 0.1  # two seeds: nearly orthogonal


def test_landscape_centre_is_the_trained_net_and_the_net_is_untouched(tiny_resnet):
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    before = {k: v.clone() for k, v in tiny_resnet.state_dict().items()}
    line = L.landscape_1d(tiny_resnet, x, y, alphas=(-0.5, 0.0, 0.5), bn="running", batch_size=16)
    with torch.no_grad():
        expected = F.cross_entropy(tiny_resnet.eval()(x), y).item()
    assert line.loc[line["alpha"] == 0.0, "loss"].item() == pytest.approx(expected, rel=1e-5)
    batch = L.landscape_1d(tiny_resnet, x, y, alphas=(0.0,), bn="batch", batch_size=32)
    with torch.no_grad():
        train_mode = F.cross_entropy(tiny_resnet.train()(x), y).item()
    tiny_resnet.load_state_dict(before)
    assert batch["loss"].item() == pytest.approx(train_mode, rel=1e-5)
    assert all(torch.equal(v, tiny_resnet.state_dict()[k]) for k, v in before.items())
    plane = L.landscape_2d(tiny_resnet, x, y, alphas=(-1.0, 0.0, 1.0), batch_size=32)
    assert len(plane) == 9 and set(plane.columns) >= {"a", "b", "loss", "acc"}
    with pytest.raises(ValueError, match="bn must be"):
        L.landscape_1d(tiny_resnet, x, y, alphas=(0.0,), bn="stale")


def test_landscape_stats_on_known_surfaces():
    a = np.linspace(-1, 1, 21)
    A, B = np.meshgrid(a, a)

    def table(z):
        return pd.DataFrame({"a": A.ravel(), "b": B.ravel(), "loss": z.ravel()})

    bowl = L.landscape_stats(table(1 + A ** 2 + B ** 2))
    assert bowl["center"] == pytest.approx(1.0) and bowl["local_minima"] == 1
    assert bowl["rise"] == pytest.approx(0.25, abs=0.03) and bowl["nonconvex"] == 0.0
    egg = L.landscape_stats(table(2 + np.cos(6 * A) * np.cos(6 * B)))  # egg crate: many basins
    assert egg["local_minima"] > 3 and egg["nonconvex"] > 0.3


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
    assert summary["test_acc"].between(0, 1).all() and (summary["steps_done"] == 3).all()


def test_a_diverging_run_is_reported_as_such():
    _, summary = L.train_without_bn(depth=56, steps=20, batch_size=16, per_class=4, test_per_class=1,
                                         variants={"default": dict(bn=False)}, lrs=(0.05,), warmup=1)
    row = summary.iloc[0]
    assert row["first_loss"] > 100  # 27 blocks without BN: logits in the hundreds at the start
    assert row["steps_done"] < 20 and math.isnan(row["final_loss"]) and math.isnan(row["test_acc"])


def test_cache_round_trip_and_resume(tmp_path, monkeypatch):
    monkeypatch.setitem(L.CACHE_SETTINGS, "nobn", {**L.CACHE_SETTINGS["nobn"], "depth": 8, "steps": 2,
                                                   "seeds": [0], "lrs": [0.01], "batch_size": 8, "per_class": 2,
                                                   "test_per_class": 1, "warmup": 1, "amp": "off"})
    calls = []
    meta = L.build_cache(out=tmp_path, parts=("nobn",), log=calls.append, command="test")
    assert meta["parts"]["nobn"]["seconds"] >= 0 and "CPU" in meta["parts"]["nobn"]["machine"]
    assert json.loads((tmp_path / "meta.json").read_text())["command"] == "test"
    calls.clear()
    L.build_cache(out=tmp_path, parts=("nobn",), log=calls.append)
    assert any("already in" in c for c in calls)  # finished parts are skipped
    with pytest.raises(FileNotFoundError, match="incomplete"):
        L.load_cache(tmp_path)
    with pytest.raises(FileNotFoundError, match="no trained net"):
        L.build_cache(weights=tmp_path / "nowhere", out=tmp_path, parts=("lesion",), log=calls.append)
    with pytest.raises(ValueError, match="unknown part"):
        L.build_cache(out=tmp_path, parts=("everything",))


def test_explorers_return_figures():
    import matplotlib.pyplot as plt

    fig = L.draw_shatter_explorer(depth=3, bn=False, shortcut=True, beta=0.3)
    assert len(fig.axes) == 2
    plt.close(fig)
    a = np.linspace(-1, 1, 5)
    A, B = np.meshgrid(a, a)
    grid = pd.DataFrame({"a": A.ravel(), "b": B.ravel(), "loss": (1 + A ** 2 + B ** 2).ravel()})
    line = pd.DataFrame({"alpha": a, "loss": 1 + a ** 2, "acc": 1 - a ** 2 / 2})
    fig = L.draw_landscape_explorer({"net": grid}, {"net": line}, net="net")
    assert len(fig.axes) == 3  # the slice, the contour and its colour bar
    assert fig.axes[0].lines[0].get_ydata().tolist() == line["loss"].tolist()
    plt.close(fig)
    fig = L.draw_landscape_explorer({"net": grid}, {}, net="net")  # no slice: the grid's centre row
    assert fig.axes[0].lines[0].get_ydata().tolist() == (1 + a ** 2).tolist()
    plt.close(fig)
    with pytest.raises(ValueError, match="no landscape"):
        L.draw_landscape_explorer({"net": grid}, {}, net="other")
