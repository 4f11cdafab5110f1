"""Look inside any ``nn.Module``: shapes, parameter and FLOP counts, gradients and activations.

Two modules, one question each:

* :mod:`~resnet_tutorial.diagnostics.shapes_and_counts`: what the network *is*
  (:func:`trace_shapes`, :func:`stage_table`, :func:`num_params`,
  :func:`count_params`, :func:`params_table`, :func:`count_flops`, :func:`summary`);
* :mod:`~resnet_tutorial.diagnostics.gradient_flow`: what flows through it while
  it trains (:func:`grad_norms`, :func:`activation_stats`,
  :func:`update_to_data_ratios`, :func:`fit_exponential`, :func:`per_layer_factor`,
  :func:`layer_jacobians`, :func:`chain_rule_check`).

Everything is re-exported here, so ``from resnet_tutorial.diagnostics import
grad_norms`` and ``diagnostics.trace_shapes(...)`` work as before the split.
"""

from __future__ import annotations

from .gradient_flow import (
    SIGMOID_SATURATION,
    TANH_SATURATION,
    WEIGHT_LAYERS,
    ExponentialFit,
    activation_stats,
    chain_rule_check,
    fit_exponential,
    grad_norms,
    layer_jacobians,
    per_layer_factor,
    update_to_data_ratios,
)
from .shapes_and_counts import (
    count_flops,
    count_params,
    make_input,
    model_device_dtype,
    num_params,
    params_table,
    stage_table,
    summary,
    trace_shapes,
)

__all__ = [
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "WEIGHT_LAYERS",
    "ExponentialFit",
    "activation_stats",
    "chain_rule_check",
    "count_flops",
    "count_params",
    "fit_exponential",
    "grad_norms",
    "layer_jacobians",
    "make_input",
    "model_device_dtype",
    "num_params",
    "params_table",
    "per_layer_factor",
    "stage_table",
    "summary",
    "trace_shapes",
    "update_to_data_ratios",
]
