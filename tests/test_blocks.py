"""Residual blocks: shapes, shortcut kinds, BN switch, add vs cat, zero-init identity."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tutorial.blocks import (
    BasicBlock,
    Bottleneck,
    ConvBlock,
    IdentityBlock,
    PostBasicBlock,
    Residual,
    ResidualBlock,
    ZeroPadShortcut,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- reference computations written out with torch.nn.functional (never the blocks' own methods) ---
def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Training-mode BN with the batch's own statistics: (x - mean) / sqrt(biased var + eps) * gamma + beta."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding)


def _branch(block: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN of a post-activation ResidualBlock with BN."""
    out = F.relu(_bn(F.conv2d(x, block.conv1.weight, stride=block.stride, padding=1), block.bn1))
    return _bn(F.conv2d(out, block.conv2.weight, padding=1), block.bn2)


def _randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN affine parameters, so a swapped gamma/beta or a skipped BN shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return module


def test_post000_residual_shapes_and_params():
    torch.manual_seed(0)
    same = Residual(64, 64)
    assert same.conv3 is None
    assert same(torch.randn(2, 64, 8, 8)).shape == (2, 64, 8, 8)
    down = Residual(64, 128, use_1x1conv=True, strides=2)
    assert down(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    # biased convs: 3x3 64->64 twice plus BN: 2*(64*64*9+64) + 2*2*64
    assert n_params(same) == 2 * (64 * 64 * 9 + 64) + 4 * 64
    # the 1x1 shortcut is a biased conv without BN
    assert n_params(down.conv3) == 64 * 128 + 128
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        Residual(64, 128, strides=2)


def test_post002_basic_block_shortcut_sequential():
    same = PostBasicBlock(64, 64)
    assert isinstance(same.shortcut, nn.Sequential) and len(same.shortcut) == 0
    x = torch.randn(2, 64, 8, 8)
    assert same(x).shape == x.shape
    down = PostBasicBlock(64, 128, stride=2)
    assert [type(m) for m in down.shortcut] == [nn.Conv2d, nn.BatchNorm2d]
    assert down(x).shape == (2, 128, 4, 4)
    # post 002's block differs from post 000's only by the BN in the projection shortcut
    assert n_params(down) == n_params(Residual(64, 128, use_1x1conv=True, strides=2)) + 2 * 128


def test_post001_conv_block_changes_dims_identity_block_keeps_them():
    x = torch.randn(2, 64, 8, 8)
    conv = ConvBlock(64, 64, stride=1)
    y = conv(x)
    assert y.shape == (2, 256, 8, 8)
    ident = IdentityBlock(256)
    assert ident(y).shape == y.shape
    # two conv blocks in a row with the same arguments do not fit: 256 channels arrive, 64 expected
    with pytest.raises(ValueError, match="expects 64 input channels, got 256"):
        conv(y)
    with pytest.raises(ValueError, match="ConvBlock"):
        ident(x)
    with pytest.raises(ValueError, match="filters"):
        IdentityBlock(256, filters=32)
    assert ConvBlock(256, 128, stride=2)(y).shape == (2, 512, 4, 4)


def test_torchvision_blocks_load_torchvision_state_dicts():
    from torchvision.models import resnet as tv

    torch.manual_seed(0)
    ds = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
    ours = Bottleneck(64, 64, downsample=ds)
    theirs = tv.Bottleneck(64, 64, downsample=nn.Sequential(nn.Conv2d(64, 256, 1, bias=False),
                                                            nn.BatchNorm2d(256)))
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(2, 64, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))
    b = BasicBlock(32, 32)
    tb = tv.BasicBlock(32, 32)
    b.load_state_dict(tb.state_dict())
    b.eval(), tb.eval()
    x = torch.randn(2, 32, 6, 6)
    torch.testing.assert_close(b(x), tb(x))


@pytest.mark.parametrize("block", [BasicBlock(16, 16), Bottleneck(64, 16)])
def test_torchvision_blocks_zero_init_is_identity_on_nonnegative_input(block):
    block.zero_init_residual()
    block.train()
    x = torch.relu(torch.randn(4, block.conv1.in_channels, 6, 6))
    torch.testing.assert_close(block(x), x)


