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


# --- defaults, edge sizes, dtypes and messages (each pins one detail of the promise "same as torch") ---
def test_functional_defaults_are_torchs():
    x = _batches()[0]
    # training=True and momentum=0.1 by default, as in torch.nn.functional.batch_norm
    torch.testing.assert_close(batch_norm_2d(x), torch.nn.functional.batch_norm(x, None, None, training=True), **TOL)
    rm_a, rv_a = torch.zeros(3, dtype=DT), torch.ones(3, dtype=DT)
    rm_b, rv_b = rm_a.clone(), rv_a.clone()
    batch_norm_2d(x, rm_a, rv_a)
    torch.nn.functional.batch_norm(x, rm_b, rv_b, training=True)
    torch.testing.assert_close(rm_a, rm_b, **TOL)
    torch.testing.assert_close(rv_a, rv_b, **TOL)


def test_two_values_per_channel_is_enough_in_training_mode():
    x = torch.tensor([[[[1.0]], [[5.0]]], [[[3.0]], [[-1.0]]]], dtype=DT)  # N=2, C=2, 1x1: m = 2
    ours, ref = _pair(2)
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    torch.testing.assert_close(ours.running_var, ref.running_var, **TOL)
    # by hand: channel 0 holds 1 and 3 -> mean 2, biased var 1, unbiased var 2
    torch.testing.assert_close(batch_norm_2d(x)[:, 0].flatten(), torch.tensor([-1.0, 1.0], dtype=DT) / (1 + 1e-5) ** 0.5)


def test_eps_is_used_and_must_be_positive():
    ours, ref = _pair(eps=0.5)
    x = _batches()[0] * 0.1  # small variance: eps matters
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    with pytest.raises(ValueError, match=r"eps must be > 0, got 0"):
        BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match=r"eps must be > 0 \(it keeps the division finite\), got 0"):
        batch_norm_2d(x, eps=0)


def test_momentum_zero_keeps_the_running_statistics():
    bn = BatchNorm2d(3, momentum=0.0).to(DT)
    bn(_batches()[0])
    assert torch.equal(bn.running_mean, torch.zeros(3, dtype=DT)) and torch.equal(bn.running_var, torch.ones(3, dtype=DT))
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("training", [True, False])
def test_output_keeps_a_low_precision_input_dtype_like_torch(training):
    """float32 parameters and statistics, bfloat16 input (mixed precision): the output stays bfloat16."""
    ours, ref = BatchNorm2d(3).train(training), nn.BatchNorm2d(3).train(training)
    x = torch.randn(2, 3, 4, 4).to(torch.bfloat16)
    y, y_ref = ours(x), ref(x)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y, y_ref, atol=0.05, rtol=0.02)
    assert batch_norm_2d(x, torch.zeros(3), torch.ones(3), training=False).dtype == torch.bfloat16


def test_buffers_and_repr_match_torch():
    ours, ref = BatchNorm2d(4, eps=1e-3, momentum=0.2), nn.BatchNorm2d(4, eps=1e-3, momentum=0.2)
    # torch >= 2.14 also prints its newer bias= switch, which this re-implementation does not have
    assert ours.extra_repr() == "4, eps=0.001, momentum=0.2, affine=True, track_running_stats=True"
    assert ref.extra_repr().replace(" bias=True,", "") == ours.extra_repr()
    assert ours.num_batches_tracked.dtype == ref.num_batches_tracked.dtype == torch.long
    bare = BatchNorm2d(4, affine=False, track_running_stats=False)
    assert bare.extra_repr() == "4, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False"
    assert bare.weight is None and bare.bias is None
    assert bare.running_mean is None and bare.running_var is None and bare.num_batches_tracked is None
    assert dict(bare.named_buffers()) == {} and dict(bare.named_parameters()) == {}


def test_reset_running_stats_and_parameters():
    ours, _ = _pair()
    for x in _batches():
        ours(x)
    ours.reset_running_stats()
    assert torch.equal(ours.running_mean, torch.zeros(3, dtype=DT))
    assert torch.equal(ours.running_var, torch.ones(3, dtype=DT)) and int(ours.num_batches_tracked) == 0
    assert not torch.equal(ours.weight, torch.ones(3, dtype=DT))  # parameters are kept
    ours(_batches()[0])
    ours.reset_parameters()
    assert torch.equal(ours.weight, torch.ones(3, dtype=DT)) and torch.equal(ours.bias, torch.zeros(3, dtype=DT))
    assert torch.equal(ours.running_mean, torch.zeros(3, dtype=DT)) and int(ours.num_batches_tracked) == 0
    BatchNorm2d(2, affine=False, track_running_stats=False).reset_parameters()  # nothing to reset: no error


