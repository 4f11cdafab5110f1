"""Architecture diagrams: each picture must agree with the module it was drawn from.

Expectations come from the modules themselves (their attributes, ``trace_shapes``,
a forward pass), never from the diagram code; the figures are checked through
the ``gid`` tags of their artists (one per box, arc, shape label).
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

from resnet_tutorial import blocks as B  # noqa: E402
from resnet_tutorial import diagrams as D  # noqa: E402
from resnet_tutorial.diagnostics import trace_shapes  # noqa: E402
from resnet_tutorial.models import create_model, make_deep_net  # noqa: E402

TV = torchvision.models.resnet
SHAPE = {16: (16, 28, 28), 64: (64, 56, 56), 256: (256, 14, 14)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def gids(fig, prefix: str) -> list[str]:
    """gids of every artist in the figure that starts with ``prefix``."""
    found = []
    for ax in fig.axes:
        for artist in ax.get_children():
            gid = artist.get_gid()
            if gid and gid.startswith(prefix):
                found.append(gid)
    return found


def shape_labels(fig) -> dict[str, str]:
    return {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("shape:")}


def fmt(shape) -> str:
    return "×".join(str(s) for s in shape)


def _proj(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


# (block, expected shortcut kind, convs on the skip path): the expectation read from how the block is built
BLOCKS = {
    "Residual identity": (lambda: B.Residual(16, 16), "identity"),
    "Residual 1x1": (lambda: B.Residual(16, 32, use_1x1conv=True, strides=2), "projection"),
    "PostBasicBlock identity": (lambda: B.PostBasicBlock(16, 16), "identity"),
    "PostBasicBlock projection": (lambda: B.PostBasicBlock(16, 32, 2), "projection"),
    "ConvBlock": (lambda: B.ConvBlock(64, 16, 2), "projection"),
    "IdentityBlock": (lambda: B.IdentityBlock(64), "identity"),
    "BasicBlock": (lambda: B.BasicBlock(16, 16), "identity"),
    "BasicBlock downsample": (lambda: B.BasicBlock(16, 32, 2, _proj(16, 32, 2)), "projection"),
    "Bottleneck": (lambda: B.Bottleneck(64, 16), "identity"),
    "Bottleneck downsample": (lambda: B.Bottleneck(16, 16, 2, _proj(16, 64, 2)), "projection"),
    "ResidualBlock identity": (lambda: B.ResidualBlock(16, 16), "identity"),
    "ResidualBlock projection": (lambda: B.ResidualBlock(16, 32, 2, shortcut="projection"), "projection"),
    "ResidualBlock projection same shape": (lambda: B.ResidualBlock(16, 16, shortcut="projection"), "identity"),
    "ResidualBlock zeropad": (lambda: B.ResidualBlock(16, 32, 2, shortcut="zeropad"), "zeropad"),
    "ResidualBlock none": (lambda: B.ResidualBlock(16, 32, 2, shortcut="none"), "none"),
    "ResidualBlock no BN": (lambda: B.ResidualBlock(16, 32, 2, shortcut="projection", bn=False), "projection"),
    "ResidualBlock cat": (lambda: B.ResidualBlock(16, 32, 2, shortcut="projection", merge="cat"), "projection"),
    "ResidualBlock cat identity": (lambda: B.ResidualBlock(16, 16, shortcut="projection", merge="cat"), "identity"),
    "ResidualBlock preact": (lambda: B.ResidualBlock(16, 32, 2, shortcut="zeropad", preact=True), "zeropad"),
    "ResidualBlock gelu": (lambda: B.ResidualBlock(16, 16, activation="gelu"), "identity"),
    "torchvision BasicBlock": (lambda: TV.BasicBlock(16, 32, 2, _proj(16, 32, 2)), "projection"),
    "torchvision Bottleneck": (lambda: TV.Bottleneck(64, 16), "identity"),
}


def _in_channels(block: nn.Module) -> int:
    return next(m for m in block.modules() if isinstance(m, nn.Conv2d)).in_channels


def _skip_module(block: nn.Module) -> nn.Module | None:
    """The shortcut submodule as each block class names it (the test may read names; the code may not)."""
    for name in ("shortcut", "downsample", "conv3"):
        m = getattr(block, name, None)
        if name == "conv3" and not isinstance(block, B.Residual):
            continue
        if m is not None:
            return m
    return None


@pytest.mark.parametrize("name", list(BLOCKS))
def test_describe_block_reads_the_structure(name):
    make, kind = BLOCKS[name]
    block = make()
    shape = SHAPE[_in_channels(block)]
    spec = D.describe_block(block, input_shape=shape)
    assert spec.shortcut_kind == kind
    assert spec.has_shortcut == (kind != "none")
    skip = _skip_module(block)
    skip_convs = sum(isinstance(m, nn.Conv2d) for m in skip.modules()) if skip is not None else 0
    all_convs = sum(isinstance(m, nn.Conv2d) for m in block.modules())
    assert sum(l.kind == "conv" for l in spec.main + spec.pre) == all_convs - skip_convs
    assert sum(l.kind == "conv" for l in spec.shortcut or ()) == skip_convs
    with torch.no_grad():
        out = block.eval()(torch.randn(1, *shape))
    assert spec.in_shape == shape and spec.out_shape == tuple(out.shape[1:])
    merge = getattr(block, "merge", "add")
    assert spec.merge == (None if kind == "none" else merge)
    # the stride read from the layers is the spatial shrink measured by the forward pass
    assert spec.stride == shape[1] // out.shape[2]


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_shapes_equal_trace_shapes(name):
    block = BLOCKS[name][0]()
    shape = SHAPE[_in_channels(block)]
    spec = D.describe_block(block, input_shape=shape)
    table = trace_shapes(block, (1, *shape))
    expected = {(r.name, r.call): tuple(r.output_shape[1:]) for r in table.itertuples()}
    drawn = [l for l in spec.layers if l.is_module]
    assert drawn, "no module layers read"
    for layer in drawn:
        assert layer.out_shape == expected[(layer.name, layer.call)], layer
    labels = shape_labels(D.draw_block(block, input_shape=shape))
    for layer in drawn:
        key = f"shape:{layer.name}:{layer.call}"
        assert labels[key] == fmt(expected[(layer.name, layer.call)])
    assert labels["shape:input"] == fmt(shape)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_figure_matches_its_description(name):
    block = BLOCKS[name][0]()
    fig = D.draw_block(block, input_shape=SHAPE[_in_channels(block)])
    spec = fig.diagram
    assert len(gids(fig, "main:")) == len(spec.main)
    assert len(gids(fig, "pre:")) == len(spec.pre)
    assert len(gids(fig, "post:")) == len(spec.post)
    boxes = [g for g in gids(fig, "shortcut:") if g.count(":") == 2]
    lines = [g for g in gids(fig, "shortcut:") if g.count(":") == 1]
    if spec.has_shortcut:
        assert len(boxes) == len(spec.shortcut)
        assert lines and all(g == f"shortcut:{spec.shortcut_kind}" for g in lines)
        assert gids(fig, "merge:") == [f"merge:{spec.merge}"]
    else:
        assert not boxes and not lines and not gids(fig, "merge:")


def test_plain_and_residual_block_side_by_side():
    plain, residual = B.ResidualBlock(64, 64, shortcut="none"), B.ResidualBlock(64, 64)
    fig = D.draw_blocks([plain, residual], titles=["plain", "residual"], input_shape=(64, 56, 56))
    a, b = fig.diagram
    assert not a.has_shortcut and b.shortcut_kind == "identity"
    assert len(gids(fig, "merge:")) == 1 and len(gids(fig, "shortcut:identity")) >= 1
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"plain", "residual"} <= texts
    with pytest.raises(ValueError, match="titles"):
        D.draw_blocks([plain, residual], titles=["one"])


def test_compact_block_keeps_the_structure():
    block = B.Bottleneck(64, 16)
    fig = D.draw_block(block, input_shape=(64, 14, 14), compact=True)
    convs = sum(isinstance(m, nn.Conv2d) for m in block.modules())
    assert len(gids(fig, "main:")) == convs  # one box per conv with its BN and ReLU
    assert fig.diagram == D.describe_block(block, input_shape=(64, 14, 14))


def test_block_without_input_shape_draws_no_shapes():
    fig = D.draw_block(B.ResidualBlock(16, 32, 2, shortcut="projection"))
    assert not fig.diagram.shapes_known
    assert not shape_labels(fig)
    assert fig.diagram.shortcut_kind == "projection"


def test_cat_block_counts_channels():
    block = B.ResidualBlock(16, 32, 2, shortcut="projection", merge="cat")
    spec = D.describe_block(block, input_shape=(16, 28, 28))
    assert spec.merge_shape[0] == block.out_channels == 64
    fig = D.draw_block(spec)
    assert any("32 + 32 = 64" in t.get_text() for t in fig.axes[0].texts)


@pytest.mark.parametrize("shortcut", ["identity", "projection", "zeropad", "none"])
@pytest.mark.parametrize("merge", ["add", "cat"])
@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("bn", [False, True])
def test_every_residual_block_variant_draws(shortcut, merge, preact, bn):
    activation = "tanh" if bn else "leaky_relu"
    stride, out = (1, 16) if shortcut == "identity" else (2, 32)
    try:
        block = B.ResidualBlock(16, out, stride, shortcut=shortcut, merge=merge, preact=preact, bn=bn,
                                activation=activation)
    except ValueError:
        pytest.skip("the block refuses this combination")
    fig = D.draw_block(block, input_shape=(16, 8, 8))
    spec = fig.diagram
    assert spec.out_shape[0] == block.out_channels
    n_norm = sum(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert sum(l.kind == "norm" for l in spec.layers) == n_norm
    n_act = sum(l.kind == "act" for l in spec.layers)
    assert n_act == 2  # act1 and act2, before or after the merge
    assert [l.kind for l in spec.post] == ([] if preact or shortcut == "none" else ["act"])


def test_drawing_leaves_the_model_as_it_was():
    model = create_model("resnet20")
    model.train()
    model.layer2.eval()
    before = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    D.draw_network(model, input_shape=(1, 28, 28))
    assert {n: m.training for n, m in model.named_modules()} == before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_drawing_into_given_axes():
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 6))
    assert D.draw_block(B.BasicBlock(16, 16), ax=a) is fig
    assert D.draw_network(create_model("resnet20"), ax=b) is fig
    assert gids(fig, "block:") and gids(fig, "main:")


def test_a_whole_network_is_not_a_block():
    with pytest.raises(ValueError, match="draw_network"):
        D.draw_block(create_model("resnet20"))
    with pytest.raises(ValueError, match="draw_network"):
        D.draw_block(create_model("plain20"))


# --------------------------------------------------------------------------- unreadable modules
class TwoSkips(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = x + self.a(x)
        return y + self.b(y)


class SkipInRoot(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = B.ResidualBlock(4, 4)
        self.other = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return x + self.other(self.block(x))


def test_unreadable_modules_raise_a_clear_error():
    with pytest.raises(ValueError, match="TwoSkips"):
        D.draw_block(TwoSkips(), input_shape=(4, 8, 8))
    with pytest.raises(ValueError, match="SkipInRoot"):
        D.draw_network(SkipInRoot(), input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="conv1"):  # wrong input channels: names the layer that failed
        D.draw_block(B.BasicBlock(16, 16), input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="ReLU"):  # nothing to read the input size from
        D.draw_block(nn.ReLU())
    with pytest.raises(ValueError, match="nn.Module"):
        D.draw_network("resnet18")


# --------------------------------------------------------------------------- networks
RESIDUAL_TYPES = (B.Residual, B.PostBasicBlock, B.BasicBlock, B.Bottleneck, B.ResidualBlock,
                  TV.BasicBlock, TV.Bottleneck)
NETWORKS = {
    "resnet18": (lambda: create_model("resnet18"), (3, 64, 64)),
    "resnet50": (lambda: create_model("resnet50"), (3, 64, 64)),
    "torchvision resnet18": (lambda: torchvision.models.resnet18(), (3, 64, 64)),
    "torchvision resnet50": (lambda: torchvision.models.resnet50(), (3, 64, 64)),
    "resnet20": (lambda: create_model("resnet20"), (1, 28, 28)),
    "plain20": (lambda: create_model("plain20"), (1, 28, 28)),
    "resnet56": (lambda: create_model("resnet56"), (1, 28, 28)),
    "plain56": (lambda: create_model("plain56"), (1, 28, 28)),
    "resnet20 projection": (lambda: create_model("resnet20", shortcut="projection"), (1, 28, 28)),
    "post_resnet18": (lambda: create_model("post_resnet18"), (3, 64, 64)),
    "post_fashion_resnet18": (lambda: create_model("post_fashion_resnet18"), (1, 224, 224)),
    "simple_resnet": (lambda: create_model("simple_resnet"), (3, 64, 64)),
}


def _expected_blocks(model: nn.Module) -> dict[str, bool]:
    """name -> has a projection (a conv on its skip path), for every residual block module."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, RESIDUAL_TYPES):
            skip = _skip_module(m)
            out[name] = skip is not None and any(isinstance(c, nn.Conv2d) for c in skip.modules())
    return out


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_blocks_and_projections_match_the_model(name):
    make, shape = NETWORKS[name]
    model = make()
    expected = _expected_blocks(model)
    spec = D.describe_network(model, input_shape=shape)
    assert [b.name for b in spec.blocks] == list(expected)
    assert {b.name for b in spec.blocks if b.shortcut_kind == "projection"} == {n for n, p in expected.items() if p}
    plain = name.startswith("plain")
    assert all(b.has_shortcut != plain for b in spec.blocks)
    # stages: one per Sequential of blocks, with the blocks it holds, and its output size from trace_shapes
    table = trace_shapes(model, (1, *shape))
    for stage in spec.stages:
        module = model.get_submodule(stage.name)
        assert [b.name for b in stage.blocks] == [f"{stage.name}.{i}" for i in range(len(module))]
        row = table[table["name"] == stage.name].iloc[0]
        assert stage.out_shape == tuple(row["output_shape"][1:])
    assert spec.sections[0].kind == "stem" and spec.sections[-1].kind == "head"


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_figure_draws_every_block(name):
    make, shape = NETWORKS[name]
    fig = D.draw_network(make(), input_shape=shape)
    spec = fig.diagram
    boxes = gids(fig, "block:")
    hidden = sum(int(g.split(":")[1]) for g in gids(fig, "collapsed:"))
    assert len(boxes) + hidden == len(spec.blocks)
    drawn = {g.split(":", 1)[1] for g in boxes}
    arcs = gids(fig, "shortcut:")
    projections = {b.name for b in spec.blocks if b.shortcut_kind == "projection"}
    assert {a.split(":", 2)[2] for a in arcs if a.startswith("shortcut:projection:")} == projections & drawn
    if name.startswith("plain"):
        assert not arcs  # plain nets: visibly no shortcuts
    else:
        assert {a.split(":", 2)[2] for a in arcs} == drawn


