"""Residual blocks: shapes, shortcut kinds, BN switch, add vs cat, zero-init identity."""

import pytest
import torch
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
    # output is exactly act(F(x)): nothing of x is added
    torch.testing.assert_close(plain(x), torch.relu(plain.residual(x)))
    res = ResidualBlock(8, 8, shortcut="identity")
    res.load_state_dict(plain.state_dict())
    torch.testing.assert_close(res(x), torch.relu(res.residual(x) + x))
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
    expected = block.residual(x) + block.shortcut(x)
    torch.testing.assert_close(y, expected)


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
