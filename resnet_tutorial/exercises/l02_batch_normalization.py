"""Lesson 02's exercises: BatchNorm's forward pass in training and eval mode, its running statistics,
the γ and β that undo the normalization, and BN folded into the convolution before it."""

from __future__ import annotations

import torch

from ..bn import batch_norm_2d
from .catalogue import Case, Exercise, Mistake, register
from .cases import randn, tensor

_C = (1, -1, 1, 1)  # a per-channel vector, broadcast over N, H, W


def _bn_dims(flags: frozenset) -> tuple[int, ...]:
    if "batch_only" in flags:
        return (0,)
    if "per_image" in flags:
        return (2, 3)
    if "layer_norm" in flags:
        return (1, 2, 3)
    if "all_dims" in flags:
        return (0, 1, 2, 3)
    return (0, 2, 3)


def _normalized(x, mean, var, eps, flags):
    if "no_eps" in flags:
        denom = var.sqrt()
    elif "no_sqrt" in flags:
        denom = var + eps
    elif "eps_outside" in flags:
        denom = var.sqrt() + eps
    else:
        denom = torch.sqrt(var + eps)
    return (x - mean) / denom


def _affine(x_hat, gamma, beta, flags, reshape=True):
    if "no_affine" in flags:
        return x_hat
    g, b = (beta, gamma) if "affine_swapped" in flags else (gamma, beta)
    return g.view(_C) * x_hat + b.view(_C) if reshape else g * x_hat + b


_DIAGNOSES = {
    "unbiased": "You normalized with the unbiased variance (dividing by m − 1). In training mode BatchNorm divides by "
                "m = N·H·W, the exact variance of the values in hand: x.var(dim=(0, 2, 3), unbiased=False) (or "
                "mean of the squared deviations). The unbiased one belongs in the *running* variance only.",
    "eps_outside": "ε is outside the square root: you divided by √σ² + ε instead of √(σ² + ε). It only shows when a "
                   "channel is almost constant (σ² close to ε), which is exactly when ε is there to help.",
    "batch_only": "Your statistics are taken over the batch dimension only (one mean per channel *and pixel*). "
                  "BatchNorm2d uses all N·H·W values of a channel: reduce over dims (0, 2, 3).",
    "per_image": "Your statistics are taken per image (over H and W only): that is instance normalization. "
                 "BatchNorm2d shares one mean and variance per channel across the batch: reduce over dims (0, 2, 3).",
    "layer_norm": "Your statistics are taken per image over all channels (dims 1, 2, 3): that is layer "
                  "normalization. BatchNorm2d normalizes each channel over the batch: reduce over dims (0, 2, 3).",
    "all_dims": "You took one mean and one variance of the whole batch, all channels together. BatchNorm2d keeps one "
                "mean and variance *per channel*: reduce over dims (0, 2, 3) only.",
    "no_affine": "γ and β are missing: after normalizing, scale by gamma and shift by beta, reshaped to "
                 "(1, C, 1, 1) so that they broadcast over N, H and W.",
    "no_eps": "ε is missing: divide by √(σ² + ε), not by σ. Without it a near-constant channel (σ² ≈ 0) is blown up "
              "(or divided by zero).",
    "no_sqrt": "You divided by the variance (plus ε) instead of the standard deviation: x̂ = (x − μ) / √(σ² + ε).",
    "affine_swapped": "γ and β are swapped: γ (gamma) scales, β (beta) shifts: gamma · x̂ + beta.",
    "affine_not_reshaped": "gamma and beta of shape (C,) were used as they are: broadcasting lines them up with the "
                           "*last* dimension (W), not the channels. Reshape them: gamma.view(1, -1, 1, 1).",
    "no_keepdim": "The statistics lost their reduced dimensions (no keepdim=True), so a (C,) mean broadcasts against "
                  "the last dimension W instead of the channels. Use keepdim=True, or .view(1, -1, 1, 1).",
    "affine_first": "γ and β were applied before normalizing, so the normalization removes them again: normalize "
                    "first, x̂ = (x − μ) / √(σ² + ε), then gamma · x̂ + beta.",
    "eps_ignored": "The caller's eps is ignored: you typed 1e-5 where the parameter eps belongs (the case passes "
                   "eps=0.1).",
}


