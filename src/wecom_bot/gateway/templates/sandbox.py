"""The Jinja2 sandbox templates run in, and the bounds of one render.

Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` keeps a template away from Python's
internals, but not from the machine: ``{{ 'x' * 200000000 }}``, ``ljust(1000000000)``, a list
that doubles itself forty times or two nested ``range(100000)`` loops each take the memory or
the time of the whole process. :class:`Sandbox` adds bounds that hold *while* a render runs,
described by :class:`RenderLimits`:

* an operation that would build a string or a sequence longer than ``max_text`` (characters
  or items) is refused before it runs: ``*`` on strings and lists, padding and format widths
  (``ljust``, ``center``, ``zfill``, ``"{:>N}"``, ``"%Ns"``, ``|center``, ``|indent``,
  ``|format``), ``join``, ``replace``, ``batch``/``slice`` sizes, ``~`` and ``+`` results, and
  the growth of a list, dict or set through ``append``/``extend``/``update``...;
* everything built is charged to a budget of ``max_built`` characters and items per render
  (a list of the same long string repeated weighs every copy), so memory is bounded even when
  no single operation is large;
* loop iterations, calls and filters are counted against ``max_steps``, and the clock is
  checked as they run against ``timeout``;
* big integers stay small (``10 ** 10 ** 8`` is refused, not computed).

A bound that is hit raises :class:`RenderLimitError`, naming the bound. Outside a render
(``Sandbox.metered`` not active), the up-front refusals still apply, which also keeps Jinja from
folding a hostile constant expression while it compiles the template.

These bounds are in-process; :mod:`.render_pool` adds the hard ones (a worker
process with an address-space limit, killed at its deadline) for templates the gateway did not
write itself.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg, pass_context

from .untrusted import Untrusted, UntrustedMap, UntrustedMethod

__all__ = [
    "RenderLimitError",
    "RenderLimits",
    "Sandbox",
    "UnknownAttribute",
    "ViewSandbox",
    "unmetered",
]


@dataclass(frozen=True)
class RenderLimits:
    """The bounds of one render.

    Attributes:
        timeout: seconds of wall-clock time one render may take.
        max_text: the longest string (characters) or sequence (items) one operation may build.
        max_built: characters and items all operations of one render may build together.
        max_steps: loop iterations, calls and filters one render may make.
    """

    timeout: float = 5.0
    max_text: int = 1_000_000
    max_built: int = 32_000_000
    max_steps: int = 5_000_000

    def __post_init__(self) -> None:
        for name in ("timeout", "max_text", "max_built", "max_steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, not {getattr(self, name)!r}")


class RenderLimitError(Exception):
    """A render went past one of its :class:`RenderLimits` (the message names which)."""


_MAX_INT_BITS = 4096 * 8
"""Integers a template computes stay below this many bits (Python prints 4,300 digits at most)."""
_CLOCK_EVERY = 256
"""Steps between two looks at the clock."""
_LARGE_BUILD = 64 * 1024
"""A build this large (characters or items) looks at the clock too."""


class _Budget:
    __slots__ = ("built", "deadline", "limits", "steps")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout
        self.steps = 0
        self.built = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps % _CLOCK_EVERY == 0:
            if self.steps > self.limits.max_steps:
                raise RenderLimitError(
                    f"more than {self.limits.max_steps} steps (loop iterations, calls, filters)"
                )
            if time.monotonic() > self.deadline:
                raise RenderLimitError(f"took longer than {self.limits.timeout:g} s")

    def charge(self, size: int) -> None:
        self.built += size
        if self.built > self.limits.max_built:
            raise RenderLimitError(
                f"built more than {self.limits.max_built} characters and items in all"
            )
        # A large build took time of its own: a few of them can outlast the timeout long
        # before the step count reaches the next look at the clock.
        if size >= _LARGE_BUILD and time.monotonic() > self.deadline:
            raise RenderLimitError(f"took longer than {self.limits.timeout:g} s")


_budget: ContextVar[_Budget | None] = ContextVar("wecom_bot_render_budget", default=None)


def _step() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.step()


def _charge(size: int) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.charge(size)


_SIZED = (str, Untrusted, list, tuple, dict, set, frozenset, UntrustedMap)


def _length(value: Any) -> int:
    """Characters of a string, items of a container; 0 for anything else."""
    if type(value) is str or isinstance(value, _SIZED):
        return len(value)
    return 0


def _weight(value: Any) -> int:
    """What ``value`` holds: its length, plus the text of the strings directly inside it."""
    if isinstance(value, list | tuple | set | frozenset):
        return len(value) + sum(len(v) for v in value if isinstance(v, str | Untrusted))
    return _length(value)


def _int_arg(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


_VIEW_NAMES = {
    "AlertView": "alert",
    "NotificationView": "notification",
    "GroupView": "group",
    "SectionView": "section",
    "EntryLine": "line",
}
"""What the templates call each view (the loop variable of the built-in ones)."""


class UnknownAttribute(StrictUndefined):
    """An attribute a gateway view does not have (``alert.lables``): an error when used.

    A view's attributes are fixed, so a missing one is a misspelling, never an alert without
    that field: it fails the render (``gateway check`` and the playground show it before a
    notification meets it) instead of printing nothing. ``is defined`` and ``|default`` still
    answer quietly. The message is in the template's words, with the closest attribute.
    """

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        kind = type(obj).__name__
        message = f"unknown variable '{_VIEW_NAMES.get(kind, kind)}.{name}'"
        known = [a for a in dir(type(obj)) if not a.startswith("_")]
        known += [a for a in vars(obj) if not a.startswith("_")] if hasattr(obj, "__dict__") else []
        close = difflib.get_close_matches(str(name), sorted(set(known)), n=1, cutoff=0.6)
        return f"{message} (did you mean {close[0]!r}?)" if close else message


class ViewSandbox(SandboxedEnvironment):
    """Jinja's sandbox, with a fast path for the gateway's view objects and no metering.

    The gateway's own templates run here: their text is trusted and their work is bounded by
    the payload they render (itself bounded by ``max_body_bytes``), so they skip the cost of
    :class:`Sandbox`'s bounds. The values they see are untrusted all the same.

    Args:
        fast_types: types whose public attributes hold plain data (the gateway's views):
            looked up without the sandbox's per-access checks; private ones stay unreachable.
        **options: :class:`jinja2.Environment` options.
    """

    def __init__(self, *, fast_types: tuple[type, ...] = (), **options: Any) -> None:
        self.fast_types = fast_types
        super().__init__(**options)

    def metered(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to count here (see :meth:`Sandbox.metered`)."""
        return contextlib.nullcontext()

    def getattr(self, obj: Any, attribute: str) -> Any:
        """See :meth:`jinja2.sandbox.SandboxedEnvironment.getattr`."""
        if type(obj) in self.fast_types and not attribute.startswith("_"):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                return UnknownAttribute(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class Sandbox(ViewSandbox):
    """The sandbox templates the gateway did not write run in: with the bounds of
    :class:`RenderLimits`.

    Args:
        limits: the bounds of every render run under :meth:`metered`.
        fast_types: see :class:`ViewSandbox`.
        **options: :class:`jinja2.Environment` options.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(
        self, *, limits: RenderLimits, fast_types: tuple[type, ...] = (), **options: Any
    ) -> None:
        self.limits = limits
        options.setdefault("finalize", self._finalize)
        super().__init__(fast_types=fast_types, **options)
        self.code_generator_class = _MeteredCodeGenerator
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) builds without looking back
        self.globals["range"] = self._range

    @contextmanager
    def metered(self) -> Iterator[None]:
        """Count and bound what the renders inside the block do (one budget for the block)."""
        token = _budget.set(_Budget(self.limits))
        try:
            yield
        finally:
            _budget.reset(token)

    # -- checks -----------------------------------------------------------------------

    def _fits(self, size: int, what: str) -> None:
        if size > self.limits.max_text:
            raise RenderLimitError(
                f"{what} of {size} would be longer than {self.limits.max_text} (max_text)"
            )

    def _built(self, value: Any, what: str = "a result") -> Any:
        size = _length(value)
        if size:
            self._fits(size, what)
            _charge(size)
        return value

    def _check_percent(self, fmt: Any, args: Any) -> None:
        if not isinstance(fmt, str | Untrusted):
            return
        star = False
        for match in _PERCENT_SPEC.finditer(str(fmt)):
            for part in match.groups():
                if part == "*":
                    star = True
                elif part:
                    self._fits(int(part), "a format width")
        if star:
            values = args if isinstance(args, tuple) else (args,)
            for value in values:
                self._fits(_int_arg(value), "a format width")

    def _check_format(self, fmt: str, args: Iterable[Any]) -> None:
        nested = False
        try:
            fields = list(string.Formatter().parse(fmt))
        except ValueError:
            return  # str.format raises it again, with its own message
        for _, _, spec, _ in fields:
            if spec:
                nested = nested or "{" in spec
                for digits in _DIGITS.findall(spec):
                    self._fits(int(digits), "a format width")
        if nested:
            for value in args:
                self._fits(_int_arg(value), "a format width")

    def _check_method(self, receiver: Any, name: str, args: tuple[Any, ...]) -> None:
        text = str(receiver._raw if isinstance(receiver, Untrusted) else receiver)
        first = _int_arg(args[0]) if args else 0
        if name in ("ljust", "rjust", "center", "zfill"):
            self._fits(first, f"{name}()")
        elif name == "expandtabs":
            self._fits(len(text) + text.count("\t") * (_int_arg(args[0]) if args else 8), name)
        elif name == "replace" and len(args) >= 2:
            old, new = (str(a) for a in args[:2])
            count = len(text) + 1 if not old else text.count(old)
            self._fits(len(text) + count * len(new), "replace()")
        elif name == "join" and args:
            self._check_join(args[0], len(text))

    def _check_join(self, items: Any, separator: int) -> None:
        if isinstance(items, list | tuple | set | frozenset):
            self._fits(_weight(items) + separator * len(items), "join()")

    # -- interception -----------------------------------------------------------------

    # Look-ups are not counted: whatever repeats them is a loop, a call or a filter, which are.
    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``%`` and ``+``, refused when their result would be too large."""
        _step()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if _length(seq) and isinstance(times, int):
                    self._fits(_length(seq) * max(times, 0), "a repeated sequence")
                    _charge(_weight(seq) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                    raise RenderLimitError(f"an integer of more than {_MAX_INT_BITS} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right * left.bit_length() > _MAX_INT_BITS:
                raise RenderLimitError(f"an integer of more than {_MAX_INT_BITS} bits")
        elif operator == "%":
            self._check_percent(left, right)
        result = self.binop_table[operator](left, right)
        return self._built(result) if operator != "*" else result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call from a template: refused up front when it would build too much."""
        _step()
        if isinstance(__obj, UntrustedMethod):
            __self._check_method(__obj.receiver, __obj.name, args)
        else:
            receiver = getattr(__obj, "__self__", None)
            name = getattr(__obj, "__name__", "")
            if isinstance(receiver, str) and isinstance(name, str):
                __self._check_method(receiver, name, args)
        result = super().call(__context, __obj, *args, **kwargs)
        receiver = getattr(__obj, "__self__", None)
        if isinstance(receiver, list | dict | set) and not isinstance(__obj, type):
            # append/extend/update... grow their receiver in place
            __self._fits(len(receiver), "a growing collection")
            _charge(sum(_weight(a) for a in args) + sum(_weight(v) for v in kwargs.values()))
        return __self._built(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``: refused when a width would build too much."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = str(value.__self__)

        def bounded(*args: Any, **kwargs: Any) -> str:
            self._check_format(fmt, [*args, *kwargs.values()])
            return str(self._built(wrapper(*args, **kwargs)))

        return bounded

    def _range(self, *args: int) -> Iterator[int]:
        rng = range(*args)
        self._fits(len(rng), "range()")
        return iter(rng)

    def metered_iter(self, iterable: Any) -> Iterator[Any]:
        """What a ``{% for %}`` loop iterates: every iteration is a step."""
        for item in iterable:
            _step()
            yield item

    def metered_text(self, text: str) -> str:
        """The result of ``~`` (checked once built: it is at most as long as its parts)."""
        return str(self._built(text, "a joined text"))

    def _finalize(self, value: Any) -> Any:
        # Every {{ }} value passes here, in macros and {% set %} blocks too, where the
        # output cap of the top level does not reach.
        text = value if type(value) is str else str(value)
        _charge(len(text))
        return text

    # -- filters and tests ---------------------------------------------------------------

    def bound_filters(self) -> None:
        """Wrap every filter and test: each call is a step, none runs while compiling, and
        the filters that build by a size argument are refused up front when it is too large.

        Call it once the filters are installed."""
        checks: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], None]] = {
            "center": lambda a, k: self._fits(_int_arg(a[1] if len(a) > 1 else 0), "center"),
            "indent": lambda a, k: self._fits(
                _length(a[0])
                + _int_arg(a[1] if len(a) > 1 else k.get("width", 0)) * (str(a[0]).count("\n") + 1),
                "indent",
            ),  # fmt: skip
            "format": lambda a, k: self._check_percent(a[0], tuple(a[1:]) or k),
            "join": lambda a, k: self._check_join(
                a[0], len(str(a[1] if len(a) > 1 else k.get("d", "")))
            ),
            "batch": lambda a, k: self._fits(_int_arg(a[1] if len(a) > 1 else 0), "batch"),
            "slice": lambda a, k: self._fits(_int_arg(a[1] if len(a) > 1 else 0), "slice"),
            "tojson": lambda a, k: self._fits(
                _int_arg(a[1] if len(a) > 1 else k.get("indent", 0)), "tojson indent"
            ),
            "replace": lambda a, k: self._check_method(a[0], "replace", tuple(a[1:3])),
            "wordwrap": lambda a, k: self._fits(_int_arg(a[1] if len(a) > 1 else 0), "wordwrap"),
        }
        for table in (self.filters, self.tests):
            for name, func in list(table.items()):
                table[name] = _metered(func, checks.get(name) if table is self.filters else None)
        self.filters["join"] = _metered_join(self.filters["join"], self)


def _metered(
    func: Callable[..., Any], check: Callable[[tuple[Any, ...], dict[str, Any]], None] | None
) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    def metered(context: Context, *args: Any, **kwargs: Any) -> Any:
        _step()
        if check is not None:
            check(args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, *args, **kwargs)
        else:
            result = func(*args, **kwargs)
        environment = context.environment
        return environment._built(result) if isinstance(environment, Sandbox) else result

    metered.metered_from = func  # type: ignore[attr-defined]  # see unmetered()
    return metered


def _metered_join(func: Callable[..., Any], env: Sandbox) -> Callable[..., Any]:
    # ``join`` takes any iterable: make it a list first so its size is known before joining.
    @pass_context
    def join(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list | tuple | str | Untrusted):
            value = list(env.metered_iter(value))
        return func(context, value, *args, **kwargs)

    join.metered_from = func  # type: ignore[attr-defined]
    return join


def unmetered(func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter or test a :class:`Sandbox` wrapped to count its steps and sizes."""
    while (inner := getattr(func, "metered_from", None)) is not None:
        func = inner
    return func


class _MeteredCodeGenerator(CodeGenerator):
    """Compiles ``{% for %}`` to iterate through :meth:`Sandbox.metered_iter` and ``~`` to pass
    its result through :meth:`Sandbox.metered_text`."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:  # noqa: N802
        if not getattr(node, "metered", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("metered_iter"),
                [node.iter],
                [],
                None,
                None,
                lineno=node.iter.lineno,
            )
            node.metered = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.metered_text(")
        super().visit_Concat(node, frame)
        self.write(")")
