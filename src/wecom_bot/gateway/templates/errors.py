"""Template errors: what went wrong, where (line, and the column when Jinja shows it),
and the reason in plain words for the people who wrote the template."""

from __future__ import annotations

import re

import jinja2
import jinja2.lexer
import jinja2.parser

from ...errors import ConfigError

__all__ = [
    "TemplateError",
    "TemplateLimitError",
    "TemplateRenderError",
    "line_of",
    "plain_reason",
    "syntax_error",
]


class TemplateError(ConfigError):
    """A template is unusable: unknown, or a syntax error (the message names it and the line).

    Attributes:
        template: the template's name.
        line: the line of the problem, if known.
        column: the column of a syntax error (1 for the first character), when the position
            Jinja stopped at shows it; never guessed, so ``None`` for most errors.
        reason: what is wrong in plain words, without the template's name, the line or any
            exception class name: for people who wrote the template (the console's playground).
            The message (``str()``) keeps the details for logs.
    """

    def __init__(
        self,
        message: str,
        *,
        template: str,
        line: int | None = None,
        column: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.template = template
        self.line = line
        self.column = column
        self.reason = reason if reason is not None else message

    @property
    def in_words(self) -> str:
        """The error as its template's author reads it, for ``gateway check`` and dead
        letters: ``template 'mine': unknown variable 'alert.lables' (did you mean 'labels'?)
        at line 3`` (no exception class name; the message keeps those for logs)."""
        where = f" at line {self.line}" if self.line is not None else ""
        where += f", column {self.column}" if self.line is not None and self.column else ""
        return f"template {self.template!r}: {self.reason}{where}"


class TemplateRenderError(TemplateError):
    """A template failed while rendering a notification (or rendered nothing)."""


class TemplateLimitError(TemplateRenderError):
    """A render went past a bound of its :class:`~.sandbox.RenderLimits` (time, size, memory)
    and was stopped; the message names the bound."""


_UNEXPECTED_CHAR = re.compile(r"unexpected char (.+) at ([0-9]+)")
# Tokens whose value is not the text as written (quotes, escapes, numbers) or that span lines.
_UNWRITTEN_TOKENS = frozenset({"string", "integer", "float", "data", "eof"})


def syntax_error(exc: jinja2.TemplateSyntaxError, env: jinja2.Environment) -> TemplateError:
    """A Jinja syntax error as a :class:`TemplateError` (``exc.name`` is the template's name)."""
    name = exc.name or "?"
    reason, column = _syntax_position(exc, env)
    return TemplateError(
        f"template {name!r}, line {exc.lineno}: {exc.message}",
        template=name,
        line=exc.lineno,
        column=column,
        reason=reason,
    )


def _syntax_position(
    exc: jinja2.TemplateSyntaxError, env: jinja2.Environment
) -> tuple[str, int | None]:
    """The plain reason of a syntax error and its column, where Jinja's position shows it."""
    message = exc.message or "syntax error"
    if exc.source is None:
        return message, None
    # Jinja's lexer counts offsets in the text with every line break made "\n".
    text = exc.source.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    char = _UNEXPECTED_CHAR.fullmatch(message)
    if char is not None:
        offset = int(char.group(2))
        start = text.rfind("\n", 0, offset) + 1
        on_line = text.count("\n", 0, offset) + 1 == exc.lineno
        return f"unexpected character {char.group(1)}", offset - start + 1 if on_line else None
    return message, _token_column(exc, env, text, lines)


def _token_column(
    exc: jinja2.TemplateSyntaxError, env: jinja2.Environment, text: str, lines: list[str]
) -> int | None:
    """Where the token the parser stopped at starts, if the error is about that token.

    Jinja keeps lines, not columns: parse again, take the token the parser was looking at, and
    give its column only when the message names it, it sits on the error's line and its text
    occurs once on that line. Errors of the lexer (the parser is a token behind) and of the
    compiler (an unknown filter) fail these tests and get no column.
    """
    parser = jinja2.parser.Parser(env, text, exc.name)
    try:
        parser.parse()
    except jinja2.TemplateSyntaxError as again:
        if again.lineno != exc.lineno or again.message != exc.message:
            return None
    except Exception:  # e.g. nesting too deep to parse twice
        return None
    else:
        return None
    token = parser.stream.current
    if (
        token.type in _UNWRITTEN_TOKENS
        or token.lineno != exc.lineno
        or not 0 < token.lineno <= len(lines)
    ):
        return None
    if f"'{jinja2.lexer.describe_token(token)}'" not in (exc.message or ""):
        return None
    written = str(token.value).rstrip()
    line = lines[token.lineno - 1]
    if not written or "\n" in written or line.count(written) != 1:
        return None
    return line.index(written) + 1


_OBJECT = re.compile(r"'(?:\w+\.)*(\w+)(?: object'|' object)|\b(?:\w+\.)*(\w+) object\b")
_NOUNS = {
    "AlertView": "an alert",
    "NotificationView": "the notification",
    "UntrustedMap": "a mapping",
    "dict": "a mapping",
    "Untrusted": "a text",
    "str": "a text",
    "int": "a number",
    "float": "a number",
    "list": "a list",
    "tuple": "a list",
    "NoneType": "nothing (none)",
    "None": "nothing (none)",
    "bool": "true or false",
    "Undefined": "an undefined value",
}
_OPERANDS = re.compile(r"unsupported operand type\(s\) for (.+): '(\w+)' and '(\w+)'")
_CONCAT = re.compile(r'can only concatenate str \(not "(\w+)"\) to str')
_UNDEFINED_NAME = re.compile(r"'(\w+)' is undefined")


def _noun(type_name: str) -> str:
    return _NOUNS.get(type_name, "a value")


def plain_reason(exc: BaseException) -> str:
    """What went wrong in a render, in words for the template's author: Python's and Jinja's
    text with type names said in plain words, and no exception class name."""
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"no template named {exc.name!r}"
    if isinstance(exc, KeyError) and exc.args:
        return f"no key {exc.args[0]!r}"
    text = str(exc)
    operands = _OPERANDS.fullmatch(text)
    if operands is not None:
        left, right = _noun(operands.group(2)), _noun(operands.group(3))
        return f"cannot use {operands.group(1)} between {left} and {right}"
    undefined = _UNDEFINED_NAME.fullmatch(text)
    if undefined is not None:
        return f"unknown variable {undefined.group(1)!r}"
    concat = _CONCAT.fullmatch(text)
    if concat is not None:
        return f"cannot add {_noun(concat.group(1))} to a text (join texts with ~)"
    text = _OBJECT.sub(lambda m: _noun(m.group(1) or m.group(2)), text)
    # Jinja looks a missing key up as an attribute too, and names only the attribute.
    text = text.replace("a mapping has no attribute", "a mapping has no key")
    return text or "the template failed"


def line_of(exc: BaseException) -> int | None:
    """The template line a runtime error came from (Jinja rewrites tracebacks to show it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<template "):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