# --------------------------------------------------------------------------- bn_forward_train
def bn_forward_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm2d in training mode: batch mean and biased variance per channel over N, H, W."""
    return batch_norm_2d(x, None, None, gamma, beta, training=True, eps=eps)


def _bn_train_family(x, gamma, beta, eps=1e-5, *, flags=frozenset()):
    if "affine_first" in flags:
        x = gamma.view(_C) * x + beta.view(_C)
        flags = flags | {"no_affine"}
    dims, keep = _bn_dims(flags), "no_keepdim" not in flags
    mean = x.mean(dim=dims, keepdim=keep)
    var = x.var(dim=dims, keepdim=keep, correction=1 if "unbiased" in flags else 0)
    x_hat = _normalized(x, mean, var, 1e-5 if "eps_ignored" in flags else eps, flags)
    return _affine(x_hat, gamma, beta, flags, reshape="affine_not_reshaped" not in flags)


def _near_constant(seed: int, n: int = 6, size: int = 3) -> torch.Tensor:
    x = randn(seed, n, 2, size, size)
    x[:, 0] = 5 + 1e-3 * x[:, 0]
    return x


register(Exercise(
    "bn_forward_train", "02", "BatchNorm2d forward pass, training mode", bn_forward_train,
    cases=[
        Case("odd sizes, a batch of 4 with 3 channels of 5×7 pixels, γ and β not 1 and 0",
             lambda: ((randn(0, 4, 3, 5, 7) * 3 + 2, tensor([0.5, 2.0, -1.0]), tensor([1.0, -2.0, 0.5])), {})),
        Case("a near-constant channel (values 5 ± 0.001), where ε matters",
             lambda: ((_near_constant(1), tensor([1.5, 1.0]), tensor([0.0, 0.5])), {})),
        Case("a batch of 2 images of 1×1 pixels, so m = N·H·W = 2",
             lambda: ((randn(2, 2, 4, 1, 1) * 2, tensor([1.0, 2.0, 0.5, 1.0]), tensor([0.0, 1.0, 0.0, -1.0])), {})),
        Case("ε = 0.1 given by the caller", lambda: ((randn(3, 3, 2, 2, 2), tensor([1.0, 3.0]), tensor([0.5, 0.0])),
                                                      {"eps": 0.1})),
        Case("a float32 batch (the answer must stay float32)",
             lambda: ((randn(4, 5, 3, 4, 4, dtype=torch.float32), torch.ones(3), torch.zeros(3)), {})),
    ],
    mistakes=[Mistake(n, _DIAGNOSES[n]) for n in (
        "unbiased", "eps_outside", "batch_only", "per_image", "layer_norm", "all_dims", "no_affine", "no_eps",
        "no_sqrt", "affine_swapped", "affine_not_reshaped", "no_keepdim", "eps_ignored", "affine_first")],
    hints=["Per channel c, use all N·H·W values x[:, c]: mean = x.mean(dim=(0, 2, 3), keepdim=True).",
           "The variance divides by m, not m − 1: x.var(dim=(0, 2, 3), keepdim=True, unbiased=False).",
           "x_hat = (x − mean) / sqrt(var + eps); then gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)."],
    family=_bn_train_family, keeps_inputs=True,
))


# --------------------------------------------------------------------------- bn_running_update
def bn_running_update(running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor,
                      momentum: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The running statistics after one training batch ``x``: ``(new_running_mean, new_running_var)``."""
    rm, rv = running_mean.clone(), running_var.clone()
    batch_norm_2d(x, rm, rv, training=True, momentum=momentum)
    return rm, rv


def _running_family(running_mean, running_var, x, momentum=0.1, *, flags=frozenset()):
    dims = _bn_dims(flags)
    mean = x.mean(dim=dims)
    spread = x.std if "std" in flags else x.var
    var = spread(dim=dims, correction=0 if "biased_var" in flags else 1)
    if "replaced" in flags:
        return mean, var
    old, new = (momentum, 1 - momentum) if "momentum_swapped" in flags else (1 - momentum, momentum)
    if "mean_only" in flags:
        return old * running_mean + new * mean
    return old * running_mean + new * mean, old * running_var + new * var


