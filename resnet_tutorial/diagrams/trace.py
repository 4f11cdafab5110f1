"""Record the data flow of one forward pass: which layer fed which, and where tensors merge.

The children of a module list its layers but not how ``forward`` wires them:
whether ``x`` is added back, concatenated, or not used again is only visible
while the code runs. :func:`trace_graph` runs one forward pass with

* a forward pre-hook and hook on every submodule (the module call stack, and
  one node per call of a leaf layer such as ``Conv2d`` or ``ReLU``), and
* a :class:`torch.overrides.TorchFunctionMode` that sees every torch function
  called *between* layers: ``x + y``, ``torch.cat``, ``F.relu``, ``F.pad``,
  ``x[:, :, ::2, ::2]``, ``torch.flatten``.

Each tensor remembers the node that produced it, so the result is a small
graph: nodes in call order, each with the nodes its tensor inputs came from.
Leaf layers are opaque (their inner ``F.conv2d`` is not recorded); a custom
leaf without built-in type (``ZeroPadShortcut``) is one node too, and the
torch functions it called are kept in ``node.inner`` so its label can say what
it does ("subsample /2, zero-pad +16 channels").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..device import torch_threads
from ..diagnostics import make_input
from ..modes import frozen

__all__ = ["Call", "Node", "Trace", "default_input_shape", "trace_graph"]

_INSIDE_LEAF = -1  # node id of tensors made inside an opaque leaf layer

# torch functions that only move or re-type a tensor: the output keeps the input's node
_TRANSPARENT = {
    "contiguous", "to", "clone", "detach", "float", "double", "half", "bfloat16", "type_as",
    "requires_grad_", "cpu", "cuda", "__get__", "_to_copy",
}


@dataclass
class Node:
    """One step of the forward pass: the input, a leaf-layer call or a torch function.

    ``inputs`` are the ids of the nodes whose tensors this step read (only
    tensors that came from the input count: constants and ``torch.zeros``
    made inside ``forward`` do not). ``scope`` is the index of the innermost
    module call running when the step happened. ``shape`` is the output
    shape with the batch dimension.
    """

    id: int
    kind: str  # "input" | "module" | "op"
    name: str  # dotted module path, or the torch function's name
    inputs: tuple[int, ...]
    shape: tuple[int, ...] | None
    scope: int | None
    module: nn.Module | None = None
    call: int = 0  # 0 for a module's first call, 1 for the second, ... (as trace_shapes counts)
    info: dict[str, Any] = field(default_factory=dict)
    inner: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Call:
    """One call of a module that has children (a block, a stage, the model)."""

    index: int
    name: str
    module: nn.Module
    parent: int | None
    input_node: int | None = None
    output_node: int | None = None
    nodes: list[int] = field(default_factory=list)  # every node made during the call, at any depth
    children: list[int] = field(default_factory=list)  # calls of direct (composite) children
    order: list[tuple[str, int]] = field(default_factory=list)  # ("node", id) / ("call", index) in call order


@dataclass
class Trace:
    """The graph of one forward pass (see :func:`trace_graph`)."""

    model: nn.Module
    nodes: list[Node]
    calls: list[Call]
    input_shape: tuple[int, ...]

    @property
    def root(self) -> Call:
        return self.calls[0]


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    return name.strip("_") if name.startswith("__") and name not in ("__getitem__", "__get__") else name


def _op_info(name: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """What the label of a torch function needs to know (slice steps, pad widths, cat dim)."""
    info: dict[str, Any] = {}
    if name == "__getitem__" and len(args) > 1:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        info["steps"] = tuple(i.step or 1 if isinstance(i, slice) else 1 for i in index)
    elif name == "pad" and len(args) > 1:
        info["pad"] = tuple(int(p) for p in args[1])
    elif name in ("cat", "concat", "concatenate"):
        info["dim"] = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    elif name in ("conv2d", "conv1d") and len(args) > 1 and isinstance(args[1], Tensor):
        w = args[1]
        stride = kwargs.get("stride", args[3] if len(args) > 3 else 1)
        info.update(out_channels=w.shape[0], kernel=tuple(w.shape[2:]),
                    stride=stride if isinstance(stride, int) else stride[0])
    elif name == "linear" and len(args) > 1 and isinstance(args[1], Tensor):
        info["out_features"] = args[1].shape[0]
    return info


class _Recorder(TorchFunctionMode):
    """Module hooks + torch-function mode that build the :class:`Trace`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.nodes: list[Node] = []
        self.calls: list[Call] = []
        self.node_of: dict[int, int] = {}  # id(tensor) -> node id
        self.alive: list[Tensor] = []  # keeps ids unique while the trace runs
        self.stack: list[int] = []  # open composite calls
        self.leaf: list[tuple[nn.Module, tuple[int, ...], list]] = []  # open leaf calls
        self.counts: dict[int, int] = {}
        self.handles: list[Any] = []

    # -- graph bookkeeping ------------------------------------------------------
    def add_node(self, kind: str, name: str, inputs: Sequence[int], out: Any, **extra: Any) -> int:
        tensor = next(_tensors(out), None)
        node = Node(len(self.nodes), kind, name, tuple(inputs),
                    tuple(tensor.shape) if tensor is not None else None,
                    self.stack[-1] if self.stack else None, **extra)
        self.nodes.append(node)
        for index in self.stack:
            self.calls[index].nodes.append(node.id)
        if self.stack:
            self.calls[self.stack[-1]].order.append(("node", node.id))
        if tensor is not None:
            self.node_of[id(tensor)] = node.id
            self.alive.append(tensor)
        return node.id

    def sources(self, obj: Any) -> list[int]:
        """Node ids of the tracked tensors in ``obj`` (a leaf's inner tensors count as tracked)."""
        return [self.node_of[id(t)] for t in _tensors(obj) if id(t) in self.node_of]

    # -- torch functions between layers -----------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, Tensor) and not (isinstance(out, (tuple, list)) and out
                                                and all(isinstance(o, Tensor) for o in out)):
            return out
        name = _func_name(func)
        inputs = self.sources((args, kwargs))
        if not inputs:
            return out
        if self.leaf:  # inside an opaque leaf layer: remember what it does, record no node
            self.leaf[-1][2].append((name, _op_info(name, args, kwargs)))
            for t in _tensors(out):  # so the leaf's next step still counts as reading the input
                self.node_of[id(t)] = _INSIDE_LEAF
                self.alive.append(t)
            return out
        if name in _TRANSPARENT:
            for t in _tensors(out):
                self.node_of[id(t)] = inputs[0]
                self.alive.append(t)
            return out
        self.add_node("op", name, inputs, out, info=_op_info(name, args, kwargs))
        return out

    # -- module calls -------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        if self.leaf:  # a module called inside a leaf's forward: part of that leaf
            self.leaf.append((module, (), []))
            return
        inputs = tuple(self.sources(args))
        if next(module.children(), None) is None and module is not self.model:
            self.leaf.append((module, inputs, []))
            return
        parent = self.stack[-1] if self.stack else None
        call = Call(len(self.calls), self.names.get(module, type(module).__name__), module, parent,
                    input_node=inputs[0] if inputs else None)
        self.calls.append(call)
        if parent is not None:
            self.calls[parent].children.append(call.index)
            self.calls[parent].order.append(("call", call.index))
        self.stack.append(call.index)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.leaf:
            leaf, inputs, inner = self.leaf.pop()
            if self.leaf:  # nested inside another leaf: fold into it
                self.leaf[-1][2].extend(inner)
                return
            n = self.counts.get(id(leaf), 0)
            self.counts[id(leaf)] = n + 1
            # a leaf that hands back its input untouched (an empty nn.Sequential) passes it through
            passthrough = not inner and any(o is a for o in _tensors(output) for a in _tensors(args))
            self.add_node("module", self.names.get(leaf, type(leaf).__name__), inputs, output,
                          module=leaf, call=n, inner=inner, info={"passthrough": passthrough})
            return
        index = self.stack.pop()
        found = self.sources(output)
        self.calls[index].output_node = found[0] if found else None

    @contextlib.contextmanager
    def hooked(self) -> Iterator[None]:
        for module in self.names:
            self.handles.append(module.register_forward_pre_hook(self.pre_hook))
            self.handles.append(module.register_forward_hook(self.post_hook))
        try:
            yield
        finally:
            for h in self.handles:
                h.remove()