def test_error_messages_name_the_fix():
    bn = BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d expects a tensor, got list"):
        bn([[1.0]])
    with pytest.raises(ValueError, match=r"BatchNorm2d expects a 4-D input .* got shape \(3, 5, 5\); add a batch dimension"):
        bn(torch.randn(3, 5, 5))
    with pytest.raises(ValueError, match=r"batch_norm_2d expects a 4-D input"):
        batch_norm_2d(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"got shape \(3, 5\)"):
        batch_norm_2d(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"input has 4 \(shape \(2, 4, 5, 6\)\); build it with num_features=4"):
        bn(torch.randn(2, 4, 5, 6))
    with pytest.raises(ValueError, match=r"BatchNorm2d needs a floating-point input, got dtype torch.int64; use x.float\(\)"):
        bn(torch.ones(2, 3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"BatchNorm2d in training mode needs more than 1 value per channel, got input shape \(1, 3, 1, 1\)"):
        bn(torch.randn(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"batch norm in training mode needs more than 1 value per channel, got input shape \(1, 3, 1, 1\); use a larger batch or call model.eval\(\)"):
        batch_norm_2d(torch.randn(1, 3, 1, 1))
    x = torch.randn(2, 3, 2, 2)
    for name in ("running_mean", "running_var", "weight", "bias"):
        with pytest.raises(ValueError, match=rf"batch_norm_2d: {name} must have shape \(3,\) for 3 channels, got \(4,\)"):
            batch_norm_2d(x, **{name: torch.ones(4)}, training=False if name.startswith("running") else True)
    for given in ("running_mean", "running_var"):
        with pytest.raises(ValueError, match=r"^give both running_mean and running_var, or neither$"):
            batch_norm_2d(x, **{given: torch.ones(3)}, training=True)
        with pytest.raises(ValueError, match=r"^batch_norm_2d with training=False needs running_mean and running_var$"):
            batch_norm_2d(x, **{given: torch.ones(3)}, training=False)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] or None \(cumulative average\), got -0.1"):
        BatchNorm2d(3, momentum=-0.1)
    with pytest.raises(ValueError, match=r"num_features must be a positive int \(the channel count\), got 2.0"):
        BatchNorm2d(2.0)


# --- recompute_bn_stats ---
def _stats_by_hand(batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The cumulative average over batches (each batch weighs the same) of mean and unbiased variance."""
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
    varis = torch.stack([b.transpose(0, 1).reshape(b.shape[1], -1).var(dim=1, unbiased=True) for b in batches])
    return means.mean(0), varis.mean(0)


def test_recompute_bn_stats_is_the_plain_average_over_the_data():
    from resnet_tutorial.bn import recompute_bn_stats

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, momentum=0.3), BatchNorm2d(3, momentum=0.2)).to(DT)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    g = torch.Generator().manual_seed(2)
    data = torch.randn(130, 2, 3, 3, generator=g, dtype=DT) * 2 + 1
    out = recompute_bn_stats(model, data)  # default batch_size=64: batches of 64, 64 and 2
    assert out is model and not model.training and not any(m.training for m in model.modules())
    assert (model[1].momentum, model[2].momentum) == (0.3, 0.2)  # restored
    with torch.no_grad():
        feats = model[0](data)
    mean, var = _stats_by_hand([feats[:64], feats[64:128], feats[128:]])
    torch.testing.assert_close(model[1].running_mean, mean, **TOL)
    torch.testing.assert_close(model[1].running_var, var, **TOL)
    assert int(model[1].num_batches_tracked) == 3
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v), k


def test_recompute_bn_stats_takes_batches_and_pairs():
    from resnet_tutorial.bn import recompute_bn_stats

    model = BatchNorm2d(2).to(DT)
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(4, 2, 2, 2, generator=g, dtype=DT) + i for i in range(3)]
    recompute_bn_stats(model, [(x, torch.zeros(4, dtype=torch.long)) for x in xs])
    mean, var = _stats_by_hand(xs)
    torch.testing.assert_close(model.running_mean, mean, **TOL)
    torch.testing.assert_close(model.running_var, var, **TOL)
    recompute_bn_stats(model, torch.cat(xs), batch_size=4)  # a tensor cut into the same batches
    torch.testing.assert_close(model.running_mean, mean, **TOL)
    with pytest.raises(ValueError, match=r"^recompute_bn_stats: the model has no batch-norm layer$"):
        recompute_bn_stats(nn.Linear(2, 2), torch.randn(3, 2))


def test_recompute_bn_stats_restores_momentum_when_the_forward_fails():
    from resnet_tutorial.bn import recompute_bn_stats

    model = nn.Sequential(BatchNorm2d(2, momentum=0.4))
    with pytest.raises(ValueError, match="normalizes 2 channels"):
        recompute_bn_stats(model, torch.randn(4, 3, 2, 2))
    assert model[0].momentum == 0.4