def test_zeropad_shortcut_has_no_parameters_and_pads_subsampled_input():
    s = ZeroPadShortcut(16, 32, stride=2)
    assert n_params(s) == 0
    x = torch.randn(2, 16, 8, 8)
    y = s(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    block = ResidualBlock(16, 32, 2, shortcut="zeropad")
    assert n_params(block.shortcut) == 0
    with pytest.raises(ValueError, match="projection"):
        ZeroPadShortcut(32, 16)


def test_projection_only_where_shape_changes():
    same = ResidualBlock(16, 16, shortcut="projection")
    assert isinstance(same.shortcut, nn.Identity)
    down = ResidualBlock(16, 32, 2, shortcut="projection")
    assert [type(m) for m in down.shortcut] == [nn.Conv2d, nn.BatchNorm2d]
    assert n_params(down.shortcut) == 16 * 32 + 2 * 32
    assert down(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_identity_shortcut_needs_matching_shapes():
    with pytest.raises(ValueError, match="projection.*zeropad"):
        ResidualBlock(16, 32, 2, shortcut="identity")
    with pytest.raises(ValueError, match="unknown shortcut"):
        ResidualBlock(16, 16, shortcut="dense")
    with pytest.raises(ValueError, match="unknown merge"):
        ResidualBlock(16, 16, merge="mul")
    with pytest.raises(ValueError, match="unknown activation"):
        ResidualBlock(16, 16, activation="swish2")


def test_plain_block_has_no_skip_path():
    torch.manual_seed(0)
    plain = ResidualBlock(8, 8, shortcut="none")
    assert plain.shortcut is None
    assert not any("shortcut" in name for name, _ in plain.named_modules() if name)
    x = torch.randn(3, 8, 5, 5)
    # output is exactly relu(F(x)), F written out here: nothing of x is added
    torch.testing.assert_close(plain(x), F.relu(_branch(plain, x)))
    res = ResidualBlock(8, 8, shortcut="identity")
    res.load_state_dict(plain.state_dict())
    torch.testing.assert_close(res(x), F.relu(_branch(plain, x) + x))
    assert not torch.allclose(res(x), plain(x))


def test_bn_switch_changes_modules():
    with_bn = ResidualBlock(8, 16, 2, shortcut="projection", bn=True)
    without = ResidualBlock(8, 16, 2, shortcut="projection", bn=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules()) == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    convs_bn = [m for m in with_bn.modules() if isinstance(m, nn.Conv2d)]
    convs_nobn = [m for m in without.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs_bn)
    assert all(c.bias is not None for c in convs_nobn)
    assert without(torch.randn(2, 8, 6, 6)).shape == (2, 16, 3, 3)


def test_cat_merge_doubles_channels_and_records_out_channels():
    add = ResidualBlock(16, 16, merge="add")
    cat = ResidualBlock(16, 16, merge="cat")
    x = torch.randn(2, 16, 6, 6)
    assert add(x).shape == (2, 16, 6, 6) and add.out_channels == 16
    assert cat(x).shape == (2, 32, 6, 6) and cat.out_channels == 32
    assert n_params(add) == n_params(cat)  # the merge itself has no parameters
    # the shortcut half of the output is act(x) itself
    torch.testing.assert_close(cat(x)[:, 16:], torch.relu(x))
    nxt = ResidualBlock(cat.out_channels, 16, shortcut="projection", merge="cat")
    assert nxt(cat(x)).shape == (2, 32, 6, 6)
    with pytest.raises(ValueError, match="shortcut='none'"):
        ResidualBlock(16, 16, shortcut="none", merge="cat")


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("bn", [True, False])
def test_zero_init_block_is_exactly_identity(preact, bn):
    torch.manual_seed(0)
    block = ResidualBlock(8, 8, shortcut="identity", preact=preact, bn=bn)
    x = torch.relu(torch.randn(4, 8, 5, 5))
    assert not torch.allclose(block(x), x)
    block.zero_init_residual()
    block.train()
    assert torch.equal(block(x), x)


def test_preact_ordering_and_activation_choice():
    block = ResidualBlock(8, 16, 2, shortcut="projection", preact=True, activation="gelu")
    assert isinstance(block.act1, nn.GELU)
    assert block.bn1.num_features == 8  # BN sits before the first conv
    x = torch.randn(2, 8, 6, 6)
    # pre-activation: no activation after the add, so outputs can be negative
    y = block(x)
    assert y.shape == (2, 16, 3, 3) and (y < 0).any()
    # BN -> GELU -> conv -> BN -> GELU -> conv, plus the projection (1x1 conv + BN), nothing after the add
    out = F.conv2d(F.gelu(_bn(x, block.bn1)), block.conv1.weight, stride=2, padding=1)
    out = F.conv2d(F.gelu(_bn(out, block.bn2)), block.conv2.weight, padding=1)
    skip = _bn(F.conv2d(x, block.shortcut[0].weight, stride=2), block.shortcut[1])
    torch.testing.assert_close(y, out + skip)


def test_gradient_passes_through_shortcut_when_branch_gradient_is_zero():
    block = ResidualBlock(4, 4, shortcut="identity", preact=True)
    block.zero_init_residual()
    for p in block.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    w = torch.randn_like(x)
    (block(x) * w).sum().backward()
    torch.testing.assert_close(x.grad, w)  # dL/dx = dL/dy * (1 + 0)
    plain = ResidualBlock(4, 4, shortcut="none", preact=True)
    plain.zero_init_residual()
    x2 = x.detach().clone().requires_grad_(True)
    (plain(x2) * w).sum().backward()
    assert torch.count_nonzero(x2.grad) == 0


# --- forward passes against independent references ---
def _tv_state(ours: nn.Module) -> dict[str, torch.Tensor]:
    """Our state_dict under torchvision's names (shortcut.* -> downsample.*)."""
    return {k.replace("shortcut.", "downsample."): v for k, v in ours.state_dict().items()}


@pytest.mark.parametrize("cin,cout,stride", [(16, 16, 1), (16, 32, 2), (8, 8, 2)])
def test_residual_block_equals_torchvision_basic_block(cin, cout, stride):
    """Post-activation ResidualBlock with a projection = torchvision's BasicBlock, in both modes."""
    from torchvision.models import resnet as tv

    torch.manual_seed(0)
    ours = _randomize(ResidualBlock(cin, cout, stride, shortcut="projection"))
    shape_changes = stride != 1 or cin != cout
    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if shape_changes else None
    theirs = tv.BasicBlock(cin, cout, stride, downsample=down)
    theirs.load_state_dict(_tv_state(ours))
    x = torch.randn(4, cin, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))  # training mode: batch statistics, running stats updated
    torch.testing.assert_close(ours.bn1.running_mean, theirs.bn1.running_mean)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_residual_block_branch_can_be_negative_before_the_add():
    """F(x) ends in BN (no ReLU): the pre-add sum is F(x) + x with negative F values, ReLU only after."""
    torch.manual_seed(0)
    block = _randomize(ResidualBlock(8, 8))
    x = torch.rand(4, 8, 6, 6) + 1.0  # positive input: a ReLU on the branch would only ever add
    branch = _branch(block, x)
    assert (branch < -0.5).any()
    y = block(x)
    torch.testing.assert_close(y, F.relu(branch + x))
    assert (y < x - 0.5).any()  # the block can lower an input value, which relu(relu(F) + x) never does


def test_residual_block_without_bn_has_biased_convs_and_no_normalization():
    torch.manual_seed(0)
    block = ResidualBlock(6, 6, bn=False, activation="leaky_relu")
    x = torch.randn(2, 6, 5, 5)
    out = F.leaky_relu(_conv(x, block.conv1), 0.1)
    out = _conv(out, block.conv2)
    torch.testing.assert_close(block(x), F.leaky_relu(out + x, 0.1))
    assert block.last_norm is block.conv2
    block.zero_init_residual()
    assert torch.count_nonzero(block.conv2.weight) == 0 and torch.count_nonzero(block.conv2.bias) == 0
    torch.testing.assert_close(block(x), F.leaky_relu(x, 0.1))


def test_zeropad_block_adds_subsampled_zero_padded_input():
    torch.manual_seed(0)
    block = _randomize(ResidualBlock(4, 8, 2, shortcut="zeropad"))
    x = torch.randn(3, 4, 6, 6)
    skip = torch.cat([x[:, :, ::2, ::2], torch.zeros(3, 4, 3, 3)], dim=1)
    torch.testing.assert_close(block(x), F.relu(_branch(block, x) + skip))


def test_cat_block_concatenates_branch_and_input_then_activates():
    torch.manual_seed(0)
    block = _randomize(ResidualBlock(5, 5, merge="cat", activation="tanh"))
    x = torch.randn(2, 5, 4, 4)
    out = F.conv2d(torch.tanh(_bn(F.conv2d(x, block.conv1.weight, padding=1), block.bn1)), block.conv2.weight, padding=1)
    torch.testing.assert_close(block(x), torch.tanh(torch.cat([_bn(out, block.bn2), x], dim=1)))


def test_preact_zero_init_zeroes_the_last_conv():
    block = ResidualBlock(4, 4, preact=True)
    assert block.last_norm is block.conv2
    block.zero_init_residual()
    assert torch.count_nonzero(block.conv2.weight) == 0
    assert torch.count_nonzero(block.bn2.weight) == 4  # the BN in front of the conv is left alone
    post = ResidualBlock(4, 4)
    assert post.last_norm is post.bn2
    post.zero_init_residual()
    assert torch.count_nonzero(post.bn2.weight) == 0 and torch.count_nonzero(post.bn2.bias) == 0
    assert torch.count_nonzero(post.conv2.weight) > 0


def test_post000_residual_forward_written_out():
    torch.manual_seed(0)
    block = _randomize(Residual(4, 8, use_1x1conv=True, strides=2))
    x = torch.randn(3, 4, 6, 6)
    y = F.relu(_bn(_conv(x, block.conv1), block.bn1))
    y = _bn(_conv(y, block.conv2), block.bn2)
    assert block.conv1.stride == (2, 2) and block.conv3.stride == (2, 2) and block.conv3.bias is not None
    torch.testing.assert_close(block(x), F.relu(y + _conv(x, block.conv3)))
    same = _randomize(Residual(4, 4))
    y = _bn(_conv(F.relu(_bn(_conv(x, same.conv1), same.bn1)), same.conv2), same.bn2)
    torch.testing.assert_close(same(x), F.relu(y + x))


def test_post002_basic_block_forward_written_out():
    torch.manual_seed(0)
    block = _randomize(PostBasicBlock(4, 8, stride=2))
    x = torch.randn(3, 4, 6, 6)
    y = _bn(_conv(F.relu(_bn(_conv(x, block.conv1), block.bn1)), block.conv2), block.bn2)
    skip = _bn(_conv(x, block.shortcut[0]), block.shortcut[1])
    assert block.shortcut[0].stride == (2, 2)
    torch.testing.assert_close(block(x), F.relu(y + skip))
    same = _randomize(PostBasicBlock(4, 4))
    y = _bn(_conv(F.relu(_bn(_conv(x, same.conv1), same.bn1)), same.conv2), same.bn2)
    torch.testing.assert_close(same(x), F.relu(y + x))


@pytest.mark.parametrize("stride", [1, 2])
def test_post001_blocks_equal_torchvision_bottleneck(stride):
    """Post 001's ConvBlock / IdentityBlock = torchvision's Bottleneck (v1.5: stride in the 3x3 conv)."""
    from torchvision.models import resnet as tv

    torch.manual_seed(0)
    conv = _randomize(ConvBlock(32, 16, stride=stride))
    down = nn.Sequential(nn.Conv2d(32, 64, 1, stride, bias=False), nn.BatchNorm2d(64))
    ref = tv.Bottleneck(32, 16, stride, downsample=down)
    ref.load_state_dict(_tv_state(conv))
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(conv(x), ref(x))
    ident = _randomize(IdentityBlock(64), seed=1)
    ref_ident = tv.Bottleneck(64, 16)
    ref_ident.load_state_dict(ident.state_dict())
    y = torch.randn(2, 64, 4, 4)
    torch.testing.assert_close(ident(y), ref_ident(y))
    assert ConvBlock(32, 16).conv2.stride == (2, 2)  # the default stride halves the size


def test_grouped_and_dilated_bottleneck_equals_torchvision():
    from torchvision.models import resnet as tv

    torch.manual_seed(0)
    ours = _randomize(Bottleneck(64, 16, stride=1, groups=4, base_width=32, dilation=2))
    theirs = tv.Bottleneck(64, 16, stride=1, groups=4, base_width=32, dilation=2)
    assert ours.conv2.weight.shape == theirs.conv2.weight.shape == (32, 8, 3, 3)  # width = 16 * 32/64 * 4
    assert ours.conv2.dilation == (2, 2) and ours.conv2.padding == (2, 2) and ours.stride == 1
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 64, 7, 7)
    torch.testing.assert_close(ours(x), theirs(x))
    assert BasicBlock(8, 8, stride=2).stride == 2


