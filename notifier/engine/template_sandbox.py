"""The sandbox staff-written templates run in, with a bound on the work and the size of one rendering.

jinja2's sandbox stops a template from reaching Python's internals, but not from working for ever or filling
the memory: two nested ``range(100000)`` loops, ``'x' * 10**9``, ``10**10**10``, ``'x'|center(10**9)``, a
macro calling itself twice, ``a~a`` repeated. Every rendering of a staff template (a template slot, a roster
notice's body) runs on the event loop, so one such template would stop every request and the engine.

``BoundedSandbox`` meters each rendering (``render_bounded``):

- work: every loop iteration costs its body's weight (a step per node in it: what runs unmetered in it, a
  comparison or an ``if``, is paid for), so does each run of a macro or call block; a recursive loop's
  iteration, an attribute or item read and a filter cost a step, a call (a macro, a method, ``caller()``)
  ``CALL_STEPS``, and a text or list a template makes its length; a rendering gets ``MAX_WORK``, counted the
  same on every machine, and at most ``MAX_SECONDS`` of the thread's processor time, checked at every step: a
  backstop that a template within the step count does not come near (processor time, not the clock, so a
  machine too busy to run the process does not fail a template, nor cancel the notice rendering it);
- size: no text or list made by an operator (``*``, ``+``, ``%``, ``~``), a filter or a method may exceed
  ``MAX_SIZE`` characters or items, refused *before* it is made where its size can be told in advance
  (``*``, ``+``, ``**``, ``center``, ``indent``, ``batch``, ``slice``, ``replace``, widths in ``%`` and
  ``format``), and an integer may not exceed ``MAX_INT_BITS`` bits;
- output: a rendering is at most ``MAX_SIZE`` characters;
- lists and dicts cannot be changed in place (``ImmutableSandboxedEnvironment``): ``l.extend(l)`` in a loop
  would double it unmetered; ``lipsum`` (n paragraphs of filler) is not offered.

Going past a bound raises ``TemplateLimit`` (a ``SecurityError``, so a ``TemplateError``): the save, the
notice or the preview is refused naming the bound, as any other failing template is.

One request renders many sources: a save checks every slot of every language (up to 90), a notice renders
every channel kind in every language, a preview does that and more. Each within its own bounds, together they
would still hold a processor for most of a minute, so a request's renderings share a ``RenderBudget``
(``request_budget``, set for every HTTP request): ``MAX_REQUEST_WORK`` steps and ``MAX_REQUEST_SECONDS`` of
processor time in all. Past it, ``RequestBudgetSpent`` (a ``TemplateLimit``). The engine's own renderings
(the fan-out) run outside any request and have the bounds of each rendering only.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import Template, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_WORK = 300_000
CALL_STEPS = 10  # a call (a macro's above all) costs about ten loop iterations
MAX_SECONDS = 0.5
MAX_REQUEST_WORK = 3 * MAX_WORK
MAX_REQUEST_SECONDS = 3 * MAX_SECONDS
MAX_SIZE = 100_000
MAX_INT_BITS = 4096
_STEP = "__metered_loop"
_CONCAT = "__metered_concat"
_SPEND = "__metered_spend"
_WIDTH = re.compile(r"[0-9]+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?")

__all__ = [
    "MAX_INT_BITS",
    "MAX_REQUEST_SECONDS",
    "MAX_REQUEST_WORK",
    "MAX_SECONDS",
    "MAX_SIZE",
    "MAX_WORK",
    "BoundedSandbox",
    "RenderBudget",
    "RequestBudgetSpent",
    "TemplateLimit",
    "render_bounded",
    "request_budget",
]


class TemplateLimit(SecurityError):
    """A rendering went past one of the sandbox's bounds on work, size or output."""


class RequestBudgetSpent(TemplateLimit):
    """The renderings of one request together went past its ``RenderBudget``."""