def default_input_shape(model: nn.Module, size: int = 32) -> tuple[int, ...]:
    """A one-example input shape read from the first weight layer: ``(C, size, size)``
    for a 2-d conv, ``(C, size)`` for a 1-d conv, ``(in_features,)`` for a linear layer.

    Raises ValueError when the model has no conv or linear layer to read it from.
    """
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return (m.in_channels, size, size)
        if isinstance(m, nn.Conv1d):
            return (m.in_channels, size)
        if isinstance(m, nn.Linear):
            return (m.in_features,)
    raise ValueError(
        f"cannot guess an input for {type(model).__name__}: it has no Conv or Linear layer; "
        "pass input_shape=(C, H, W)"
    )


def _batched(shape: Sequence[int]) -> tuple[int, ...]:
    """``(C, H, W)`` -> ``(1, C, H, W)``; a 4-d shape is taken as already batched."""
    if not isinstance(shape, (tuple, list, torch.Size)) or not shape or not all(
        isinstance(s, int) and s > 0 for s in shape
    ):
        raise ValueError(f"input_shape must be positive ints like (3, 224, 224), got {shape!r}")
    shape = tuple(shape)
    return shape if len(shape) == 4 else (1,) + shape


def trace_graph(model: nn.Module, input_shape: Sequence[int]) -> Trace:
    """Run ``model`` once on a random input of ``input_shape`` and record its data flow.

    ``input_shape`` is one example's shape, ``(C, H, W)`` (a batch of one is
    made), or a 4-d ``(N, C, H, W)``. The model runs in eval mode under
    ``no_grad``; its modes are restored and every hook removed afterwards.

    Raises ValueError naming the module the forward pass failed in.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    x = make_input(model, _batched(input_shape))
    rec = _Recorder(model)
    # one thread: the traced input is small, and on a busy machine more threads only wait for each other
    with frozen(model), rec.hooked(), torch_threads(1):
        rec.add_node("input", "input", (), x)
        try:
            with rec:
                model(x)
        except (RuntimeError, ValueError, IndexError, TypeError) as err:
            where = rec.calls[rec.stack[-1]].name if rec.stack else type(model).__name__
            if rec.leaf:
                where = rec.names.get(rec.leaf[0][0], type(rec.leaf[0][0]).__name__)
            raise ValueError(
                f"cannot draw {type(model).__name__}: its forward pass failed in module "
                f"{where or '(the model)'!r} on input shape {tuple(x.shape)}: {err}. "
                "Pass an input_shape the model accepts."
            ) from err
    rec.calls[0].input_node = 0
    return Trace(model, rec.nodes, rec.calls, tuple(x.shape))