register(Exercise(
    "bn_running_update", "02", "BatchNorm's running statistics", bn_running_update,
    cases=[
        Case("fresh statistics (mean 0, variance 1), a batch of 8 with 3 channels of 4×4, momentum 0.1",
             lambda: ((torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                       randn(0, 8, 3, 4, 4) * 2 + 1), {})),
        Case("a batch of 2 images of 1×1 pixels (m = 2), running statistics from earlier batches",
             lambda: ((tensor([0.5, -1.0]), tensor([2.0, 0.5]), randn(1, 2, 2, 1, 1) * 3), {})),
        Case("momentum 0.3", lambda: ((tensor([1.0, 2.0, 3.0, 4.0]), tensor([1.0, 1.0, 2.0, 2.0]),
                                       randn(2, 5, 4, 3, 2) + 1), {"momentum": 0.3})),
    ],
    mistakes=[
        Mistake("momentum_swapped", "The momentum works the wrong way round: in PyTorch momentum is the weight of "
                                    "the *new* batch, new = (1 − momentum)·old + momentum·batch (Keras uses the "
                                    "opposite convention)."),
        Mistake("biased_var", "The running variance uses the biased batch variance. It estimates the variance of "
                              "the whole population, so it uses the unbiased m/(m − 1)·σ² (x.var(..., unbiased=True)); "
                              "only the normalization itself uses the biased one."),
        Mistake("replaced", "You replaced the running statistics by the batch's own: they are an exponential "
                            "average, (1 − momentum)·old + momentum·batch, so one batch moves them only a little."),
        Mistake("std", "You averaged the standard deviation into running_var: it keeps a *variance*, "
                       "x.var(dim=(0, 2, 3), unbiased=True)."),
        Mistake("batch_only", "The batch statistics are taken over dim 0 only (one per channel and pixel): reduce "
                              "over dims (0, 2, 3) for one mean and variance per channel, shape (C,)."),
        Mistake("all_dims", "You took one mean and variance for all channels together: BatchNorm keeps one per "
                            "channel, reducing over dims (0, 2, 3)."),
        Mistake("mean_only", "Your function returns one tensor, the new running mean: return both statistics, "
                             "(new_running_mean, new_running_var)."),
    ],
    hints=["The batch's statistics per channel: reduce over dims (0, 2, 3).",
           "Running mean: (1 − momentum) · running_mean + momentum · batch mean.",
           "Running variance: the same average, with the *unbiased* batch variance (divide by m − 1)."],
    family=_running_family, rtol=1e-6, atol=1e-9,
))


# --------------------------------------------------------------------------- bn_forward_eval
def bn_forward_eval(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, gamma: torch.Tensor,
                    beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm2d in eval mode: the running statistics replace the batch's."""
    return batch_norm_2d(x, running_mean, running_var, gamma, beta, training=False, eps=eps)


def _eval_family(x, running_mean, running_var, gamma, beta, eps=1e-5, *, flags=frozenset()):
    reshape = "not_reshaped" not in flags
    if "batch_stats" in flags:
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction=0)
    else:
        mean, var = running_mean, running_var
    if "batch_mean" in flags:
        mean = x.mean(dim=(0, 2, 3))
    if reshape:
        mean, var = mean.view(_C), var.view(_C)
    x_hat = _normalized(x, mean, var, 1e-5 if "eps_ignored" in flags else eps, flags)
    return _affine(x_hat, gamma, beta, flags, reshape=reshape)


