"""Batch normalization written out from its formulas.

For a batch of feature maps ``x`` of shape ``N x C x H x W`` each channel ``c``
is normalized over the ``m = N*H*W`` values it holds in the batch:

    mu_c      = mean(x[:, c])                      (batch mean)
    var_c     = mean((x[:, c] - mu_c) ** 2)        (biased variance, divides by m)
    x_hat     = (x - mu_c) / sqrt(var_c + eps)     (zero mean, unit variance)
    y         = gamma_c * x_hat + beta_c           (learnable affine map)

In training mode the layer also keeps running estimates for inference:

    running_mean = (1 - momentum) * running_mean + momentum * mu_c
    running_var  = (1 - momentum) * running_var  + momentum * var_c * m / (m - 1)

The running variance uses the *unbiased* estimate (divides by ``m - 1``)
because it estimates the population variance; normalizing a batch uses the
biased one because it is the exact variance of the values in hand. In eval
mode the running estimates replace ``mu_c`` and ``var_c``, so the output of one
sample no longer depends on the rest of its batch. ``momentum=None`` turns the
exponential average into a plain cumulative average, as in PyTorch.

:class:`BatchNorm2d` has the same parameters, buffers and ``state_dict`` keys as
:class:`torch.nn.BatchNorm2d`, so weights load in both directions, and its
backward pass is plain autograd through the formula above.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["BatchNorm2d", "batch_norm_2d", "batch_norm_forward", "recompute_bn_stats"]


def _check_input(x: Tensor, num_features: int | None, where: str) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{where} expects a tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{where} expects a 4-D input (batch, channels, height, width), got shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0) for one image"
        )
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"{where} normalizes {num_features} channels but the input has {x.shape[1]} "
            f"(shape {tuple(x.shape)}); build it with num_features={x.shape[1]} or fix the layer before it"
        )
    if not x.is_floating_point():
        raise ValueError(f"{where} needs a floating-point input, got dtype {x.dtype}; use x.float()")


def batch_norm_2d(
    x: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Functional batch norm over ``N x C x H x W``, written with explicit tensor ops.

    Mirrors :func:`torch.nn.functional.batch_norm`: with ``training=True`` the
    batch statistics normalize ``x`` and, when given, ``running_mean`` and
    ``running_var`` are updated in place with ``momentum`` (the running variance
    with the unbiased batch variance). With ``training=False`` the running
    statistics are used and must be given. ``weight`` (gamma) and ``bias``
    (beta) are optional. Gradients come from autograd through these ops.

    Lessons: 02.
    """
    _check_input(x, None, "batch_norm_2d")
    channels = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm_2d: {name} must have shape ({channels},) for {channels} channels, got {tuple(t.shape)}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (it keeps the division finite), got {eps}")
    shape = (1, channels, 1, 1)
    dims = (0, 2, 3)

    if training:
        m = x.numel() // channels  # values per channel: N * H * W
        if m < 2:
            raise ValueError(
                f"batch norm in training mode needs more than 1 value per channel, got input "
                f"shape {tuple(x.shape)}; use a larger batch or call model.eval()"
            )
        mean = x.mean(dim=dims)
        centered = x - mean.view(shape)
        var = (centered * centered).mean(dim=dims)  # biased: divides by m
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                unbiased = var * (m / (m - 1))
                running_mean.mul_(1 - momentum).add_(momentum * mean.to(running_mean.dtype))
                running_var.mul_(1 - momentum).add_(momentum * unbiased.to(running_var.dtype))
        elif (running_mean is None) != (running_var is None):
            raise ValueError("give both running_mean and running_var, or neither")
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm_2d with training=False needs running_mean and running_var")
        mean, var = running_mean.to(x.dtype), running_var.to(x.dtype)
        centered = x - mean.view(shape)

    x_hat = centered / torch.sqrt(var.view(shape) + eps)
    # gamma and beta in the input's dtype, as torch does: float32 parameters must not turn a
    # bfloat16/float16 activation into float32 (mixed precision)
    if weight is not None:
        x_hat = x_hat * weight.to(x_hat.dtype).view(shape)
    if bias is not None:
        x_hat = x_hat + bias.to(x_hat.dtype).view(shape)
    return x_hat


#: name used in docs/DESIGN.md
batch_norm_forward = batch_norm_2d


class BatchNorm2d(nn.Module):
    """Drop-in re-implementation of :class:`torch.nn.BatchNorm2d`.

    Args:
        num_features: number of channels ``C`` of the ``N x C x H x W`` input.
        eps: added to the variance before the square root.
        momentum: weight of the newest batch in the running averages; ``None``
            gives the cumulative average over all batches seen so far.
        affine: learn a per-channel scale ``weight`` (gamma, starts at 1) and
            shift ``bias`` (beta, starts at 0).
        track_running_stats: keep ``running_mean``/``running_var`` for eval
            mode; without them batch statistics are used in eval mode too.

    Lessons: 02.
    """

    _version = 2  # same as torch's, so state_dict metadata matches

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"num_features must be a positive int (the channel count), got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None (cumulative average), got {momentum}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch counter 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """gamma = 1 and beta = 0: the layer starts as a pure normalization."""
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.num_features, type(self).__name__)
        use_batch_stats = self.training or self.running_mean is None
        update = self.training and self.track_running_stats
        if use_batch_stats and x.numel() // self.num_features < 2:
            raise ValueError(
                f"{type(self).__name__} in training mode needs more than 1 value per channel, got "
                f"input shape {tuple(x.shape)}; use a larger batch or call model.eval()"
            )
        factor = 0.0
        if update:
            # count the batch first so that momentum=None averages over all batches
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
        return batch_norm_2d(
            x,
            self.running_mean if update or not use_batch_stats else None,
            self.running_var if update or not use_batch_stats else None,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=factor,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


def recompute_bn_stats(model: nn.Module, data: Tensor | Iterable, batch_size: int = 64) -> nn.Module:
    """Re-estimate every BN layer's running statistics on ``data`` (in place), return the model.

    ``data`` is a tensor of inputs (cut into batches of ``batch_size``) or an
    iterable of batches, each a tensor or an ``(inputs, targets)`` pair. The
    running averages collected during training trail the weights (an
    exponential average over the last ~1/momentum batches, taken while the
    weights were still moving), and a net that was never trained has none
    (mean 0, variance 1). One pass with ``momentum=None`` replaces them by the
    plain average over ``data`` for the *current* weights. Weights are
    unchanged; the model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, (BatchNorm2d, nn.modules.batchnorm._BatchNorm))]
    if not norms:
        raise ValueError("recompute_bn_stats: the model has no batch-norm layer")
    if isinstance(data, Tensor):
        data = [data[i:i + batch_size] for i in range(0, data.shape[0], batch_size)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for batch in data:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
    finally:
        for m, mom in zip(norms, saved):
            m.momentum = mom
    return model.eval()
