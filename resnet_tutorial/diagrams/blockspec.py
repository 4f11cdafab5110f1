"""Read one block from its traced forward pass: main path, shortcut, merge, output layers.

A residual block is a small graph::

    x ─ pre ─┬─ main path ──┐
             └─ shortcut ───⊕ (add) or ©(concatenate) ─ post ─ out

:func:`describe_block` finds that shape in the data flow recorded by
:func:`~resnet_tutorial.diagrams.trace.trace_graph`: walking back from the
block's output it meets the merge (a torch ``add``/``cat`` whose two inputs
both came from ``x``), then follows each input back to where they split. The
branch with more weight layers is the main path; the other is the shortcut
(empty: identity; with a conv: projection; subsample and pad: zero-padding).
A block without a merge is a *plain* block (no shortcut). Nothing here looks
at class or attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from torch import nn

from .layers import ADD_OPS, CAT_OPS, WEIGHT_KINDS, Layer, node_layer
from .trace import Call, Node, Trace, default_input_shape, trace_graph

__all__ = ["BlockSpec", "describe_block", "block_from_call", "shortcut_kind"]


@dataclass(frozen=True)
class BlockSpec:
    """A block as :func:`draw_block` draws it (all shapes per example, batch dropped).

    Attributes:
        name: module path of the block in its network (``"layer2.0"``), ``""`` for a block drawn alone.
        title: the block's class name (only used as a caption).
        in_shape / out_shape: shapes of the block's input and output.
        pre: layers before the main path and the shortcut split (pre-activation variants).
        main: the residual branch F(x), in order.
        shortcut: the layers on the skip path (``()`` = identity); ``None`` for a plain block.
        shortcut_kind: ``"identity"``, ``"projection"`` (has a conv), ``"zeropad"``
            (subsample and/or pad, no parameters), ``"other"``, or ``"none"`` (plain block).
        merge: ``"add"``, ``"cat"``, another torch function's name, or ``None`` (plain block).
        merge_shape: shape right after the merge.
        post: layers after the merge (the output activation, if any).
        shapes_known: ``True`` when the shapes come from the caller's ``input_shape``.
    """

    name: str
    title: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pre: tuple[Layer, ...]
    main: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] | None
    shortcut_kind: str
    merge: str | None
    merge_shape: tuple[int, ...] | None
    post: tuple[Layer, ...]
    shapes_known: bool = True

    @property
    def has_shortcut(self) -> bool:
        return self.shortcut is not None

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer of the block: pre, main path, shortcut, post."""
        return self.pre + self.main + (self.shortcut or ()) + self.post

    @property
    def stride(self) -> int:
        """Spatial subsampling of the whole block (product of its main-path strides)."""
        s = 1
        for layer in self.pre + self.main:
            s *= layer.stride
        return s

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    def signature(self) -> tuple:
        """What makes two blocks look the same in a network diagram (labels, shortcut, shapes)."""
        return (tuple(l.label for l in self.pre + self.main + self.post),
                self.shortcut_kind, self.merge, self.in_shape, self.out_shape)


def shortcut_kind(layers: Sequence[Layer] | None) -> str:
    """``identity`` / ``projection`` / ``zeropad`` / ``other`` / ``none`` for a skip path's layers."""
    if layers is None:
        return "none"
    kinds = {l.kind for l in layers}
    if not kinds:
        return "identity"
    if kinds & WEIGHT_KINDS:
        return "projection"
    if kinds <= {"zeropad", "pad", "subsample", "pool"}:
        return "zeropad"
    return "other"


def _visible(trace: Trace, ids: Sequence[int]) -> tuple[Layer, ...]:
    """Layers of these node ids, without pass-through ones (``nn.Identity``, ``dropout 0``)."""
    layers = [node_layer(trace.nodes[i]) for i in ids]
    return tuple(l for l in layers if l.kind != "identity" and l.label != "dropout 0")


def _walk_back(trace: Trace, start: int, inside: set[int], stop: int, where: str) -> list[int]:
    """Node ids from ``start`` back along single-input steps until ``stop`` (excluded) or a merge."""
    chain, cur = [], start
    while cur != stop and cur in inside and len(trace.nodes[cur].inputs) == 1:
        chain.append(cur)
        cur = trace.nodes[cur].inputs[0]
    if cur != stop and cur not in inside:
        raise ValueError(
            f"cannot place {where}: the tensor feeding {trace.nodes[chain[-1] if chain else start].name!r} "
            "comes from outside the block, not from its input"
        )
    return chain + [cur]


