"""Networks and registry: shapes, parity with torchvision, the paper's Table 6, errors."""

import inspect

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from resnet_tutorial import models
from resnet_tutorial.blocks import ResidualBlock
from resnet_tutorial.models import (
    CifarResNet,
    PostFashionResNet18,
    PostResNet,
    SimpleResNet,
    create_model,
    list_models,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def torchvision_resnet(depth: int, num_classes: int, in_channels: int) -> nn.Module:
    net = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


SMALL = {"resnet18", "resnet34", "post_resnet18", "post_fashion_resnet18"}
LARGE = {"resnet50", "resnet101", "resnet152", "simple_resnet"}


def test_registry_names():
    names = list_models()
    for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110):
        assert f"resnet{d}" in names
    for d in (20, 32, 44, 56, 110):
        assert f"plain{d}" in names
    for extra in ("resnet_cifar", "plain_cifar", "post_fashion_resnet18", "post_resnet18",
                  "simple_resnet"):
        assert extra in names
    assert list_models("plain*") == ["plain20", "plain32", "plain44", "plain56", "plain110",
                                     "plain_cifar"]


# --- forward passes against references written out here (never the model's own sub-methods) ---
def _bn(x: torch.Tensor, bn: nn.Module, training: bool) -> torch.Tensor:
    if isinstance(bn, nn.Identity):
        return x
    if training:
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    shape = (1, -1, 1, 1)
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding)


def _cifar_reference(model: CifarResNet, x: torch.Tensor, training: bool) -> torch.Tensor:
    """He et al.'s 6n+2 net written out: stem, 3 stages of two-conv blocks, global pool, fc.

    Post-activation (``relu(F(x) + s(x))``) or pre-activation (``F(x) + s(x)`` with BN-ReLU
    in front of each conv and one BN-ReLU before the pool); ``s`` = identity, option A
    (subsample + zero channels), option B (1x1 conv + BN) or nothing (plain net).
    """
    preact = model.preact
    out = _conv(x, model.conv1)
    if not preact:
        out = F.relu(_bn(out, model.bn1, training))
    for stage in (model.layer1, model.layer2, model.layer3):
        for block in stage:
            inp = out
            if preact:
                h = _conv(F.relu(_bn(inp, block.bn1, training)), block.conv1)
                h = _conv(F.relu(_bn(h, block.bn2, training)), block.conv2)
            else:
                h = F.relu(_bn(_conv(inp, block.conv1), block.bn1, training))
                h = _bn(_conv(h, block.conv2), block.bn2, training)
            kind, stride = block.shortcut_kind, block.stride
            changes = stride != 1 or inp.shape[1] != h.shape[1]
            if kind == "none":
                skip = 0
            elif kind == "zeropad" and changes:
                sub = inp[:, :, ::stride, ::stride]
                skip = torch.cat([sub, torch.zeros(sub.shape[0], h.shape[1] - sub.shape[1], *sub.shape[2:], dtype=sub.dtype)], 1)
            elif kind == "projection" and changes:
                proj = block.shortcut
                skip = _bn(_conv(inp, proj[0]), proj[1] if len(proj) > 1 else nn.Identity(), training)
            else:
                skip = inp
            merged = torch.cat([h, skip], 1) if block.merge == "cat" else h + skip
            out = merged if preact else F.relu(merged)
    if preact:
        out = F.relu(_bn(out, model.final_norm[0], training))
    return F.linear(out.mean(dim=(2, 3)), model.fc.weight, model.fc.bias)


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN parameters and running statistics, so that every BN is visible in the output."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model