register(Exercise(
    "bn_forward_eval", "02", "BatchNorm2d forward pass, eval mode", bn_forward_eval,
    cases=[
        Case("a batch of 4 whose own statistics are far from the running ones",
             lambda: ((randn(0, 4, 3, 3, 3) * 2 + 1, tensor([0.5, -1.0, 2.0]), tensor([0.25, 4.0, 1.0]),
                       tensor([1.0, 2.0, 0.5]), tensor([0.0, 1.0, -1.0])), {})),
        Case("a single image (batch of 1): eval mode must work for it",
             lambda: ((randn(1, 1, 2, 2, 3), tensor([0.0, 1.0]), tensor([1.0, 2.0]), tensor([1.0, 1.0]),
                       tensor([0.0, 0.0])), {})),
        Case("a tiny running variance (1e-6), where ε matters",
             lambda: ((randn(2, 3, 2, 2, 2) * 1e-3, tensor([0.0, 0.0]), tensor([1e-6, 1.0]), tensor([1.0, 1.0]),
                       tensor([0.5, 0.0])), {})),
        Case("ε = 0.01 given by the caller",
             lambda: ((randn(3, 2, 3, 2, 2), tensor([0.2, -0.3, 0.0]), tensor([0.02, 0.5, 1.5]),
                       tensor([2.0, 1.0, 0.5]), tensor([0.0, -1.0, 1.0])), {"eps": 0.01})),
    ],
    mistakes=[
        Mistake("batch_stats", "You normalized with the batch's own mean and variance, as in training mode. In eval "
                               "mode BN uses running_mean and running_var, so one image's output no longer depends "
                               "on the rest of its batch."),
        Mistake("batch_mean", "You subtracted the batch's own mean: in eval mode both statistics come from the running "
                              "estimates, x̂ = (x − running_mean) / √(running_var + ε)."),
        Mistake("eps_outside", _DIAGNOSES["eps_outside"]),
        Mistake("no_sqrt", _DIAGNOSES["no_sqrt"]),
        Mistake("no_eps", _DIAGNOSES["no_eps"]),
        Mistake("no_affine", _DIAGNOSES["no_affine"]),
        Mistake("affine_swapped", _DIAGNOSES["affine_swapped"]),
        Mistake("not_reshaped", "The per-channel vectors (running_mean, running_var, gamma, beta) were used as they "
                                "are: broadcasting lines them up with the *last* dimension (W), not the channels. "
                                "Reshape each with .view(1, -1, 1, 1)."),
        Mistake("eps_ignored", "The caller's eps is ignored: you typed 1e-5 where the parameter eps belongs (the case "
                               "passes eps=0.01)."),
    ],
    hints=["Nothing is computed from x except the normalization itself: use running_mean and running_var.",
           "Reshape every per-channel vector to (1, C, 1, 1) so it broadcasts over N, H, W.",
           "gamma * (x − running_mean) / sqrt(running_var + eps) + beta, all reshaped."],
    family=_eval_family, keeps_inputs=True,
))


# --------------------------------------------------------------------------- bn_identity_params
def bn_identity_params(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gamma, beta)`` that make training-mode BN give back ``x`` itself: √(σ²_B + ε) and μ_B per channel."""
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction=0)
    return torch.sqrt(var + eps), mean


def _identity_family(x, eps=1e-5, *, flags=frozenset()):
    keep = "keepdim" in flags
    mean = x.mean(dim=(0, 2, 3), keepdim=keep)
    var = x.var(dim=(0, 2, 3), keepdim=keep, correction=1 if "unbiased" in flags else 0)
    scale = var + eps if "no_sqrt" in flags else (var.sqrt() if "no_eps" in flags else torch.sqrt(var + eps))
    if "inverse" in flags:
        return 1 / scale, -mean / scale
    if "initial_values" in flags:
        return torch.ones_like(scale), torch.zeros_like(mean)
    return (mean, scale) if "swapped" in flags else (scale, mean)


def _channels_near_constant(seed: int) -> torch.Tensor:
    return randn(seed, 8, 2, 3, 3) * 1e-3 + tensor([1.0, -2.0]).view(1, 2, 1, 1)


register(Exercise(
    "bn_identity_params", "02", "γ and β that undo the normalization", bn_identity_params,
    cases=[
        Case("a batch of 16 with 3 channels of 6×6, mean 5 and std 3", lambda: ((randn(0, 16, 3, 6, 6) * 3 + 5,), {})),
        Case("near-constant channels (std 0.001), where ε matters", lambda: ((_channels_near_constant(1),), {})),
        Case("a batch of 2 images of 1×1 pixels", lambda: ((randn(2, 2, 3, 1, 1),), {})),
    ],
    mistakes=[
        Mistake("no_eps", "γ must be √(σ² + ε), not σ: BN divides by √(σ² + ε), so only that undoes it exactly "
                          "(the difference shows on near-constant channels)."),
        Mistake("unbiased", "You used the unbiased variance: BN normalized with the biased one (divide by m), so "
                            "γ = √(σ²_B + ε) with the biased σ²_B."),
        Mistake("swapped", "γ and β are swapped: γ (the scale) must be the standard deviation √(σ² + ε) and β "
                           "(the shift) the mean."),
        Mistake("no_sqrt", "γ is the variance (plus ε), not its square root: BN divided by √(σ² + ε)."),
        Mistake("inverse", "These are the normalization's own scale and shift (1/σ and −μ/σ). γ and β must *undo* "
                           "it: γ·x̂ + β = x gives γ = √(σ² + ε) and β = μ."),
        Mistake("initial_values", "γ = 1 and β = 0 are BN's initial values: with them BN *normalizes* the batch "
                                  "(mean 0, variance 1 per channel). To give x back, γ and β must undo that: "
                                  "γ = √(σ² + ε), β = μ, per channel."),
        Mistake("keepdim", "γ and β must be vectors of shape (C,), like nn.BatchNorm2d's weight and bias: reduce "
                           "without keepdim=True (or flatten them)."),
    ],
    hints=["BN computed x_hat = (x − μ) / √(σ² + ε). Solve γ·x_hat + β = x for γ and β.",
           "Both are per-channel vectors of shape (C,): reduce over dims (0, 2, 3), biased variance."],
    family=_identity_family, rtol=1e-6, atol=1e-10, keeps_inputs=True,
))


# --------------------------------------------------------------------------- fold_bn_into_conv
def fold_bn_into_conv(weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor,
                      gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of one convolution that computes conv → BN (eval mode): BN folded into the conv."""
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), scale * (bias - running_mean) + beta