def _merge_kind(node: Node) -> str:
    if node.name in ADD_OPS:
        return "add"
    if node.name in CAT_OPS:
        return "cat"
    return node.name


def _split(trace: Trace, merge: Node, inside: set[int], start: int, where: str
           ) -> tuple[list[int], list[int], list[int]]:
    """(pre, main, shortcut) node ids, in forward order, for a two-input merge."""
    if len(merge.inputs) != 2:
        raise ValueError(
            f"cannot place {where}: its {merge.name!r} merges {len(merge.inputs)} tensors; "
            "draw_block reads blocks whose two paths (main and shortcut) meet once"
        )
    paths = []
    for src in merge.inputs:
        path = _walk_back(trace, src, inside, start, where)
        if path[-1] != start:
            raise ValueError(
                f"cannot place {where}: a path into its {merge.name!r} meets another merge "
                f"({trace.nodes[path[-1]].name!r}) before the block's input; draw_block reads "
                "blocks with one skip connection (draw_network draws a whole network)"
            )
        paths.append(path[::-1])  # forward order, starting at `start`
    a, b = paths
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    pre, branch_a, branch_b = a[1:common], a[common:], b[common:]

    def weight(ids: list[int]) -> int:
        return sum(node_layer(trace.nodes[i]).kind in WEIGHT_KINDS for i in ids)

    if (weight(branch_b), len(branch_b)) > (weight(branch_a), len(branch_a)):
        branch_a, branch_b = branch_b, branch_a
    return pre, branch_a, branch_b


def block_from_call(trace: Trace, call: Call, shapes_known: bool = True) -> BlockSpec:
    """The :class:`BlockSpec` of one recorded module call (see :func:`describe_block`)."""
    where = f"module {call.name or type(call.module).__name__!r} ({type(call.module).__name__})"
    inside = set(call.nodes)
    start, end = call.input_node, call.output_node
    if start is None or end is None:
        raise ValueError(f"cannot place {where}: it does not map one input tensor to one output tensor")
    post = _walk_back(trace, end, inside, start, where)
    merge_id = post.pop()
    pre: list[int] = []
    if merge_id == start:  # plain block: one chain from input to output
        main, skip, merge = post[::-1], None, None
        post = []
    else:
        merge = trace.nodes[merge_id]
        pre, main, skip = _split(trace, merge, inside, start, where)
        post = post[::-1]
    if not main and skip is None:
        raise ValueError(f"cannot place {where}: it returns its input unchanged (no layers to draw)")
    shortcut = _visible(trace, skip) if skip is not None else None
    merge_shape = merge.shape[1:] if merge is not None and merge.shape else None
    return BlockSpec(
        name=call.name, title=type(call.module).__name__,
        in_shape=trace.nodes[start].shape[1:], out_shape=trace.nodes[end].shape[1:],
        pre=_visible(trace, pre), main=_visible(trace, main), shortcut=shortcut,
        shortcut_kind=shortcut_kind(shortcut), merge=_merge_kind(merge) if merge is not None else None,
        merge_shape=merge_shape, post=_visible(trace, post), shapes_known=shapes_known,
    )


def describe_block(block: nn.Module, *, input_shape: Sequence[int] | None = None) -> BlockSpec:
    """Read ``block``'s structure from one traced forward pass.

    Args:
        block: any ``nn.Module`` that maps one tensor to one tensor through at
            most one skip connection (this package's blocks, torchvision's
            ``BasicBlock``/``Bottleneck``, a plain ``nn.Sequential`` of layers).
        input_shape: one example's shape ``(C, H, W)``. Without it a small input
            is made from the first conv's ``in_channels`` (8×8 pixels) and
            ``shapes_known`` is False: the structure is the same, the spatial
            sizes are not the caller's.

    Raises:
        ValueError: naming the module when it has several merges, a merge of
            more than two tensors, or a forward pass that fails on the input.

    Example::

        spec = describe_block(ResidualBlock(16, 32, 2, shortcut="projection"), input_shape=(16, 28, 28))
        spec.shortcut_kind, [l.label for l in spec.main]   # 'projection', ['3×3 conv, 32, /2', 'BN', ...]
    """
    if not isinstance(block, nn.Module):
        raise ValueError(f"describe_block expects an nn.Module, got {type(block).__name__}")
    shape = tuple(input_shape) if input_shape is not None else default_input_shape(block, size=8)
    trace = trace_graph(block, shape)
    spec = block_from_call(trace, trace.root, shapes_known=input_shape is not None)
    return spec