@pytest.mark.parametrize("name", [n for n in list_models() if n not in SMALL | LARGE])
def test_cifar_models_equal_the_written_out_network(name):
    torch.manual_seed(0)
    # float64: a 110-layer plain net amplifies float32 rounding differences past any useful tolerance
    model = _randomize_bn(create_model(name)).double()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _cifar_reference(model, x, training=True), rtol=1e-5, atol=1e-6)
        model.eval()
        assert model(torch.randn(2, 1, 32, 32, dtype=torch.float64)).shape == (2, 10)
        torch.testing.assert_close(model(x), _cifar_reference(model, x, training=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(shortcut="projection"),
        dict(preact=True),
        dict(preact=True, shortcut="projection"),
        dict(bn=False),
        dict(width=2, in_channels=3, num_classes=7),
        dict(stem_stride=2),
        dict(shortcut="none", bn=False),
        dict(bn=False, shortcut="projection", preact=True),
        dict(merge="cat", shortcut="projection"),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_cifar_switches_equal_the_written_out_network(kwargs):
    torch.manual_seed(0)
    model = _randomize_bn(CifarResNet(8, **kwargs))
    x = torch.randn(3, model.in_channels, 28, 28)
    with torch.no_grad():
        for training in (True, False):
            model.train(training)
            torch.testing.assert_close(model(x), _cifar_reference(model, x, training), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_imagenet_models_equal_torchvision_with_the_same_weights(depth):
    torch.manual_seed(0)
    theirs = _randomize_bn(torchvision_resnet(depth, 7, 1))
    ours = create_model(f"resnet{depth}", num_classes=7, in_channels=1)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))  # training mode: batch statistics
        ours.eval(), theirs.eval()
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
@pytest.mark.parametrize("num_classes,in_channels", [(1000, 3), (10, 1)])
def test_parameter_parity_with_torchvision(depth, num_classes, in_channels):
    ours = create_model(f"resnet{depth}", num_classes=num_classes, in_channels=in_channels)
    theirs = torchvision_resnet(depth, num_classes, in_channels)
    assert n_params(ours) == n_params(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_resnet18_loads_torchvision_weights_and_matches_outputs():
    torch.manual_seed(0)
    theirs = torchvision_resnet(18, 10, 3).eval()
    ours = create_model("resnet18", num_classes=10).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


# He et al. (2016), Table 6: parameters for CIFAR-10 (3 input channels, 10 classes)
TABLE6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


@pytest.mark.parametrize("depth,millions", sorted(TABLE6.items()))
def test_cifar_parameter_counts_match_paper_table6(depth, millions):
    model = create_model(f"resnet{depth}", in_channels=3, num_classes=10)
    digits = 1 if depth == 110 else 2
    assert round(n_params(model) / 1e6, digits) == millions
    assert n_params(create_model(f"plain{depth}", in_channels=3)) == n_params(model)


def _cifar_params_by_hand(n: int, c_in: int = 3, classes: int = 10) -> int:
    """6n+2 net with option-A shortcuts, counted layer by layer (3x3 convs without bias, BN = 2 per channel)."""
    conv = lambda a, b: a * b * 9  # noqa: E731
    stem = conv(c_in, 16) + 2 * 16
    total = stem
    for c_prev, c in ((16, 16), (16, 32), (32, 64)):
        first = conv(c_prev, c) + conv(c, c) + 2 * (2 * c)
        rest = 2 * conv(c, c) + 2 * (2 * c)
        total += first + (n - 1) * rest
    return total + 64 * classes + classes


# the exact counts behind Table 6's rounded numbers (the same as in public CIFAR ResNet ports)
EXACT = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


@pytest.mark.parametrize("depth", sorted(EXACT))
def test_cifar_parameter_counts_equal_the_hand_count(depth):
    n = (depth - 2) // 6
    assert _cifar_params_by_hand(n) == EXACT[depth]
    assert n_params(create_model(f"resnet{depth}", in_channels=3, num_classes=10)) == EXACT[depth]
    # one input channel, 7 classes: the stem loses 2 * 16 * 9 weights, the head 3 * 65
    assert n_params(create_model(f"resnet{depth}", num_classes=7)) == EXACT[depth] - 288 - 195
    # projection shortcuts (option B) add a 1x1 conv + BN at stages 2 and 3
    assert n_params(create_model(f"resnet{depth}", in_channels=3, shortcut="projection")) == \
        EXACT[depth] + (16 * 32 + 64) + (32 * 64 + 128)


def test_cifar_depth_counts_weighted_layers():
    for depth in (8, 14, 20):
        model = create_model("resnet_cifar", depth=depth)
        weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(weighted) == depth  # option A adds no conv
    assert create_model("plain_cifar", depth=8)(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_plain_twin_has_no_shortcuts():
    plain = create_model("plain20")
    res = create_model("resnet20")
    assert all(b.shortcut is None for b in plain.blocks())
    assert all(b.shortcut is not None for b in res.blocks())
    assert len(plain.blocks()) == len(res.blocks()) == 9
    # same weights, different function: only the skip paths differ
    plain.load_state_dict(res.state_dict())
    x = torch.randn(2, 1, 28, 28)
    res.eval(), plain.eval()
    assert not torch.allclose(res(x), plain(x))


def test_cifar_switches_change_the_network():
    no_bn = create_model("resnet20", bn=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    proj = create_model("resnet20", shortcut="projection")
    assert n_params(proj) > n_params(create_model("resnet20"))
    cat = create_model("resnet20", merge="cat", shortcut="projection")
    assert cat.fc.in_features == 128  # 2 x 64 after the last cat
    assert cat(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    pre = create_model("resnet20", preact=True)
    assert all(b.preact for b in pre.blocks())
    wide = create_model("resnet20", width=2)
    assert wide.fc.in_features == 128
    zero = create_model("resnet20", zero_init_residual=True)
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in zero.blocks())


def _post_reference(model: nn.Module, x: torch.Tensor, training: bool, fashion: bool) -> torch.Tensor:
    """Posts 000 / 002's ResNet-18 written out: stem, four stages of two basic blocks, pool, fc.

    Post 002 (``fashion=False``): 7x7 stride-2 conv, BN, ReLU, max pool; a block's shortcut is a
    1x1 conv + BN where the first block of stages 2-4 halves the size. Post 000: 7x7 stride-3 conv,
    ReLU *before* BN, max pool; the shortcut is a bare 1x1 conv. Every conv has a bias.
    """
    if fashion:
        stem = model.block1
        out = _bn(F.relu(F.conv2d(x, stem[0].weight, stem[0].bias, stride=3, padding=3)), stem[2], training)
        stages = [model.block2, model.block3, model.block4, model.block5]
        fc = model.block6[2]
    else:
        out = F.relu(_bn(F.conv2d(x, model.conv1.weight, model.conv1.bias, stride=2, padding=3), model.bn1, training))
        stages = [model.layer1, model.layer2, model.layer3, model.layer4]
        fc = model.fc
    out = F.max_pool2d(out, 3, stride=2, padding=1)
    for s, stage in enumerate(stages):
        assert len(stage) == 2
        for i, block in enumerate(stage):
            stride = 2 if s > 0 and i == 0 else 1
            h = F.relu(_bn(F.conv2d(out, block.conv1.weight, block.conv1.bias, stride=stride, padding=1), block.bn1, training))
            h = _bn(F.conv2d(h, block.conv2.weight, block.conv2.bias, padding=1), block.bn2, training)
            if stride == 1:
                skip = out
            elif fashion:
                skip = F.conv2d(out, block.conv3.weight, block.conv3.bias, stride=2)
            else:
                proj, norm = block.shortcut
                skip = _bn(F.conv2d(out, proj.weight, proj.bias, stride=2), norm, training)
            out = F.relu(h + skip)
    return F.linear(out.mean(dim=(2, 3)), fc.weight, fc.bias)


def _randomize_biases(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.1)
    return model


def test_post002_resnet18_equals_the_written_out_network_and_counts():
    torch.manual_seed(0)
    model = _randomize_biases(_randomize_bn(create_model("post_resnet18", num_classes=5)))
    assert isinstance(model, PostResNet)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for training in (True, False):
            model.train(training)
            torch.testing.assert_close(model(x), _post_reference(model, x, training, fashion=False), rtol=1e-4, atol=1e-4)
    # torchvision's 11,689,512 (1000 classes) plus the biases of its 20 convs:
    # 64 (stem) + 4*64 + 2*128 + 2*256 + 2*512 (block convs) + 128 + 256 + 512 (1x1 shortcuts) = 4,800
    assert n_params(create_model("post_resnet18")) == 11_689_512 + 4_800 == 11_694_312
    # with the default (identity) shortcut everywhere: only stages 2-4 have a conv shortcut
    assert [len(b.shortcut) for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage] == [0, 0, 2, 0, 2, 0, 2, 0]


def test_post000_fashion_resnet18_equals_the_written_out_network_and_counts():
    torch.manual_seed(0)
    model = _randomize_biases(_randomize_bn(create_model("post_fashion_resnet18", num_classes=4)))
    assert isinstance(model, PostFashionResNet18)
    assert [n for n, _ in model.named_children()] == [f"block{i}" for i in range(1, 7)]
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        for training in (True, False):
            model.train(training)
            torch.testing.assert_close(model(x), _post_reference(model, x, training, fashion=True), rtol=1e-4, atol=1e-4)
    # by hand: stem 1*64*49 + 64 + BN 128 = 3,328; a block with c_in -> c channels: two biased 3x3 convs,
    # two BNs, and a biased 1x1 conv when c_in != c; the head 512*10 + 10
    def block(c_in: int, c: int) -> int:
        return (c_in * c * 9 + c) + (c * c * 9 + c) + 4 * c + (c_in * c + c if c_in != c else 0)
    by_hand = 3_328 + 2 * block(64, 64) + sum(block(c // 2, c) + block(c, c) for c in (128, 256, 512)) + 5_130
    assert n_params(create_model("post_fashion_resnet18")) == by_hand == 11_178_378


def test_simple_resnet_is_resnet50_with_new_fc():
    torch.manual_seed(0)
    model = _randomize_bn(create_model("simple_resnet", num_classes=3)).eval()
    assert isinstance(model, SimpleResNet)
    theirs = torchvision.models.resnet50(weights=None)
    theirs.fc = nn.Linear(2048, 3)
    theirs.load_state_dict(model.model.state_dict())
    theirs.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), theirs(x))
    # torchvision's 25,557,032 for 1000 classes, less 2048 * 997 + 997 for the smaller head
    assert n_params(create_model("simple_resnet")) == 25_557_032 - 2049 * 990


def test_error_messages_say_what_to_change():
    with pytest.raises(ValueError, match="available models: .*resnet20"):
        create_model("resnet21")
    with pytest.raises(ValueError, match="6n\\+2.*nearest valid depths are 20 or 26"):
        create_model("resnet_cifar", depth=21)
    with pytest.raises(ValueError, match="nearest valid depths are 8"):
        CifarResNet(depth=5)
    with pytest.raises(ValueError, match="accepts"):
        create_model("resnet20", foo=1)
    with pytest.raises(ValueError, match="shortcut='projection'"):
        create_model("resnet20", merge="cat")
    with pytest.raises(ValueError, match="zeropad"):
        create_model("resnet20", shortcut="identity")
    with pytest.raises(ValueError, match="expects 1 input channel\\(s\\), got 3: pass in_channels=3"):
        create_model("resnet20")(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="expects 3 input channel\\(s\\), got 1"):
        create_model("resnet18")(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="unsqueeze"):
        create_model("resnet20")(torch.randn(1, 28, 28))
    with pytest.raises(ValueError, match="in_channels=1"):
        create_model("post_resnet18")(torch.randn(1, 1, 64, 64))


def test_cifar_blocks_are_residual_blocks_with_option_a():
    model = create_model("resnet20")
    blocks = model.blocks()
    assert all(isinstance(b, ResidualBlock) and b.shortcut_kind == "zeropad" for b in blocks)
    assert [b.out_channels for b in blocks] == [16] * 3 + [32] * 3 + [64] * 3


# --- registry, builders and messages ---
def test_create_model_records_its_spec_and_passes_kwargs():
    model = create_model("plain_cifar", depth=14, width=2, num_classes=7)
    assert model.model_spec == {"name": "plain_cifar", "kwargs": {"depth": 14, "width": 2, "num_classes": 7}}
    assert model.depth == 14 and model.fc.out_features == 7 and model.fc.in_features == 128
    assert all(b.shortcut is None for b in model.blocks())
    assert create_model("resnet32").depth == 32 and create_model("plain44").depth == 44
    assert create_model("resnet20", stem_stride=2).conv1.stride == (2, 2)
    assert create_model("resnet20").conv1.stride == (1, 1) and create_model("resnet20").conv1.bias is None
    assert create_model("resnet20", bn=False).conv1.bias is not None
    assert "keyword arguments go to CifarResNet" in models._MODELS["resnet56"].__doc__
    assert "plain net" in models._MODELS["plain56"].__doc__


def test_list_models_sorts_by_family_then_depth():
    names = list_models("resnet*")
    assert names.index("resnet18") < names.index("resnet20") < names.index("resnet101") < names.index("resnet110")
    assert list_models("resnet1*") == ["resnet18", "resnet101", "resnet110", "resnet152"]
    assert list_models("nothing*") == []
    assert list_models() == sorted(list_models(), key=lambda s: (s.rstrip("0123456789"), len(s), s))


def test_register_model_refuses_a_second_model_under_a_taken_name():
    from resnet_tutorial.models import register_model

    def resnet20(**kwargs):  # noqa: ARG001 - only the name matters
        return nn.Linear(1, 1)

    with pytest.raises(ValueError, match=r"a model named 'resnet20' is already registered \(resnet_tutorial.models\); give"):
        register_model(resnet20)
    fn = models._MODELS["resnet20"]
    assert register_model(fn) is fn  # registering the same function again is harmless


def test_signature_errors_name_the_accepted_keywords():
    with pytest.raises(ValueError, match=r"^resnet20 does not take foo, bar; it accepts: num_classes, in_channels, width"):
        create_model("resnet20", foo=1, bar=2)
    with pytest.raises(ValueError, match=r"unknown model 'resnet21' \(did you mean resnet32, resnet20, resnet18\?\); available models: plain20, "):
        create_model("resnet21")
    with pytest.raises(ValueError, match=r"^unknown model 'zzz'; available models: plain20, plain32, "):
        create_model("zzz")
    with pytest.raises(ValueError, match=r"resnet18: .*unexpected keyword argument 'foo'; see help\(create_model\('resnet18'\)"):
        create_model("resnet18", foo=1)  # **kwargs entry points: the TypeError deep inside becomes a ValueError
    with pytest.raises(ValueError, match="plain_cifar has no shortcuts: use resnet_cifar"):
        create_model("plain_cifar", shortcut="zeropad")
    assert create_model("plain_cifar", shortcut="none").blocks()[0].shortcut is None


@pytest.mark.parametrize("depth,message", [
    (21, "nearest valid depths are 20 or 26"), (19, "nearest valid depths are 14 or 20"),
    (7, "nearest valid depths are 8$"), (9, "nearest valid depths are 8 or 14"), (0, "nearest valid depths are 8$"),
])
def test_cifar_depth_message_names_the_nearest_valid_depths(depth, message):
    with pytest.raises(ValueError, match=r"depth must be 6n\+2 with n >= 1 \(8, 14, 20, 26, 32, 44, 56, 110, \.\.\.\), got " + f"{depth}: .*" + message):
        CifarResNet(depth)


def test_network_argument_errors():
    with pytest.raises(ValueError, match=r"stem_stride must be 1 \(the paper's stem\) or 2 \(start at half the size\), got 3"):
        CifarResNet(8, stem_stride=3)
    for kw in (dict(width=0), dict(in_channels=0), dict(num_classes=0)):
        with pytest.raises(ValueError, match=r"width, in_channels and num_classes must be >= 1"):
            CifarResNet(8, **kw)
    with pytest.raises(ValueError, match=r"merge='cat' doubles each block's output channels.* a 'zeropad' shortcut cannot shrink"):
        CifarResNet(8, merge="cat")
    with pytest.raises(ValueError, match=r"shortcut='identity' cannot connect the stages"):
        CifarResNet(8, shortcut="identity")
    from resnet_tutorial.blocks import BasicBlock
    from resnet_tutorial.models import ResNet

    with pytest.raises(ValueError, match=r"layers must be four positive block counts, got \[2, 2, 2\]"):
        ResNet(BasicBlock, [2, 2, 2])
    with pytest.raises(ValueError, match=r"layers must be four positive block counts, got \[2, 0, 2, 2\]"):
        ResNet(BasicBlock, [2, 0, 2, 2])
    with pytest.raises(ValueError, match=r"in_channels and num_classes must be >= 1, got 0 and 10"):
        ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10, in_channels=0)
    with pytest.raises(ValueError, match=r"got 3 and 0"):
        ResNet(BasicBlock, [1, 1, 1, 1], num_classes=0)
    with pytest.raises(ValueError, match=r"replace_stride_with_dilation should be None or a 3-element list"):
        ResNet(BasicBlock, [1, 1, 1, 1], replace_stride_with_dilation=[False])
    with pytest.raises(ValueError, match=r"num_blocks must list four stage lengths, got \[2, 2\]"):
        PostResNet(num_blocks=[2, 2])


@pytest.mark.parametrize("shape,message", [
    ((1, 3, 28, 28), r"model expects 1 input channel\(s\), got 3: pass in_channels=3 when creating the model, or convert the images to grayscale"),
    ((1, 28, 28), r"model expects a 4-d batch N x 1 x H x W, got shape \(1, 28, 28\): add a batch dimension with x.unsqueeze\(0\)"),
    ((28, 28), r"^model expects a 4-d batch N x 1 x H x W, got shape \(28, 28\)$"),
])
def test_input_errors_for_a_gray_model(shape, message):
    with pytest.raises(ValueError, match=message):
        create_model("resnet20")(torch.randn(*shape))


def test_input_errors_for_a_color_model():
    with pytest.raises(ValueError, match=r"expects 3 input channel\(s\), got 1: .*or repeat the channel \(x.expand\(-1, 3, -1, -1\)\)"):
        create_model("resnet18")(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expects 3 input channel\(s\), got 2: .*or convert the images$"):
        create_model("resnet18")(torch.randn(1, 2, 32, 32))
    with pytest.raises(ValueError, match=r"expects 1 input channel\(s\), got 3"):
        create_model("post_fashion_resnet18")(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"expects 3 input channel\(s\), got 1"):
        create_model("simple_resnet")(torch.randn(1, 1, 64, 64))


def test_resnet_options_match_torchvision():
    ours = create_model("resnet18", num_classes=5, zero_init_residual=True)
    theirs = torchvision.models.resnet18(weights=None, num_classes=5, zero_init_residual=True)
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        if name.endswith("bn2.weight") and "layer" in name:
            assert torch.count_nonzero(a) == torch.count_nonzero(b) == 0, name
        elif "bn" in name or "downsample.1" in name:
            assert torch.equal(a, b), name  # BN starts as gamma 1, beta 0
    for m in ours.modules():  # kaiming fan_out: std = sqrt(2 / (out_channels * k * k))
        if isinstance(m, nn.Conv2d) and m.weight.numel() > 50_000:
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            assert float(m.weight.detach().std()) == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    small = create_model("resnet18", small_input=True)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and isinstance(small.maxpool, nn.Identity)
    # dilation and grouped/wide bottlenecks on one-block-per-stage nets (the options act per block; small = fast)
    from resnet_tutorial.models import ResNet
    from torchvision.models.resnet import Bottleneck as TvBottleneck
    from torchvision.models.resnet import ResNet as TvResNet

    from resnet_tutorial.blocks import Bottleneck

    dil = ResNet(Bottleneck, [2, 1, 2, 2], replace_stride_with_dilation=[False, True, True])
    tv_dil = TvResNet(TvBottleneck, [2, 1, 2, 2], replace_stride_with_dilation=[False, True, True])
    assert [m.dilation for m in dil.modules() if isinstance(m, nn.Conv2d)] == \
        [m.dilation for m in tv_dil.modules() if isinstance(m, nn.Conv2d)]
    assert [m.stride for m in dil.modules() if isinstance(m, nn.Conv2d)] == \
        [m.stride for m in tv_dil.modules() if isinstance(m, nn.Conv2d)]
    wide = ResNet(Bottleneck, [1, 1, 1, 1], groups=2, width_per_group=128, num_classes=3)
    tv_wide = TvResNet(TvBottleneck, [1, 1, 1, 1], groups=2, width_per_group=128, num_classes=3)
    assert n_params(wide) == n_params(tv_wide)
    assert [m.groups for m in wide.modules() if isinstance(m, nn.Conv2d)] == \
        [m.groups for m in tv_wide.modules() if isinstance(m, nn.Conv2d)]
    tv_wide.load_state_dict(wide.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(x), tv_wide.eval()(x))
    feats = create_model("resnet18").eval().forward_features(torch.randn(1, 3, 64, 64))
    assert feats.shape == (1, 512, 2, 2)


def test_cifar_init_and_zero_init():
    model = create_model("resnet20", bn=False, zero_init_residual=True)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(torch.count_nonzero(c.bias) == 0 for c in convs)
    last = [b.conv2 for b in model.blocks()]
    assert all(torch.count_nonzero(c.weight) == 0 for c in last)
    model = create_model("resnet56")
    w = model.layer3[0].conv2.weight
    assert float(w.detach().std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)  # kaiming fan_out
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and torch.count_nonzero(m.bias) == 0
               for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    pre = create_model("resnet20", preact=True)
    assert isinstance(pre.bn1, nn.Identity) and isinstance(pre.act1, nn.Identity)
    assert isinstance(pre.final_norm[0], nn.BatchNorm2d) and isinstance(pre.final_norm[1], nn.ReLU)
    assert isinstance(create_model("resnet20").final_norm, nn.Identity)
    gelu = create_model("resnet20", activation="gelu")
    assert isinstance(gelu.act1, nn.GELU) and all(isinstance(b.act2, nn.GELU) for b in gelu.blocks())


def test_deep_builders_layout():
    mlp = models.make_deep_mlp(3, width=5, activation="tanh", bn=True, in_features=7, num_classes=4)
    assert [n for n, _ in mlp.named_children()] == ["flatten", "hidden1", "hidden2", "hidden3", "head"]
    assert [type(m).__name__ for m in mlp.hidden2] == ["BatchNorm1d", "Tanh", "Linear"]
    assert list(dict(mlp.hidden2.named_children())) == ["bn", "act", "linear"]
    assert mlp.hidden1.linear.in_features == 7 and mlp.hidden1.linear.bias is None and mlp.head.linear.out_features == 4
    assert mlp.head.linear.bias is not None and mlp.hidden2.linear.bias is None
    plain = models.make_deep_mlp(2, width=5)
    assert [type(m).__name__ for m in plain.hidden2] == ["Sigmoid", "Linear"] and plain.hidden2.linear.bias is not None
    cnn = models.make_deep_cnn(3, channels=6, activation="relu", bn=True, in_channels=3, num_classes=4, stem_stride=1)
    assert cnn.hidden1.conv.stride == (1, 1) and cnn.hidden1.conv.in_channels == 3 and cnn.hidden1.conv.bias is None
    assert [type(m).__name__ for m in cnn.head] == ["BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert list(dict(cnn.head.named_children())) == ["bn", "act", "adaptiveavgpool2d", "flatten", "linear"]
    assert cnn(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    assert models.make_deep_cnn(2).hidden1.conv.stride == (2, 2)
    res = models.make_deep_cnn(3, channels=4, shortcut=True)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(res.hidden2(x), x + res.hidden2.body(x))
    assert models.make_deep_net("cnn", 2, channels=3).hidden1.conv.out_channels == 3
    assert isinstance(models.make_deep_net(depth=2).hidden1.linear, nn.Linear)
    for bad, match in [(dict(in_features=0), "in_features and num_classes must be positive"),
                       (dict(num_classes=0), "in_features and num_classes must be positive")]:
        with pytest.raises(ValueError, match=match):
            models.make_deep_mlp(2, **bad)
    for bad in (dict(in_channels=0), dict(num_classes=0), dict(stem_stride=0)):
        with pytest.raises(ValueError, match="in_channels, num_classes and stem_stride must be positive"):
            models.make_deep_cnn(2, **bad)
    for kw, match in [(dict(depth=True), "depth must be an int between 1 and 1000"), (dict(depth=1001), r"depth must be an int between 1 and 1000 \(number of hidden layers\), got 1001"),
                      (dict(depth=2, width=True), "width must be a positive int, got True"),
                      (dict(depth=2, activation="softmax"), r"activation must be one of \['elu'"),
                      (dict(depth=2, init="he"), r"init must be one of \['default', 'xavier'")]:
        with pytest.raises(ValueError, match="make_deep_mlp: " + match):
            models.make_deep_mlp(**kw)
    with pytest.raises(ValueError, match="make_deep_cnn: channels must be a positive int"):
        models.make_deep_cnn(2, channels=0)
    with pytest.raises(ValueError, match=r"arch must be 'mlp' or 'cnn', got 'rnn'"):
        models.make_deep_net("rnn")
    assert models.make_deep_mlp(1).hidden1.linear.out_features == 64 and len(models.make_deep_mlp(1000, width=1)) == 1002


@pytest.mark.parametrize("init,std", [("small", 0.01), ("large", 1.0), ("kaiming", (2 / 200) ** 0.5),
                                      ("xavier", (2 / 400) ** 0.5)])
def test_inits_give_the_documented_std_and_zero_bias(init, std):
    torch.manual_seed(0)
    for net, layer in ((models.make_deep_mlp(3, width=200, init=init), "linear"),
                       (models.make_deep_cnn(3, channels=200 // 9 * 9, init=init), "conv")):
        w = getattr(net.hidden2, layer)
        fan = w.weight[0].numel()
        expected = std if init in ("small", "large") else std * (200 / fan) ** 0.5 if init == "kaiming" else None
        if init == "xavier":
            expected = (2 / (fan + w.weight.shape[0] * (w.weight[0, 0].numel() if w.weight.dim() > 2 else 1))) ** 0.5
        assert float(w.weight.std()) == pytest.approx(expected, rel=0.06), (init, layer)
        assert torch.count_nonzero(w.bias) == 0


def test_register_cifar_makes_a_residual_and_a_plain_entry_point(monkeypatch):
    """The import-time registration, run again here on an empty registry for a depth not registered."""
    monkeypatch.setattr(models, "_MODELS", {})
    models._register_cifar(14)
    assert list_models() == ["plain14", "resnet14"]
    res, plain = models._MODELS["resnet14"], models._MODELS["plain14"]
    assert (res.__name__, res.__qualname__, plain.__name__, plain.__qualname__) == ("resnet14", "resnet14", "plain14", "plain14")
    assert res.__doc__ == "The 14-layer CIFAR-style ResNet (He et al. 2016, section 4.2); keyword arguments go to CifarResNet."
    assert plain.__doc__ == "The 14-layer CIFAR-style plain net (He et al. 2016, section 4.2); keyword arguments go to CifarResNet."
    keywords = ["num_classes", "in_channels", "width", "bn", "shortcut", "merge", "preact", "activation",
                "zero_init_residual", "stem_stride"]
    assert list(inspect.signature(res).parameters) == keywords
    assert list(inspect.signature(plain).parameters) == [k for k in keywords if k != "shortcut"]
    a, b = create_model("resnet14", num_classes=3), create_model("plain14", width=2)
    assert a.depth == b.depth == 14 and a.fc.out_features == 3 and b.fc.in_features == 128
    assert all(blk.shortcut_kind == "zeropad" for blk in a.blocks()) and all(blk.shortcut is None for blk in b.blocks())
    with pytest.raises(ValueError, match=r"^plain14 does not take shortcut; it accepts: num_classes, in_channels, width, bn, merge,"):
        create_model("plain14", shortcut="zeropad")


def test_deep_net_defaults_and_pytorch_default_init():
    # make_deep_net's default depth is 20 hidden layers: flatten + 20 + head
    assert len(models.make_deep_net()) == 22
    assert models.make_deep_net("mlp", 2, width=3).hidden1.linear.out_features == 3  # keywords reach the builder
    assert models.make_deep_net("cnn", 2, channels=5).hidden2.conv.in_channels == 5
    # init="default" keeps PyTorch's own init: uniform(+-1/sqrt(fan_in)) weights (std 1/sqrt(3 fan_in)) and biases
    torch.manual_seed(0)
    lin = models.make_deep_mlp(2, width=400, init="default").hidden2.linear
    bound = 1 / 400 ** 0.5
    assert float(lin.bias.abs().max()) > 0.9 * bound and float(lin.bias.abs().max()) <= bound
    assert float(lin.weight.detach().std()) == pytest.approx(1 / (3 * 400) ** 0.5, rel=0.02)


def test_register_model_adds_an_entry_point(monkeypatch):
    monkeypatch.setattr(models, "_MODELS", {})

    def tiny(num_classes: int = 2) -> nn.Module:
        return nn.Linear(3, num_classes)

    assert models.register_model(tiny) is tiny
    assert models._MODELS == {"tiny": tiny} and list_models() == ["tiny"]
    assert create_model("tiny", num_classes=4).out_features == 4


@pytest.mark.parametrize("shortcut", [False, True])
def test_deep_mlp_and_cnn_equal_their_written_out_forward(shortcut):
    torch.manual_seed(0)
    mlp = models.make_deep_mlp(3, width=6, activation="tanh", shortcut=shortcut, in_features=12, num_classes=4)
    x = torch.randn(5, 3, 2, 2)
    lin = [mlp.hidden1.linear, mlp.hidden2.body.linear if shortcut else mlp.hidden2.linear,
           mlp.hidden3.body.linear if shortcut else mlp.hidden3.linear, mlp.head.linear]
    h = F.linear(x.reshape(5, 12), lin[0].weight, lin[0].bias)
    for layer in lin[1:3]:
        step = F.linear(torch.tanh(h), layer.weight, layer.bias)
        h = h + step if shortcut else step
    torch.testing.assert_close(mlp(x), F.linear(torch.tanh(h), lin[3].weight, lin[3].bias))

    cnn = models.make_deep_cnn(3, channels=4, activation="relu", shortcut=shortcut, in_channels=2, num_classes=3)
    x = torch.randn(2, 2, 9, 9)
    convs = [cnn.hidden1.conv] + [(cnn[i].body if shortcut else cnn[i]).conv for i in (1, 2)]
    h = F.conv2d(x, convs[0].weight, convs[0].bias, stride=2, padding=1)  # default stem stride 2: 9 -> 5
    assert h.shape == (2, 4, 5, 5)
    for conv in convs[1:]:
        step = F.conv2d(F.relu(h), conv.weight, conv.bias, padding=1)
        h = h + step if shortcut else step
    head = cnn.head.linear
    torch.testing.assert_close(cnn(x), F.linear(F.relu(h).mean(dim=(2, 3)), head.weight, head.bias))


def test_deep_builders_defaults_and_smallest_sizes():
    mlp = models.make_deep_mlp(2)
    assert (mlp.hidden1.linear.in_features, mlp.hidden1.linear.out_features, mlp.head.linear.out_features) == (784, 64, 10)
    assert mlp.hidden1.linear.bias is not None and isinstance(mlp.hidden2.act, nn.Sigmoid)
    cnn = models.make_deep_cnn(2)
    assert (cnn.hidden1.conv.in_channels, cnn.hidden1.conv.out_channels, cnn.head.linear.out_features) == (1, 8, 10)
    assert cnn.hidden1.conv.stride == (2, 2) and cnn.hidden1.conv.bias is not None and isinstance(cnn.hidden2.act, nn.Sigmoid)
    # one input feature / channel, one class and stride 1 are the smallest valid sizes
    assert models.make_deep_mlp(1, width=1, in_features=1, num_classes=1)(torch.ones(2, 1)).shape == (2, 1)
    assert models.make_deep_cnn(1, channels=1, in_channels=1, num_classes=1, stem_stride=1)(torch.ones(2, 1, 3, 3)).shape == (2, 1)
    assert len(models.make_deep_mlp(1000, width=1)) == 1002 and len(models.make_deep_cnn(1, channels=1)) == 2
    for kw in (dict(in_features=0), dict(num_classes=0)):
        with pytest.raises(ValueError, match=r"^make_deep_mlp: in_features and num_classes must be positive$"):
            models.make_deep_mlp(2, **kw)
    for kw in (dict(in_channels=0), dict(num_classes=0), dict(stem_stride=0)):
        with pytest.raises(ValueError, match=r"^make_deep_cnn: in_channels, num_classes and stem_stride must be positive$"):
            models.make_deep_cnn(2, **kw)
    for depth in (0, 1001, 2.0, True):
        with pytest.raises(ValueError, match=r"^make_deep_cnn: depth must be an int between 1 and 1000 \(number of hidden layers\), got "):
            models.make_deep_cnn(depth)
    for width in (0, 2.0, True):
        with pytest.raises(ValueError, match=r"^make_deep_mlp: width must be a positive int, got "):
            models.make_deep_mlp(2, width=width)
    with pytest.raises(ValueError, match=r"^make_deep_cnn: activation must be one of \['elu', .*\], got 'softmax'$"):
        models.make_deep_cnn(2, activation="softmax")
    with pytest.raises(ValueError, match=r"^make_deep_cnn: init must be one of \['default', 'xavier', 'kaiming', 'small', 'large'\], got 'he'$"):
        models.make_deep_cnn(2, init="he")


def test_deep_mlp_head_has_batch_norm_exactly_with_bn():
    assert isinstance(models.make_deep_mlp(2, width=4, bn=True).head.bn, nn.BatchNorm1d)
    assert [type(m) for m in models.make_deep_mlp(2, width=4).head] == [nn.Sigmoid, nn.Linear]


def test_stage_lengths_and_hidden_batch_norm_follow_the_arguments(monkeypatch):
    post = PostResNet(num_blocks=[1, 3, 1, 2], num_classes=2)
    assert [len(s) for s in (post.layer1, post.layer2, post.layer3, post.layer4)] == [1, 3, 1, 2]
    cnn = models.make_deep_cnn(3, channels=4, bn=True, activation="relu")
    assert [type(m) for m in cnn.hidden2] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d]
    assert [type(m) for m in models.make_deep_cnn(3, channels=4, activation="relu").hidden3] == [nn.ReLU, nn.Conv2d]
    # list_models groups by the name without its trailing digits: letters stay part of the family
    monkeypatch.setattr(models, "_MODELS", {})
    for name in ("netY", "net10", "netX", "net2"):
        models.register_model(_named(name))
    assert list_models() == ["net2", "net10", "netX", "netY"]


def _named(name: str):
    def fn() -> nn.Module:
        return nn.Identity()

    fn.__name__ = name
    return fn


def test_post_networks_defaults_and_arguments():
    from resnet_tutorial.models import post_resnet18

    assert (PostResNet().conv1.in_channels, PostResNet().fc.out_features) == (3, 1000)
    assert (PostFashionResNet18().block1[0].in_channels, PostFashionResNet18().block6[2].out_features) == (1, 10)
    net = post_resnet18(num_classes=5, in_channels=1)
    assert (net.conv1.in_channels, net.fc.out_features) == (1, 5)
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2, 2, 2, 2]
    with pytest.raises(TypeError, match="foo"):
        post_resnet18(foo=1)  # extra keywords reach PostResNet, which refuses unknown ones


# ------------------------------------------------------------------ written against mutmut's survivors (models)
def _stage_shapes(net: nn.Module, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape of each named child in one forward pass (hooks; the net is left as it was)."""
    shapes, handles = {}, []
    for name in names:
        handles.append(getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))))
    with torch.no_grad():
        net.eval()(x)
    for h in handles:
        h.remove()
    return shapes


@pytest.mark.parametrize("kwargs,expected", [
    ({}, [(16, 28, 28), (32, 14, 14), (64, 7, 7)]),  # the paper's stages: size kept, halved, halved
    ({"stem_stride": 2}, [(16, 14, 14), (32, 7, 7), (64, 4, 4)]),
    ({"width": 2}, [(32, 28, 28), (64, 14, 14), (128, 7, 7)]),
])
def test_cifar_stages_halve_the_size_and_double_the_channels(kwargs, expected):
    net = CifarResNet(20, **kwargs)
    shapes = _stage_shapes(net, torch.randn(2, 1, 28, 28), ("conv1", "layer1", "layer2", "layer3"))
    assert shapes["conv1"][1:] == expected[0][1:]  # a 3x3 stem with padding 1 keeps (or halves) the size
    assert [shapes["layer1"], shapes["layer2"], shapes["layer3"]] == expected
    for stage in (net.layer2, net.layer3):  # only the first block of a stage downsamples
        assert [b.stride for b in stage] == [2, 1, 1]


@pytest.mark.parametrize("preact", [False, True])
def test_cifar_without_bn_has_no_batch_norm_anywhere(preact):
    net = CifarResNet(20, bn=False, preact=preact)
    assert not [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert any(isinstance(m, nn.BatchNorm2d) for m in CifarResNet(20, preact=preact).modules())


def _layout(net: nn.Module) -> list[tuple]:
    """Every conv, norm, linear and ReLU with the settings that shape what it computes."""
    out = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            out.append((name, m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        m.groups, m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            out.append((name, m.num_features, m.eps, m.momentum))
        elif isinstance(m, nn.Linear):
            out.append((name, m.in_features, m.out_features))
        elif isinstance(m, nn.ReLU):
            out.append((name, m.inplace))
    return out


@pytest.mark.parametrize("kind,layers,kwargs", [  # two blocks in some stages: the first and the later ones differ
    ("basic", [2, 1, 1, 2], {}),  # every default: 1000 classes, 3 channels, no zero init
    ("bottleneck", [1, 2, 1, 1], {"replace_stride_with_dilation": [True, False, False]}),
    ("bottleneck", [1, 1, 2, 1], {"replace_stride_with_dilation": [False, True, False]}),
    ("bottleneck", [1, 1, 1, 2], {"replace_stride_with_dilation": [False, False, True]}),
    ("bottleneck", [2, 1, 1, 2], {"groups": 4, "width_per_group": 32}),
    ("basic", [1, 1, 1, 1], {"num_classes": 1}),  # one output (a logistic score) is a valid head
])
def test_resnet_layout_and_init_equal_torchvision(kind, layers, kwargs):
    from functools import partial

    from torchvision.models import resnet as tv

    from resnet_tutorial.blocks import BasicBlock, Bottleneck
    from resnet_tutorial.models import ResNet

    ours_block, tv_block = (BasicBlock, tv.BasicBlock) if kind == "basic" else (Bottleneck, tv.Bottleneck)
    ours, theirs = ResNet(ours_block, layers, **kwargs), tv.ResNet(tv_block, layers, **kwargs)
    assert _layout(ours) == _layout(theirs)
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        if ".bn" in name or name.startswith("bn"):
            assert torch.equal(a, b), name  # gamma 1, beta 0 everywhere: no zero init by default
    eps = partial(nn.BatchNorm2d, eps=1e-3)  # a norm_layer reaches the stem and every block
    assert _layout(ResNet(ours_block, layers, norm_layer=eps)) == _layout(tv.ResNet(tv_block, layers, norm_layer=eps))


def test_small_input_stem_keeps_a_28_pixel_image_at_full_size():
    net = create_model("resnet18", small_input=True, num_classes=10, in_channels=1)
    c = net.conv1
    assert (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.bias) == (1, 64, (3, 3), (1, 1),
                                                                                            (1, 1), None)
    shapes = _stage_shapes(net, torch.randn(2, 1, 28, 28), ("conv1", "layer1", "layer4"))
    assert shapes == {"conv1": (64, 28, 28), "layer1": (64, 28, 28), "layer4": (512, 4, 4)}


def test_cifar_merge_and_shortcut_errors_say_what_to_pass():
    for shortcut in ("identity", "zeropad"):
        with pytest.raises(ValueError) as info:
            CifarResNet(8, merge="cat", shortcut=shortcut)
        assert str(info.value) == (f"merge='cat' doubles each block's output channels, so the next block gets 2x the "
                                   f"channels it returns and a {shortcut!r} shortcut cannot shrink them: pass "
                                   "shortcut='projection' with merge='cat'")
    with pytest.raises(ValueError) as info:
        CifarResNet(8, shortcut="identity")
    assert str(info.value) == ("shortcut='identity' cannot connect the stages (channels double and the size halves at "
                               "stages 2 and 3): pass shortcut='zeropad' (option A, the paper's CIFAR choice) or "
                               "'projection' (option B)")
    assert CifarResNet(8, num_classes=1).fc.out_features == 1


def test_post_resnet18_has_two_blocks_per_stage_and_simple_resnet_passes_its_weights(monkeypatch):
    net = models.post_resnet18(num_classes=10)
    assert [len(getattr(net, f"layer{i}")) for i in (1, 2, 3, 4)] == [2, 2, 2, 2]
    asked = []
    real = torchvision.models.resnet50
    monkeypatch.setattr(torchvision.models, "resnet50", lambda weights=None: asked.append(weights) or real(weights=None))
    SimpleResNet(num_classes=3, weights="DEFAULT")  # the download itself is not the point: the argument is
    assert asked == ["DEFAULT"]


def test_cifar_convs_start_with_he_init_over_their_outputs_and_resnet_defaults():
    torch.manual_seed(0)
    conv = CifarResNet(20).layer2[0].conv1  # 16 -> 32 channels: fan_out 288, fan_in 144 differ
    assert float(conv.weight.std()) == pytest.approx((2 / (32 * 9)) ** 0.5, rel=0.05)
    assert SimpleResNet().model.fc.out_features == 1000  # torchvision's default head
    with pytest.raises(ValueError) as info:
        CifarResNet(8)(torch.randn(2, 3, 28, 28))
    assert str(info.value) == ("model expects 1 input channel(s), got 3: pass in_channels=3 when creating the model, "
                               "or convert the images to grayscale (e.g. x.mean(1, keepdim=True))")


def test_defaults_and_the_dilation_message():
    from resnet_tutorial.blocks import BasicBlock
    from resnet_tutorial.models import ResNet

    assert CifarResNet().depth == 20  # the paper's smallest CIFAR net
    with pytest.raises(ValueError) as info:
        ResNet(BasicBlock, [1, 1, 1, 1], replace_stride_with_dilation=[True, False])
    assert str(info.value) == "replace_stride_with_dilation should be None or a 3-element list, got [True, False]"