def test_block_error_messages_say_what_to_change():
    with pytest.raises(ValueError, match=r"^BasicBlock only supports groups=1 and base_width=64: use Bottleneck$"):
        BasicBlock(8, 8, groups=2)
    with pytest.raises(ValueError, match=r"groups=1 and base_width=64"):
        BasicBlock(8, 8, base_width=32)
    with pytest.raises(ValueError, match=r"^BasicBlock does not support dilation > 1: use Bottleneck$"):
        BasicBlock(8, 8, dilation=2)
    with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
        ResidualBlock(8, 8, 0)
    with pytest.raises(ValueError, match=r"8 -> 16 channels with stride 1: choose shortcut='projection'"):
        ResidualBlock(8, 16)
    with pytest.raises(ValueError, match=(
        r"^an identity shortcut needs matching shapes, but this block maps 8 -> 8 channels with stride 2: "
        r"choose shortcut='projection' \(1x1 conv \+ BN\) or shortcut='zeropad' \(subsample \+ zero channels\)$"
    )):
        ResidualBlock(8, 8, 2)
    with pytest.raises(ValueError, match=r"unknown activation 'swish2': choose one of \['elu', 'gelu'"):
        ResidualBlock(8, 8, activation="swish2")
    with pytest.raises(ValueError, match=r"unknown shortcut 'dense': choose one of \('identity', 'projection'"):
        ResidualBlock(8, 8, shortcut="dense")
    with pytest.raises(ValueError, match=r"unknown merge 'mul': choose 'add' or 'cat'"):
        ResidualBlock(8, 8, merge="mul")
    with pytest.raises(ValueError, match=r"shortcut='none' has no shortcut: use merge='add'"):
        ResidualBlock(8, 8, shortcut="none", merge="cat")
    with pytest.raises(ValueError, match=r"only add channels \(32 -> 16 would drop some\)"):
        ZeroPadShortcut(32, 16)
    with pytest.raises(ValueError, match=r"Residual\(4, 8, strides=1\) changes the shape, so x cannot be added to the branch output: pass use_1x1conv=True$"):
        Residual(4, 8)
    with pytest.raises(ValueError, match=r"Residual\(4, 4, strides=2\)"):
        Residual(4, 4, strides=2)
    with pytest.raises(ValueError, match=r"channels \(64\) must equal filters \* 4 \(128\): pass filters=16 or use a ConvBlock to change the channel count$"):
        IdentityBlock(64, filters=32)
    ident = IdentityBlock(64)
    with pytest.raises(ValueError, match=r"IdentityBlock\(64\) got 32 channels: an identity shortcut cannot change dimensions, put a ConvBlock in front$"):
        ident(torch.randn(1, 32, 4, 4))
    conv = ConvBlock(16, 8)
    with pytest.raises(ValueError, match=r"expects 16 input channels, got 32: a conv block changes the channel count, so the next block must be built with in_channels=32 \(an IdentityBlock\(32\) or a ConvBlock\(32, \.\.\.\)\)"):
        conv(torch.randn(1, 32, 4, 4))


