"""Lesson 02: bn_forward_train, bn_running_update, bn_forward_eval, bn_identity_params, fold_bn_into_conv."""

import torch
import torch.nn.functional as F
from torch import nn

from . import right, wrong

DIMS = (0, 2, 3)


def _c(t):
    return t.view(1, -1, 1, 1)


# --------------------------------------------------------------------------- bn_forward_train
@right("the lesson's solution: var(unbiased=False), sqrt(var + eps)")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)


@right("the variance as the mean of squared deviations, rsqrt")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=DIMS, keepdim=True)
    return gamma[None, :, None, None] * (x - mean) * torch.rsqrt(var + eps) + beta[None, :, None, None]


@right("a loop over channels")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        xc = x[:, c]
        m = xc.mean()
        v = ((xc - m) ** 2).mean()
        out[:, c] = gamma[c] * (xc - m) / (v + eps).sqrt() + beta[c]
    return out


@right("channels first, reshape to C x m")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    n, c, h, w = x.shape
    flat = x.transpose(0, 1).reshape(c, -1)
    var, mean = torch.var_mean(flat, dim=1, correction=0)
    y = (flat - mean[:, None]) / torch.sqrt(var[:, None] + eps) * gamma[:, None] + beta[:, None]
    return y.reshape(c, n, h, w).transpose(0, 1)


@right("PyTorch's own F.batch_norm")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


@right("float64 intermediates, cast back to the input's dtype")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    xd = x.double()
    mean = xd.mean(dim=DIMS, keepdim=True)
    var = xd.var(dim=DIMS, keepdim=True, correction=0)
    y = _c(gamma.double()) * (xd - mean) / (var + eps).sqrt() + _c(beta.double())
    return y.to(x.dtype)


@wrong("x.var() with its default: the unbiased variance", mistake="unbiased")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("eps added to the standard deviation", mistake="eps_outside")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    std = x.std(dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / (std + eps) + _c(beta)


@wrong("statistics over the batch dimension only", mistake="batch_only")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=0, keepdim=True)
    var = x.var(dim=0, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("statistics per image (instance norm)", mistake="per_image")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("statistics over C, H, W (layer norm)", mistake="layer_norm")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("one mean and variance for the whole batch", mistake="all_dims")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(), x.var(unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("gamma and beta forgotten", mistake="no_affine")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


@wrong("no eps at all", mistake="no_eps")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / var.sqrt() + _c(beta)


@wrong("divided by the variance, no square root", mistake="no_sqrt")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / (var + eps) + _c(beta)


@wrong("gamma and beta swapped", mistake="affine_swapped")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return _c(beta) * (x - mean) / torch.sqrt(var + eps) + _c(gamma)


@wrong("gamma and beta not reshaped to (1, C, 1, 1)", mistake="affine_not_reshaped")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


@wrong("statistics without keepdim", mistake="no_keepdim")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS)
    var = x.var(dim=DIMS, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("eps typed in as 1e-5, the caller's eps ignored", mistake="eps_ignored")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + 1e-5) + _c(beta)


@wrong("normalizes x in place (x -= mean)", mistake="mutated_input", defect="input mutated in place")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    var = x.var(dim=DIMS, keepdim=True, unbiased=False)
    x -= mean
    x /= torch.sqrt(var + eps)
    return _c(gamma) * x + _c(beta)


@wrong("x.std() + eps: unbiased and eps outside at once")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=DIMS, keepdim=True)
    return _c(gamma) * (x - mean) / (x.std(dim=DIMS, keepdim=True) + eps) + _c(beta)


@wrong("float64 result for a float32 batch", mistake="wrong_dtype")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    xd = x.double()
    mean = xd.mean(dim=DIMS, keepdim=True)
    var = xd.var(dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma.double()) * (xd - mean) / (var + eps).sqrt() + _c(beta.double())


# --------------------------------------------------------------------------- bn_running_update
@right("the lesson's solution")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=True)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


@right("torch.lerp")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return torch.lerp(running_mean, x.mean(DIMS), momentum), torch.lerp(running_var, x.var(DIMS), momentum)


