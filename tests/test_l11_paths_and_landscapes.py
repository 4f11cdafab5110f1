"""Lesson 11's measurements: paths and lesions, loss landscapes.

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

from resnet_tutorial.lessons import l11_paths_and_landscapes as L
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
    hits = single["acc"] * 40  # accuracy over the 40 images: a whole number of hits
    assert ((hits - hits.round()).abs() < 1e-6).all()
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

def test_cache_parts_and_their_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained net"):
        L.build_cache(weights=tmp_path / "nowhere", out=tmp_path, parts=("lesion",), log=lambda _: None)
    with pytest.raises(ValueError, match="unknown part"):
        L.build_cache(out=tmp_path, parts=("everything",))
    with pytest.raises(FileNotFoundError, match="incomplete"):
        L.load_cache(tmp_path)


def test_the_cache_in_the_repository_loads():
    cache = L.load_cache()
    assert set(L.CACHE_FILES) <= set(cache) and set(L.PARTS) <= set(cache["meta"]["parts"])


def test_landscape_explorer_returns_figures():
    import matplotlib.pyplot as plt

    a = np.linspace(-1, 1, 5)
    A, B = np.meshgrid(a, a)
    grid = pd.DataFrame({"a": A.ravel(), "b": B.ravel(), "loss": (1 + A ** 2 + B ** 2).ravel()})
    line = pd.DataFrame({"alpha": a, "loss": 1 + a ** 2, "acc": 1 - a ** 2 / 2})
    fig = L.LandscapeExplorer({"net": grid}, {"net": line}).draw(net="net")
    assert len(fig.axes) == 3  # the slice, the contour and its colour bar
    assert fig.axes[0].lines[0].get_ydata().tolist() == line["loss"].tolist()
    plt.close(fig)
    fig = L.LandscapeExplorer({"net": grid}, {}).draw(net="net")  # no slice: the grid's centre row
    assert fig.axes[0].lines[0].get_ydata().tolist() == (1 + a ** 2).tolist()
    plt.close(fig)
    with pytest.raises(ValueError, match="no landscape"):
        L.LandscapeExplorer({"net": grid}, {}).draw(net="other")


def test_twins_run_streams_both_nets_and_hands_over_the_pair():
    run = L.TwinsRun()
    frames: list[bytes] = []
    run.sink = frames.append
    with pytest.raises(ValueError, match="press Run"):
        run.pair()
    assert run.run(depth=8, steps=6, batch_size=8, per_class=2) == "done"
    assert set(run.series) == {"ResNet-8", "ResNet-8: every step", "plain-8", "plain-8: every step"}
    for name in ("ResNet-8", "plain-8"):
        raw, mean = run.series[f"{name}: every step"].ys, run.series[name].ys
        assert run.series[name].xs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert mean[-1] == pytest.approx(sum(raw) / len(raw))  # 6 steps < the 20-step window
    nets = run.pair()
    assert set(nets) == {"resnet", "plain"} and not nets["resnet"].training
    twins = L.train_twins(depth=8, steps=6, batch_size=8, per_class=2, progress=False)  # the same pair, unwatched
    for kind in ("resnet", "plain"):
        for a, b in zip(nets[kind].state_dict().values(), twins[kind].state_dict().values()):
            assert torch.equal(a, b)
    labels = [t.get_text() for t in run.axes[0].get_legend().get_texts()]
    assert labels == ["ResNet-8 (mean of 20 steps)", "plain-8 (mean of 20 steps)"]
    assert len(frames) >= 3 and "done in" in run._status.get_text()


def test_describe_live_lesions_reads_each_net_of_the_table():
    rows = [("resnet (live)", 0, False, 0.24), ("resnet (live)", 1, False, 0.80), ("resnet (live)", 2, False, 0.64),
            ("resnet (live)", 3, True, 0.50), ("plain (live)", 0, False, 0.10), ("plain (live)", 1, False, 0.12),
            ("plain (live)", 2, True, float("nan"))]
    single = pd.DataFrame(rows, columns=["net", "block", "downsampling", "acc"])
    single["baseline"] = single.net.map({"resnet (live)": 0.82, "plain (live)": 0.81})
    assert L.describe_live_lesions(single).splitlines() == [
        "- **resnet (live)**: 82% intact; one shape-keeping block deleted: median 64% (from 24% to 80%); "
        "the worst is block 0 (24%).",
        "- **plain (live)**: 81% intact; one shape-keeping block deleted: median 11% (from 10% to 12%); "
        "the worst is block 0 (10%).",
    ]
    with pytest.raises(ValueError, match="lesion_single"):
        L.describe_live_lesions(single.drop(columns="net"))