def _fold_family(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5, *, flags=frozenset()):
    if "no_eps" in flags:
        scale = gamma / running_var.sqrt()
    elif "no_sqrt" in flags:
        scale = gamma / (running_var + eps)
    else:
        scale = gamma / torch.sqrt(running_var + eps)
    new_weight = weight if "weight_not_scaled" in flags else weight * scale.view(-1, 1, 1, 1)
    if "bias_ignored" in flags:
        bias = torch.zeros_like(bias)
    if "bias_without_mean" in flags:
        new_bias = scale * bias + beta
    elif "conv_bias_unscaled" in flags:
        new_bias = bias + beta - scale * running_mean
    else:
        new_bias = scale * (bias - running_mean) + beta
    return new_weight, new_bias


def _fold_case(seed: int, c_out: int, c_in: int, k: int, var_scale: float = 1.0, with_bias: bool = True):
    def make():
        weight = randn(seed, c_out, c_in, k, k)
        bias = randn(seed + 1, c_out) if with_bias else torch.zeros(c_out, dtype=torch.float64)
        mean = randn(seed + 2, c_out) * 2
        var = (randn(seed + 3, c_out).abs() + 0.5) * var_scale
        gamma = randn(seed + 4, c_out)
        beta = randn(seed + 5, c_out)
        return (weight, bias, mean, var, gamma, beta), {}
    return make


register(Exercise(
    "fold_bn_into_conv", "02", "BatchNorm folded into the convolution before it", fold_bn_into_conv,
    cases=[
        Case("a 3×3 conv from 2 to 4 channels with a bias, running statistics from training",
             _fold_case(0, 4, 2, 3)),
        Case("running variances near 1e-6, where ε matters", _fold_case(10, 3, 3, 3, var_scale=1e-6)),
        Case("a 1×1 conv from 3 to 2 channels made with bias=False (bias = zeros)",
             _fold_case(20, 2, 3, 1, with_bias=False)),
    ],
    mistakes=[
        Mistake("no_eps", "ε is missing: eval-mode BN divides by √(running_var + ε), so the scale is "
                          "γ / √(running_var + ε) (the difference shows when a running variance is tiny)."),
        Mistake("no_sqrt", "You divided by the variance (plus ε) instead of the standard deviation: the scale is "
                           "γ / √(running_var + ε)."),
        Mistake("weight_not_scaled", "The weight is unchanged: BN multiplies every output channel c by "
                                     "a_c = γ_c / √(var_c + ε), so filter c must be multiplied by a_c too "
                                     "(weight * a.view(-1, 1, 1, 1))."),
        Mistake("bias_without_mean", "The running mean is missing from the bias: BN subtracts it before scaling, "
                                     "so the new bias is a·(bias − running_mean) + β."),
        Mistake("conv_bias_unscaled", "The conv's bias passes through BN too, so it is scaled like the rest of the "
                                      "output: the new bias is a·(bias − running_mean) + β, not bias + β − a·mean."),
        Mistake("bias_ignored", "The conv's own bias is missing from the new bias: it goes through BN with the "
                                "rest of the output, a·(bias − running_mean) + β."),
    ],
    hints=["In eval mode BN computes a·(z − running_mean) + β per output channel c, with a = γ / √(running_var + ε). "
           "Put z = conv(x) = W * x + bias into it and collect what multiplies x and what is left.",
           "The new weight is W scaled per *output* channel: weight * a.view(-1, 1, 1, 1) (weight has shape "
           "C_out × C_in × k × k); the new bias is a·(bias − running_mean) + β."],
    family=_fold_family, keeps_inputs=True,
))