@right("the biased variance times m / (m - 1)")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    m = x.numel() // x.shape[1]
    mean = x.mean(DIMS)
    biased = ((x - mean.view(1, -1, 1, 1)) ** 2).mean(DIMS)
    return running_mean + momentum * (mean - running_mean), running_var + momentum * (biased * m / (m - 1) - running_var)


@right("nn.BatchNorm2d does the update")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    bn = nn.BatchNorm2d(x.shape[1], momentum=momentum).to(x.dtype)
    with torch.no_grad():
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
    bn.train()(x)
    return bn.running_mean.detach().clone(), bn.running_var.detach().clone()


@right("updates the given tensors in place and returns them, as nn.BatchNorm2d does")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    running_mean.mul_(1 - momentum).add_(momentum * x.mean(DIMS))
    running_var.mul_(1 - momentum).add_(momentum * x.var(DIMS))
    return running_mean, running_var


@wrong("Keras' momentum convention", mistake="momentum_swapped")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return (momentum * running_mean + (1 - momentum) * x.mean(DIMS),
            momentum * running_var + (1 - momentum) * x.var(DIMS))


@wrong("the biased variance in the running estimate", mistake="biased_var")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return ((1 - momentum) * running_mean + momentum * x.mean(DIMS),
            (1 - momentum) * running_var + momentum * x.var(DIMS, unbiased=False))


@wrong("replaced by the batch's statistics", mistake="replaced")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return x.mean(DIMS), x.var(DIMS)


@wrong("the running standard deviation instead of the variance", mistake="std")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return ((1 - momentum) * running_mean + momentum * x.mean(DIMS),
            (1 - momentum) * running_var + momentum * x.std(DIMS))


@wrong("statistics over the batch dimension only", mistake="batch_only")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    mean = x.mean(dim=0)
    var = x.var(dim=0)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


@wrong("one mean for all channels", mistake="all_dims")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return (1 - momentum) * running_mean + momentum * x.mean(), (1 - momentum) * running_var + momentum * x.var()


@wrong("only the mean is returned", mistake="mean_only")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return (1 - momentum) * running_mean + momentum * x.mean(DIMS)


# --------------------------------------------------------------------------- bn_forward_eval
@right("the lesson's solution")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    shape = (1, -1, 1, 1)
    x_hat = (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps)
    return gamma.view(shape) * x_hat + beta.view(shape)


@right("F.batch_norm with training=False")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=eps)


@right("folded into one scale and one shift per channel")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    shift = beta - running_mean * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


@right("nn.BatchNorm2d in eval mode with the given statistics")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    bn = nn.BatchNorm2d(x.shape[1], eps=eps).to(x.dtype)
    with torch.no_grad():
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
        return bn.eval()(x)


@wrong("the batch's own statistics, as in training mode", mistake="batch_stats")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    mean = x.mean(DIMS, keepdim=True)
    var = x.var(DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(var + eps) + _c(beta)


@wrong("eps outside the square root", mistake="eps_outside")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - _c(running_mean)) / (_c(running_var).sqrt() + eps) + _c(beta)


@wrong("no square root", mistake="no_sqrt")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - _c(running_mean)) / (_c(running_var) + eps) + _c(beta)


@wrong("gamma and beta forgotten", mistake="no_affine")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return (x - _c(running_mean)) / torch.sqrt(_c(running_var) + eps)


@wrong("no eps", mistake="no_eps")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - _c(running_mean)) / torch.sqrt(_c(running_var)) + _c(beta)


@wrong("gamma and beta swapped", mistake="affine_swapped")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(beta) * (x - _c(running_mean)) / torch.sqrt(_c(running_var) + eps) + _c(gamma)


@wrong("the batch's mean with the running variance", mistake="batch_mean")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - x.mean(DIMS, keepdim=True)) / torch.sqrt(_c(running_var) + eps) + _c(beta)


@wrong("eps typed in, the caller's eps ignored", mistake="eps_ignored")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - _c(running_mean)) / torch.sqrt(_c(running_var) + 1e-5) + _c(beta)


