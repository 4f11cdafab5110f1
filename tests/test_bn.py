"""BatchNorm2d from its formulas matches torch.nn.BatchNorm2d exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial.bn import BatchNorm2d, batch_norm_2d, batch_norm_forward

DT = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)


def _pair(c: int = 3, **kw) -> tuple[BatchNorm2d, nn.BatchNorm2d]:
    torch.manual_seed(0)
    ours = BatchNorm2d(c, **kw).to(DT)
    ref = nn.BatchNorm2d(c, **kw).to(DT)
    if ours.affine:
        with torch.no_grad():
            ours.weight.copy_(torch.rand(c, dtype=DT) + 0.5)
            ours.bias.copy_(torch.randn(c, dtype=DT))
        ref.load_state_dict(ours.state_dict())
    return ours, ref


def _batches(n: int = 4, c: int = 3, steps: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, c, 5, 6, generator=g, dtype=DT) * 3 + 2 for _ in range(steps)]


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [True, False])
def test_train_mode_outputs_running_stats_and_grads_match_torch(momentum, affine):
    ours, ref = _pair(momentum=momentum, affine=affine)
    for x in _batches():
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        ya, yb = ours(xa), ref(xb)
        torch.testing.assert_close(ya, yb, **TOL)
        w = torch.randn_like(ya)  # a non-trivial upstream gradient
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, **TOL)
        if affine:
            torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **TOL)
            torch.testing.assert_close(ours.bias.grad, ref.bias.grad, **TOL)
            ours.zero_grad(), ref.zero_grad()
        torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL)
        torch.testing.assert_close(ours.running_var, ref.running_var, **TOL)
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)
    # the running statistics really moved away from their start values
    assert not torch.allclose(ours.running_mean, torch.zeros(3, dtype=DT))
    assert not torch.allclose(ours.running_var, torch.ones(3, dtype=DT))


def test_running_var_uses_unbiased_and_normalization_uses_biased_variance():
    bn = BatchNorm2d(1, momentum=1.0, affine=False).to(DT)
    x = torch.tensor([1.0, 2.0, 4.0, 9.0], dtype=DT).view(4, 1, 1, 1)
    y = bn(x)
    torch.testing.assert_close(bn.running_var, x.flatten().var(unbiased=True).view(1))
    torch.testing.assert_close(bn.running_mean, x.flatten().mean().view(1))
    expected = (x - x.mean()) / torch.sqrt(x.flatten().var(unbiased=False) + bn.eps)
    torch.testing.assert_close(y, expected)


def test_cumulative_average_with_momentum_none():
    bn = BatchNorm2d(2, momentum=None).to(DT)
    xs = _batches(c=2, steps=4)
    for x in xs:
        bn(x)
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in xs])
    torch.testing.assert_close(bn.running_mean, means.mean(0), **TOL)


def test_eval_mode_uses_running_stats_and_matches_torch():
    ours, ref = _pair()
    for x in _batches():
        ours(x), ref(x)
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 4, 4, dtype=DT, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ya, yb = ours(x), ref(x2)
    torch.testing.assert_close(ya, yb, **TOL)
    ya.sum().backward(), yb.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, **TOL)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **TOL)
    # eval mode does not touch the running estimates and one sample does not depend on the batch
    before = ours.running_mean.clone()
    single = ours(x[:1].detach())
    torch.testing.assert_close(single, ya[:1].detach(), **TOL)
    torch.testing.assert_close(ours.running_mean, before)


def test_no_running_stats_uses_batch_stats_in_eval_like_torch():
    ours, ref = _pair(track_running_stats=False)
    assert ours.running_mean is None and set(ours.state_dict()) == set(ref.state_dict())
    ours.eval(), ref.eval()
    x = _batches()[0]
    torch.testing.assert_close(ours(x), ref(x), **TOL)


def test_state_dict_round_trip_both_ways():
    ours, ref = _pair()
    for x in _batches():
        ref(x)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())  # torch -> ours
    ours.eval(), ref.eval()
    x = torch.randn(3, 3, 2, 2, dtype=DT)
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    fresh = nn.BatchNorm2d(3).to(DT).eval()
    fresh.load_state_dict(ours.state_dict())  # ours -> torch
    torch.testing.assert_close(fresh(x), ours(x), **TOL)
    assert int(fresh.num_batches_tracked) == 3


def test_drop_in_replacement_inside_a_network():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).to(DT)
    ours = nn.Sequential(nn.Conv2d(2, 4, 3), BatchNorm2d(4), nn.ReLU()).to(DT)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 2, 6, 6, dtype=DT)
    torch.testing.assert_close(ours(x), ref(x), **TOL)


def test_gradcheck_float64_train_and_eval():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 3, 3, dtype=DT, requires_grad=True)
    w = torch.rand(2, dtype=DT, requires_grad=True)
    b = torch.randn(2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: batch_norm_2d(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = torch.randn(2, dtype=DT), torch.rand(2, dtype=DT) + 0.5
    assert torch.autograd.gradcheck(lambda x, w, b: batch_norm_2d(x, rm, rv, w, b, training=False), (x, w, b))


def test_functional_matches_torch_functional():
    x = _batches()[0]
    rm_a, rv_a = torch.zeros(3, dtype=DT), torch.ones(3, dtype=DT)
    rm_b, rv_b = rm_a.clone(), rv_a.clone()
    ya = batch_norm_forward(x, rm_a, rv_a, training=True, momentum=0.3)
    yb = torch.nn.functional.batch_norm(x, rm_b, rv_b, training=True, momentum=0.3)
    torch.testing.assert_close(ya, yb, **TOL)
    torch.testing.assert_close(rm_a, rm_b, **TOL)
    torch.testing.assert_close(rv_a, rv_b, **TOL)


def test_affine_can_undo_the_normalization():
    x = _batches(steps=1)[0]
    mu = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    bn = BatchNorm2d(3).to(DT)
    with torch.no_grad():
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mu)
    torch.testing.assert_close(bn(x), x, **TOL)


def test_bad_inputs_raise_clear_errors():
    bn = BatchNorm2d(3)
    with pytest.raises(ValueError, match="4-D"):
        bn(torch.randn(3, 5, 5))
    with pytest.raises(ValueError, match="normalizes 3 channels but the input has 4"):
        bn(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(1, 3, 1, 1))
    assert int(bn.num_batches_tracked) == 0  # failed calls do not count
    bn.eval()
    assert bn(torch.randn(1, 3, 1, 1)).shape == (1, 3, 1, 1)  # eval mode is fine with one value
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm2d(3, momentum=2.0)
    with pytest.raises(ValueError, match="needs running_mean"):
        batch_norm_2d(torch.randn(2, 3, 2, 2), training=False)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        batch_norm_2d(torch.randn(2, 3, 2, 2), weight=torch.ones(4))