class RenderBudget:
    """What all the renderings of one request may spend together; each rendering takes its share when it ends."""

    def __init__(self, work: int = MAX_REQUEST_WORK, seconds: float = MAX_REQUEST_SECONDS) -> None:
        self.work, self.seconds = work, seconds
        self.work_left, self.seconds_left = work, seconds

    def take(self, work: int, seconds: float) -> None:
        self.work_left = max(0, self.work_left - work)
        self.seconds_left = max(0.0, self.seconds_left - seconds)

    def spent(self, what: str) -> RequestBudgetSpent:
        if what == "work":
            bound = f"do too much work (more than {self.work:,} steps"
        else:
            bound = f"take too long (more than {self.seconds} s of processor time"
        return RequestBudgetSpent(f"the request's templates together {bound}, counting every text it renders)")


class _Meter:
    def __init__(self, budget: RenderBudget | None) -> None:
        self.work = 0
        self.budget = budget
        self.max_work = MAX_WORK if budget is None else min(MAX_WORK, budget.work_left)
        seconds = MAX_SECONDS if budget is None else min(MAX_SECONDS, budget.seconds_left)
        # the thread's processor time, not the clock: a process paused by a busy machine is not the template's doing
        self.started = time.thread_time()
        self.deadline = self.started + seconds

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > self.max_work:
            if self.max_work < MAX_WORK and self.budget is not None:
                raise self.budget.spent("work")
            raise TemplateLimit(f"the template does too much work (more than {MAX_WORK:,} steps)")
        if time.thread_time() >= self.deadline:
            if self.deadline - self.started < MAX_SECONDS and self.budget is not None:
                raise self.budget.spent("seconds")
            raise TemplateLimit(f"the template takes more than {MAX_SECONDS} s of processor time to render")

    def settle(self) -> None:
        if self.budget is not None:
            self.budget.take(self.work, time.thread_time() - self.started)


_METER: ContextVar[_Meter | None] = ContextVar("template_meter", default=None)
_BUDGET: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


@contextmanager
def request_budget(budget: RenderBudget | None = None) -> Iterator[RenderBudget]:
    """Every rendering inside (in this context, and in the render threads it hands renderings to: see
    ``engine.render_threads``) spends from ``budget`` (a fresh ``RenderBudget`` by default)."""
    budget = budget or RenderBudget()
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def _spend(units: int) -> None:
    meter = _METER.get()
    if meter is None:
        raise TemplateLimit("a staff template is rendered only through render_bounded")
    meter.spend(units)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 0


def _made(value: Any) -> Any:
    """``value`` after charging its size and refusing it past ``MAX_SIZE``."""
    size = _size(value)
    if size > MAX_SIZE:
        raise TemplateLimit(f"the template makes a text or list of {size:,} (at most {MAX_SIZE:,})")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"the template makes a number of more than {MAX_INT_BITS} bits")
    _spend(1 + size)
    return value


def _refuse_size(size: int) -> None:
    if size > MAX_SIZE:
        raise TemplateLimit(f"the template would make a text or list of {size:,} (at most {MAX_SIZE:,})")


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else int(value) if isinstance(value, int) else 0


def _counted(iterable: Iterable[Any], weight: int = 1) -> Iterator[Any]:
    for item in iterable:
        _spend(weight)
        yield item


def _weight(body: list[nodes.Node]) -> int:
    """What one run of ``body`` costs at least: one step per node, since most nodes (a comparison, a test, an
    ``if``) are not metered where they run, and a body can hold thousands of them."""
    return 1 + sum(1 + sum(1 for _ in node.find_all(nodes.Node)) for node in body)


def _charge(units: int) -> str:
    _spend(units)
    return ""


@pass_eval_context
def _concat(eval_ctx: EvalContext, *parts: Any) -> str:
    for part in parts:
        _refuse_size(_size(part))
    joined: str = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    return _made(joined)  # type: ignore[no-any-return]


class _Metering(NodeTransformer):
    """Every ``for`` iterates through ``_counted``; the body of every loop, macro and call block charges its
    weight each time it runs; every ``~`` joins through ``_concat``."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        """Each item costs the weight of the loop's ``if`` test; each run of the body (a recursive loop's too)
        the body's weight."""
        test = nodes.Const(_weight([] if node.test is None else [node.test]), lineno=node.lineno)
        node.iter = nodes.Call(nodes.Name(_STEP, "load"), [node.iter, test], [], None, None, lineno=node.lineno)
        return self._charged(node)

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._charged(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._charged(node)

    def _charged(self, node: nodes.For | nodes.Macro | nodes.CallBlock) -> nodes.Node:
        """A body that first spends its weight each time it runs."""
        self.generic_visit(node)
        spend = nodes.Call(
            nodes.Name(_SPEND, "load"), [nodes.Const(_weight(node.body))], [], None, None, lineno=node.lineno
        )
        node.body = [nodes.Output([spend], lineno=node.lineno), *node.body]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_CONCAT, "load"), list(node.nodes), [], None, None, lineno=node.lineno)


