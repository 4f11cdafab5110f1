"""Architecture diagrams drawn from the ``nn.Module`` itself, so they never disagree with the code.

A diagram here is one more view of the model a lesson runs, like
``diagnostics.trace_shapes``: it is read from the module's children and one
traced forward pass (module hooks plus a ``TorchFunctionMode`` that sees the
``x + F(x)`` or ``torch.cat`` the children alone do not show), never from
class names.

Draw (each returns a ``matplotlib.figure.Figure``; ``fig.diagram`` holds what it drew):

* :func:`draw_block` -- one block: main path, shortcut (identity / zero-pad /
  1×1 projection), ⊕ or ©, output activation, shapes on the arrows;
  :func:`draw_blocks` -- several side by side (plain vs residual, basic vs bottleneck);
* :func:`draw_network` -- a whole net at the block level: stem, one box per
  block coloured by stage, shortcut arcs, head, feature-map size per stage,
  ``highlight=`` for replaced parts;
* :func:`draw_unrolled` -- Veit et al.'s 2^n paths, optionally with a block deleted;
* :func:`draw_merge`, :func:`draw_inception_cell`, :func:`draw_dense_block` -- add
  versus concatenate and their channel bookkeeping.

Read (the structures the drawings consume, for tests and for text):
:func:`describe_block` -> :class:`BlockSpec`, :func:`describe_network` ->
:class:`NetworkSpec`, :func:`describe_unrolled`, :func:`describe_cell`,
:func:`describe_dense_block`. A module that cannot be read raises a
``ValueError`` naming it.

Layout of the package: ``trace`` (the recorded forward pass), ``layers``
(one layer's kind and label), ``blockspec`` / ``netspec`` (reading blocks and
networks), ``style`` (colours, boxes, arrows), ``block_view`` /
``network_view`` / ``unrolled`` / ``cells`` (drawing).
"""

from .block_view import draw_block, draw_blocks
from .blockspec import BlockSpec, describe_block
from .cells import (CellSpec, DenseSpec, describe_cell, describe_dense_block, draw_dense_block,
                    draw_inception_cell, draw_merge)
from .layers import Layer
from .netspec import NetworkSpec, Section, describe_network
from .network_view import draw_network
from .unrolled import UnrolledSpec, describe_unrolled, draw_unrolled

__all__ = [
    "BlockSpec", "CellSpec", "DenseSpec", "Layer", "NetworkSpec", "Section", "UnrolledSpec",
    "describe_block", "describe_cell", "describe_dense_block", "describe_network", "describe_unrolled",
    "draw_block", "draw_blocks", "draw_dense_block", "draw_inception_cell", "draw_merge", "draw_network",
    "draw_unrolled",
]