def test_long_stages_are_shortened_but_not_short_ones():
    fig = D.draw_network(create_model("resnet56"), input_shape=(1, 28, 28))
    assert gids(fig, "collapsed:")  # 9 blocks per stage do not fit one row
    fig = D.draw_network(create_model("resnet56"), input_shape=(1, 28, 28), max_per_row=12)
    assert not gids(fig, "collapsed:") and len(gids(fig, "block:")) == 27
    fig = D.draw_network(create_model("resnet18"), input_shape=(3, 64, 64))
    assert not gids(fig, "collapsed:")


def test_network_without_input_shape_still_reads_channels():
    spec = D.describe_network(create_model("resnet18"))
    assert not spec.shapes_known
    assert [s.out_shape[0] for s in spec.stages] == [64, 128, 256, 512]


def test_highlight_names_modules_and_rejects_unknown_ones():
    net = torchvision.models.resnet50()
    net.conv1 = nn.Conv2d(1, 64, 7, 1, 3, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Linear(2048, 10)
    fig = D.draw_network(net, input_shape=(1, 28, 28), highlight={"conv1": "new stem", "fc": "new head"})
    lit = [p for p in fig.axes[0].patches if p.get_linewidth() > 2]
    assert sorted(p.get_gid() for p in lit) == ["layer:conv1:0", "layer:fc:0"]
    assert {"new stem", "new head"} <= {t.get_text() for t in fig.axes[0].texts}
    fig = D.draw_network(net, input_shape=(1, 28, 28), highlight=["maxpool", "layer1.0.conv2"])
    lit = {p.get_gid() for p in fig.axes[0].patches if p.get_linewidth() > 2}
    assert lit == {"layer:maxpool:0", "block:layer1.0"}  # a replaced layer is shown even as Identity
    with pytest.raises(ValueError, match="conv9"):
        D.draw_network(net, input_shape=(1, 28, 28), highlight=["conv9"])


def test_stride3_stem_of_post000():
    spec = D.describe_network(create_model("post_fashion_resnet18"), input_shape=(1, 224, 224))
    stem = spec.sections[0]
    conv = next(l for l in stem.items if l.kind == "conv")
    assert conv.stride == 3 and "/3" in conv.label
    # ReLU before BN, as the post wrote it
    kinds = [l.kind for l in stem.items]
    assert kinds.index("act") < kinds.index("norm")


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("shortcut", [False, True])
def test_deep_nets_of_lesson_01(arch, shortcut):
    depth = 12
    model = make_deep_net(arch, depth, shortcut=shortcut, bn=True)
    spec = D.describe_network(model, input_shape=(1, 28, 28))
    with_skip = [b for b in spec.blocks if b.has_shortcut]
    # hidden2..depth are wrapped in x + layer(x) with shortcut=True; hidden1 and the head cannot be
    assert len(with_skip) == (depth - 1 if shortcut else 0)
    assert len(spec.blocks) == depth + 1
    fig = D.draw_network(model, input_shape=(1, 28, 28))
    hidden = sum(int(g.split(":")[1]) for g in gids(fig, "collapsed:"))
    assert len(gids(fig, "block:")) + hidden == depth + 1


def test_plain_sequential_of_layers_is_drawn_as_layers():
    seq = nn.Sequential(nn.Flatten(), *[m for _ in range(10) for m in (nn.Linear(32, 32), nn.ReLU())])
    spec = D.describe_network(seq, input_shape=(2, 4, 4))
    assert not spec.blocks and len(spec.sections) == 1
    assert len(spec.sections[0].items) == 21
    fig = D.draw_network(seq, input_shape=(2, 4, 4))
    drawn = len(gids(fig, "layer:")) + sum(int(g.split(":")[1]) for g in gids(fig, "collapsed:"))
    assert drawn == 21


# --------------------------------------------------------------------------- Veit et al.
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_unrolled_paths(n):
    fig = D.draw_unrolled(n)
    spec = fig.diagram
    assert len(spec.paths) == 2 ** n == len(set(spec.paths))
    assert spec.length_counts() == {k: comb(n, k) for k in range(n + 1)}
    lanes = gids(fig, "path:")
    assert len(lanes) == 2 ** n and all(g.endswith(":alive") for g in lanes)
    assert len(gids(fig, "pathblock:")) == sum(len(p) for p in spec.paths) == n * 2 ** (n - 1)


def test_unrolled_lesion_removes_half_the_paths():
    fig = D.draw_unrolled(4, lesion=2)
    spec = fig.diagram
    lost = [g for g in gids(fig, "path:") if g.endswith(":lesioned")]
    assert len(lost) == 8 and all("2" in g.split(":")[1].split("-") for g in lost)
    assert spec.length_counts(alive_only=True) == {k: comb(3, k) for k in range(4)} | {4: 0}
    with pytest.raises(ValueError, match="lesion"):
        D.draw_unrolled(3, lesion=4)
    with pytest.raises(ValueError, match="1 to 4"):
        D.draw_unrolled(5)


# --------------------------------------------------------------------------- add vs cat
def test_merge_channel_bookkeeping():
    fig = D.draw_merge(("add", "cat"), (64, 64))
    assert fig.diagram["out_channels"] == {"add": 64, "cat": 128}
    assert gids(fig, "output:") == ["output:64", "output:128"]
    with pytest.raises(ValueError, match="equal"):
        D.draw_merge("add", (64, 32))
    assert D.draw_merge("cat", (64, 32)).diagram["out_channels"] == {"cat": 96}


def test_inception_cell_read_from_torchvision():
    cell = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).inception3a.eval()
    x = torch.randn(1, 192, 28, 28)
    with torch.no_grad():
        expected = [getattr(cell, f"branch{i}")(x).shape[1] for i in range(1, 5)]
        total = cell(x).shape[1]
    fig = D.draw_inception_cell(cell, input_shape=(192, 28, 28))
    spec = fig.diagram
    assert spec.merge == "cat" and spec.branch_channels == expected and spec.out_shape[0] == total
    assert len(gids(fig, "branch")) == sum(
        sum(isinstance(m, (nn.Conv2d, nn.MaxPool2d)) for m in getattr(cell, f"branch{i}").modules())
        for i in range(1, 5))
    paper = D.draw_inception_cell().diagram
    assert sum(paper.branch_channels) == paper.out_shape[0]
    with pytest.raises(ValueError, match="branches"):
        D.draw_inception_cell(nn.Sequential(nn.Conv2d(3, 4, 1)), input_shape=(3, 8, 8))


def test_dense_block_read_from_torchvision():
    block = torchvision.models.densenet121(weights=None).features.denseblock1.eval()
    with torch.no_grad():
        out = block(torch.randn(1, 64, 8, 8)).shape[1]
    fig = D.draw_dense_block(block, input_shape=(64, 8, 8))
    spec = fig.diagram
    layers = list(block.children())
    assert spec.growth == tuple(l.conv2.out_channels for l in layers)
    assert spec.layer_inputs == [l.norm1.num_features for l in layers]
    assert spec.out_channels == out
    n = len(layers)
    assert len(gids(fig, "dense:")) == n * (n - 1) // 2
    assert D.draw_dense_block(n_layers=3, growth=12, in_channels=24).diagram.out_channels == 60


# --------------------------------------------------------------------------- package rules
def test_diagram_modules_stay_small():
    package = Path(D.__file__).parent
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in package.glob("*.py")}
    assert max(sizes.values()) <= 800, sizes


def test_gallery_script_renders(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "diagram_gallery.py"
    spec = importlib.util.spec_from_file_location("diagram_gallery", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--only", "unrolled", "--dpi", "40"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["unrolled_3.png", "unrolled_4_lesion_2.png"]