def _percent_problem(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for width in match.groups():
            if width == "*":
                raise TemplateLimit("a width taken from the arguments (*) is not allowed in a template")
            if width is not None and int(width) > MAX_SIZE:
                raise TemplateLimit(f"a width of {int(width):,} (at most {MAX_SIZE:,})")


def _format_problem(fmt: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and "{" in spec:
            raise TemplateLimit("a width taken from the arguments ({}) is not allowed in a template")
        for width in _WIDTH.findall(spec or ""):
            if int(width) > MAX_SIZE:
                raise TemplateLimit(f"a width of {int(width):,} (at most {MAX_SIZE:,})")


def _before_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
    """Refuse a string method whose result would pass ``MAX_SIZE``, before it runs."""
    if name in {"center", "ljust", "rjust", "zfill"} and args:
        _refuse_size(_width(args[0]))
    elif name == "expandtabs":
        _refuse_size(len(text) + text.count("\t") * _width(args[0] if args else 8))
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _refuse_size(len(text) + (text.count(args[0]) if args[0] else len(text) + 1) * len(args[1]))
    elif name in {"format", "format_map"}:
        _format_problem(text)
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        _refuse_size(sum(_size(item) for item in args[0]) + len(text) * len(args[0]))


def _before_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a filter whose result would pass ``MAX_SIZE``, before it runs (args: value first)."""
    value = args[0] if args else None
    rest = list(args[1:]) + list(kwargs.values())
    if name in {"center", "indent"} and rest:
        lines = str(value).count("\n") + 1 if name == "indent" else 1
        _refuse_size(_size(str(value)) + _width(rest[0]) * lines)
    elif name in {"batch", "slice"} and rest:
        _refuse_size(_width(rest[0]))
    elif name == "replace" and len(rest) >= 2:
        _before_str_method(str(value), "replace", (str(rest[0]), str(rest[1])))
    elif name == "format" and isinstance(value, str):
        _percent_problem(value)


def _metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passed = getattr(func, "jinja_pass_arg", None)

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        _before_filter(name, args[1:] if passed is not None else args, kwargs)
        return _made(func(*args, **kwargs))

    return run


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, metered: see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.globals[_STEP] = _counted
        self.globals[_CONCAT] = _concat
        self.globals[_SPEND] = _charge
        self.filters = {name: _metered_filter(name, func) for name, func in self.filters.items()}

    def compile(self, source: Any, name: str | None = None, filename: str | None = None, *args: Any) -> Any:
        if isinstance(source, str):
            source = _Metering().visit(self.parse(source, name, filename))
        return super().compile(source, name, filename, *args)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if _size(sized) and isinstance(count, int):
                    _refuse_size(_size(sized) * count)
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise TemplateLimit(f"the template makes a number of more than {MAX_INT_BITS} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * left.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"the template makes a number of more than {MAX_INT_BITS} bits")
        elif operator == "+" and _size(left) and _size(right):
            _refuse_size(_size(left) + _size(right))
        elif operator == "%" and isinstance(left, str):
            _percent_problem(left)
        return _made(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (_counted(args[0]), *args[1:])
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            _before_str_method(owner, getattr(method, "__name__", ""), args)
        _spend(CALL_STEPS)
        return _made(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend(1)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend(1)
        return super().getitem(obj, argument)


def render_bounded(template: Template, context: Mapping[str, Any]) -> str:
    """``template`` rendered with ``context`` inside the bounds (TemplateLimit past one), and inside the budget of
    the request rendering it, if any (RequestBudgetSpent past it)."""
    meter = _Meter(_BUDGET.get())
    token = _METER.set(meter)
    try:
        size = 0
        chunks = []
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_SIZE:
                raise TemplateLimit(f"the template writes more than {MAX_SIZE:,} characters")
            _spend(1 + len(chunk))
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        meter.settle()
        _METER.reset(token)
