"""Read a whole network at the block level: stem, stages of blocks, head.

From one traced forward pass (:func:`~resnet_tutorial.diagrams.trace.trace_graph`):

* a **residual block** is the innermost module whose own ``forward`` merges two
  tensors that both came from its input (``x + F(x)``, ``torch.cat``); the
  outermost such modules are the blocks;
* a **stage** is a module that calls blocks as its direct children (or, in a
  net without any skip connection, a module whose children are composite
  modules with weight layers, none of them a stage itself: the plain twins);
  every composite child with a weight layer of a stage is one of its blocks;
* everything else (layers and torch functions outside the stages) forms the
  stem (before the first stage), the head (after the last) or, for a net with
  no stage at all (a plain ``nn.Sequential`` of layers), one section of layers.

Modules that only group others (``SimpleResNet.model``, post 000's ``block1``)
are looked through. Nothing here reads class or attribute names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence, Union

from torch import nn

from .blockspec import BlockSpec, block_from_call
from .layers import WEIGHT_KINDS, Layer, node_layer
from .trace import Call, Trace, default_input_shape, trace_graph

__all__ = ["NetworkSpec", "Section", "describe_network"]

Item = Union[Layer, BlockSpec]


@dataclass(frozen=True)
class Section:
    """One row of a network diagram.

    Attributes:
        name: module path of the stage (``"layer2"``), or ``"stem"``, ``"head"``, ``"layers"``.
        kind: ``"stem"``, ``"stage"``, ``"head"`` or ``"layers"``.
        items: its layers and blocks in forward order.
        out_shape: shape of the section's output, one example (batch dropped).
        stage: 0-based index among the stages (``None`` for other sections).
    """

    name: str
    kind: str
    items: tuple[Item, ...]
    out_shape: tuple[int, ...] | None
    stage: int | None = None

    @property
    def blocks(self) -> list[BlockSpec]:
        return [i for i in self.items if isinstance(i, BlockSpec)]


@dataclass(frozen=True)
class NetworkSpec:
    """A network as :func:`draw_network` draws it (see :func:`describe_network`)."""

    title: str
    input_shape: tuple[int, ...]
    sections: tuple[Section, ...]
    shapes_known: bool = True

    @property
    def stages(self) -> list[Section]:
        return [s for s in self.sections if s.kind == "stage"]

    @property
    def blocks(self) -> list[BlockSpec]:
        """Every block, in forward order."""
        return [b for s in self.sections for b in s.blocks]

    def items(self) -> list[Item]:
        return [i for s in self.sections for i in s.items]

    def resolve(self, name: str) -> Item:
        """The layer or block a module name refers to: an exact path (``"fc"``), a unique
        path suffix (``"conv1"`` for ``"model.conv1"``), or a module inside a block
        (``"layer1.0.conv1"`` -> the block ``"layer1.0"``). ValueError if none or ambiguous."""
        items = self.items()
        exact = [i for i in items if i.name == name]
        if exact:
            return exact[0]
        inside = [b for b in self.blocks if b.name and name.startswith(b.name + ".")]
        if inside:
            return inside[0]
        suffix = [i for i in items if i.name.endswith("." + name)]
        if len(suffix) == 1:
            return suffix[0]
        names = [i.name for i in items if i.name]
        if len(suffix) > 1:
            raise ValueError(f"{name!r} matches several modules ({', '.join(i.name for i in suffix)}): "
                             "give the full path")
        close = difflib.get_close_matches(name, names, n=3)
        raise ValueError(f"no module {name!r} in {self.title}" + (f" (did you mean {', '.join(close)}?)"
                         if close else f"; its layers and blocks are: {', '.join(names[:20])}"))


class _Reader:
    """Classifies the module calls of one trace into blocks, stages and plain containers."""

    def __init__(self, trace: Trace, shapes_known: bool) -> None:
        self.trace = trace
        self.shapes_known = shapes_known
        calls = trace.calls
        weights = {n.id for n in trace.nodes if n.kind != "input" and node_layer(n).kind in WEIGHT_KINDS}
        self.weighted = {c.index for c in calls if weights & set(c.nodes)}
        owners = {n.scope for n in trace.nodes if n.kind == "op" and len(n.inputs) >= 2 and n.scope is not None}
        self.root_merges = 0 in owners
        self.blocks = {i for i in owners if i != 0 and not (self.ancestors(i) & owners - {0})}
        self.has_block_below = set().union(*(self.ancestors(b) for b in self.blocks))
        self._stage: dict[int, bool] = {}

    def ancestors(self, index: int) -> set[int]:
        out, cur = set(), self.trace.calls[index].parent
        while cur is not None:
            out.add(cur)
            cur = self.trace.calls[cur].parent
        return out

    def stage_like(self, index: int) -> bool:
        """Does this call run blocks as its direct children (a stage)?"""
        if index not in self._stage:
            children = self.trace.calls[index].children
            weighted = [c for c in children if c in self.weighted]
            self._stage[index] = index not in self.blocks and (
                any(c in self.blocks for c in children)
                or (index not in self.has_block_below and bool(weighted)
                    and not any(self.stage_like(c) for c in weighted))
            )
        return self._stage[index]

    def entries(self, call: Call) -> list[tuple[str, object]]:
        """("layer", Layer) / ("block", BlockSpec) / ("stage", Call) in forward order."""
        out: list[tuple[str, object]] = []
        in_stage = self.stage_like(call.index)
        for kind, idx in call.order:
            if kind == "node":
                out.append(("layer", node_layer(self.trace.nodes[idx])))
                continue
            child = self.trace.calls[idx]
            if idx in self.blocks or (in_stage and idx in self.weighted):
                out.append(("block", block_from_call(self.trace, child, self.shapes_known)))
            elif self.stage_like(idx):
                out.append(("stage", child))
            else:
                out.extend(self.entries(child))
        return out

    def stage_section(self, call: Call, number: int) -> Section:
        items = tuple(e for kind, e in self.entries(call) if kind in ("layer", "block"))
        return Section(call.name or "body", "stage", items, _last_shape(items), number)  # type: ignore[arg-type]


def _last_shape(items: Sequence[Item]) -> tuple[int, ...] | None:
    for item in reversed(items):
        if item.out_shape is not None:
            return item.out_shape
    return None


def _sections(reader: _Reader) -> list[Section]:
    root = reader.trace.root
    if reader.stage_like(0):
        return [reader.stage_section(root, 0)]
    raw: list[tuple[str, object]] = reader.entries(root)
    n_stages = sum(kind == "stage" for kind, _ in raw)
    sections: list[Section] = []
    run: list[Layer] = []
    seen = 0

    def flush() -> None:
        if run:
            kind = "layers" if n_stages == 0 else "stem" if seen == 0 else "head" if seen == n_stages else "layers"
            sections.append(Section(kind, kind, tuple(run), _last_shape(run)))
            run.clear()

    for kind, entry in raw:
        if kind == "stage":
            flush()
            sections.append(reader.stage_section(entry, seen))  # type: ignore[arg-type]
            seen += 1
        elif kind == "layer":
            run.append(entry)  # type: ignore[arg-type]
        else:  # a block outside any stage cannot happen (its parent would be a stage)
            raise ValueError(f"cannot place block {entry.name!r} outside a stage")  # type: ignore[union-attr]
    flush()
    return sections


def describe_network(model: nn.Module, *, input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """Read ``model``'s stem, stages, blocks and head from one traced forward pass.

    Args:
        model: any ``nn.Module`` taking one tensor (ResNets, their plain twins,
            the posts' networks, torchvision's models, an ``nn.Sequential`` of layers).
        input_shape: one example's shape ``(C, H, W)`` (or ``(features,)`` for an
            MLP). Without it a ``C×64×64`` input is made from the first layer and
            ``shapes_known`` is False (channels are right, spatial sizes are not the caller's).

    Raises:
        ValueError: naming the module when the forward pass fails, when a skip
            connection sits in the model's own ``forward`` rather than in a
            submodule, or when a block has more than one merge.

    Example::

        spec = describe_network(create_model("resnet20"), input_shape=(1, 28, 28))
        [len(s.blocks) for s in spec.stages]   # [3, 3, 3]
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"describe_network expects an nn.Module, got {type(model).__name__}")
    if input_shape is not None:
        trace = trace_graph(model, input_shape)
    else:
        try:
            trace = trace_graph(model, default_input_shape(model, size=64))
        except ValueError:
            trace = trace_graph(model, default_input_shape(model, size=224))
    reader = _Reader(trace, shapes_known=input_shape is not None)
    title = type(model).__name__
    if reader.root_merges:
        if reader.blocks:
            raise ValueError(
                f"cannot place the skip connection in {title}.forward itself: draw_network draws "
                "skip connections that sit inside a submodule (a block); wrap it in an nn.Module"
            )
        block = block_from_call(trace, trace.root, reader.shapes_known)
        section = Section("block", "stage", (block,), block.out_shape, 0)
        return NetworkSpec(title, trace.input_shape[1:], (section,), reader.shapes_known)
    sections = _sections(reader)
    if not sections:
        raise ValueError(f"cannot draw {title}: its forward pass called no layer")
    return NetworkSpec(title, trace.input_shape[1:], tuple(sections), reader.shapes_known)