def test_make_activation_and_reprs():
    from resnet_tutorial.blocks import ACTIVATIONS, make_activation

    for name, kind in [("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("gelu", nn.GELU), ("silu", nn.SiLU),
                       ("elu", nn.ELU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("identity", nn.Identity)]:
        assert type(make_activation(name)) is kind
    assert make_activation("leaky_relu").negative_slope == 0.1
    assert not make_activation("relu").inplace  # the branch output is reused by the shortcut
    assert make_activation("relu") is not make_activation("relu")  # a fresh module each time
    assert len(ACTIVATIONS) == 8
    block = ResidualBlock(16, 32, 2, shortcut="zeropad", bn=False, merge="cat", preact=True, activation="elu")
    assert block.extra_repr() == (
        "16 -> 64, stride=2, shortcut='zeropad', bn=False, merge='cat', preact=True, activation='elu'"
    )
    assert block.shortcut.extra_repr() == "16, 32, stride=2"
    assert (block.in_channels, block.branch_channels, block.out_channels) == (16, 32, 64)
    assert isinstance(block.act1, nn.ELU) and isinstance(block.act2, nn.ELU)
    assert ZeroPadShortcut(8, 8).forward(torch.ones(1, 8, 3, 3)).shape == (1, 8, 3, 3)


def test_conv_helpers_build_the_documented_layers():
    from resnet_tutorial.blocks import conv1x1, conv3x3

    c = conv3x3(4, 8, stride=2, groups=2, dilation=3, bias=True)
    assert (c.kernel_size, c.stride, c.padding, c.dilation, c.groups) == ((3, 3), (2, 2), (3, 3), (3, 3), 2)
    assert c.bias is not None and conv3x3(4, 8).bias is None and conv3x3(4, 8).padding == (1, 1)
    d = conv1x1(4, 8, stride=2)
    assert (d.kernel_size, d.stride, d.padding, d.bias) == ((1, 1), (2, 2), (0, 0), None)
    assert conv1x1(4, 8, bias=True).bias is not None


def test_torchvision_blocks_use_the_given_norm_layer():
    def norm(c: int) -> nn.Module:
        return nn.GroupNorm(2, c)

    basic = BasicBlock(8, 8, norm_layer=norm)
    bottle = Bottleneck(16, 4, norm_layer=norm)
    assert isinstance(basic.bn1, nn.GroupNorm) and isinstance(basic.bn2, nn.GroupNorm)
    assert all(isinstance(getattr(bottle, f"bn{i}"), nn.GroupNorm) for i in (1, 2, 3))
    assert isinstance(BasicBlock(8, 8).bn1, nn.BatchNorm2d) and isinstance(Bottleneck(16, 4).bn3, nn.BatchNorm2d)


def test_torchvision_basic_block_with_downsample_and_post002_channel_change():
    from torchvision.models import resnet as tv

    torch.manual_seed(0)
    ds = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
    ours = _randomize(BasicBlock(8, 16, 2, downsample=ds))
    theirs = tv.BasicBlock(8, 16, 2, downsample=nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16)))
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(ours(x), theirs(x))
    widen = PostBasicBlock(4, 8)  # channels change at stride 1: still a projection
    assert [type(m) for m in widen.shortcut] == [nn.Conv2d, nn.BatchNorm2d] and widen.shortcut[0].stride == (1, 1)


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_torchvision_blocks_print_exactly_like_torchvision(kind):
    """Same submodules in the same order with the same settings, down to the in-place ReLU."""
    from torchvision.models import resnet as tv

    def down() -> nn.Module:
        return nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))

    if kind == "basic":
        ours, theirs = BasicBlock(8, 16, 2, downsample=down()), tv.BasicBlock(8, 16, 2, downsample=down())
    else:
        ours = Bottleneck(8, 4, 2, downsample=down(), groups=2, base_width=128)
        theirs = tv.Bottleneck(8, 4, 2, downsample=down(), groups=2, base_width=128)
    assert "(relu): ReLU(inplace=True)" in repr(theirs)
    assert repr(ours) == repr(theirs)