@wrong("running statistics not reshaped", mistake="not_reshaped")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta


# --------------------------------------------------------------------------- bn_identity_params
@right("the lesson's solution")
def bn_identity_params(x, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    return torch.sqrt(var + eps), mean


@right("torch.var_mean with correction=0")
def bn_identity_params(x, eps=1e-5):
    var, mean = torch.var_mean(x, dim=DIMS, correction=0)
    return (var + eps) ** 0.5, mean


@right("a loop over channels")
def bn_identity_params(x, eps=1e-5):
    gammas, betas = [], []
    for c in range(x.shape[1]):
        xc = x[:, c].flatten()
        m = xc.mean()
        gammas.append(torch.sqrt(((xc - m) ** 2).mean() + eps))
        betas.append(m)
    return torch.stack(gammas), torch.stack(betas)


@wrong("gamma = the standard deviation, eps forgotten", mistake="no_eps")
def bn_identity_params(x, eps=1e-5):
    return x.std(DIMS, unbiased=False), x.mean(DIMS)


@wrong("the unbiased variance", mistake="unbiased")
def bn_identity_params(x, eps=1e-5):
    return torch.sqrt(x.var(DIMS) + eps), x.mean(DIMS)


@wrong("gamma and beta swapped", mistake="swapped")
def bn_identity_params(x, eps=1e-5):
    return x.mean(DIMS), torch.sqrt(x.var(DIMS, unbiased=False) + eps)


@wrong("gamma = the variance, no square root", mistake="no_sqrt")
def bn_identity_params(x, eps=1e-5):
    return x.var(DIMS, unbiased=False) + eps, x.mean(DIMS)


@wrong("the normalization itself: 1/std and -mean/std", mistake="inverse")
def bn_identity_params(x, eps=1e-5):
    std = torch.sqrt(x.var(DIMS, unbiased=False) + eps)
    return 1 / std, -x.mean(DIMS) / std


@wrong("kept the (1, C, 1, 1) shape", mistake="keepdim")
def bn_identity_params(x, eps=1e-5):
    mean = x.mean(DIMS, keepdim=True)
    var = x.var(DIMS, keepdim=True, unbiased=False)
    return torch.sqrt(var + eps), mean


@wrong("gamma = 1 and beta = 0 (BN's initial values)", mistake="initial_values")
def bn_identity_params(x, eps=1e-5):
    return torch.ones(x.shape[1], dtype=x.dtype), torch.zeros(x.shape[1], dtype=x.dtype)


# --------------------------------------------------------------------------- fold_bn_into_conv
@right("the lesson's solution: scale per output channel")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), scale * (bias - running_mean) + beta


@right("rsqrt, einsum over the output channel, bias expanded")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    a = gamma * torch.rsqrt(running_var + eps)
    new_weight = torch.einsum("o,oihw->oihw", a, weight)
    return new_weight, a * bias - a * running_mean + beta


@wrong("ε forgotten", mistake="no_eps")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / running_var.sqrt()
    return weight * scale.view(-1, 1, 1, 1), scale * (bias - running_mean) + beta


@wrong("divided by the variance", mistake="no_sqrt")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / (running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), scale * (bias - running_mean) + beta


@wrong("only the bias folded", mistake="weight_not_scaled")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight.clone(), scale * (bias - running_mean) + beta


@wrong("the running mean left out of the bias", mistake="bias_without_mean")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), scale * bias + beta


@wrong("the conv bias added after BN, unscaled", mistake="conv_bias_unscaled")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), bias + beta - scale * running_mean


@wrong("the conv bias forgotten", mistake="bias_ignored")
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.view(-1, 1, 1, 1), beta - scale * running_mean


@wrong("scaled along the input channels", mistake=None)
def fold_bn_into_conv(weight, bias, running_mean, running_var, gamma, beta, eps=1e-5):
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale[: weight.shape[1]].view(1, -1, 1, 1), scale * (bias - running_mean) + beta
