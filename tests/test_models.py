"""Networks and registry: shapes, parity with torchvision, the paper's Table 6, errors."""

import pytest
import torch
import torchvision
from torch import nn

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


@pytest.mark.parametrize("name", [n for n in list_models() if n not in SMALL | LARGE])
def test_cifar_models_forward_28_and_32(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_imagenet_basic_models_forward(name):
    model = create_model(name, num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 7)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
@pytest.mark.parametrize("num_classes,in_channels", [(1000, 3), (10, 1)])
def test_parameter_parity_with_torchvision(depth, num_classes, in_channels):
    ours = create_model(f"resnet{depth}", num_classes=num_classes, in_channels=in_channels)
    theirs = torchvision_resnet(depth, num_classes, in_channels)
    assert n_params(ours) == n_params(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_bottleneck_models_one_small_forward():
    model = create_model("resnet50", num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)


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


def test_post002_resnet18_shapes_and_params():
    model = create_model("post_resnet18")
    assert isinstance(model, PostResNet)
    # torchvision's 11,689,512 plus the biases of its 20 convs (post 002 keeps bias=True)
    conv_biases = sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))
    assert n_params(model) == 11_689_512 + conv_biases == 11_694_312
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(10, 3, 224, 224)).shape == (10, 1000)


def test_post000_fashion_resnet18_shapes_params_and_names():
    model = create_model("post_fashion_resnet18")
    assert isinstance(model, PostFashionResNet18)
    assert [n for n, _ in model.named_children()] == [f"block{i}" for i in range(1, 7)]
    stem = model.block1
    assert stem[0].stride == (3, 3) and stem[0].kernel_size == (7, 7)
    assert isinstance(stem[1], nn.ReLU) and isinstance(stem[2], nn.BatchNorm2d)  # ReLU before BN
    assert n_params(model) == 11_178_378
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 224, 224)).shape == (1, 10)


def test_simple_resnet_is_resnet50_with_new_fc():
    model = create_model("simple_resnet")
    assert isinstance(model, SimpleResNet)
    assert model.model.fc.out_features == 10
    assert n_params(model) == n_params(torchvision_resnet(50, 10, 3))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


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
