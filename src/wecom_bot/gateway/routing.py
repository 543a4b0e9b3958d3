"""Routing notifications to bots, and who gets mentioned.

Matchers
    Alertmanager's syntax: ``name="value"``, ``name!="value"``, ``name=~"regex"``,
    ``name!~"regex"``. A regex must match the **whole** value (it is anchored as
    ``^(?:regex)$``, like Alertmanager's). A label that is absent reads as ``""``, so
    ``team=""`` matches notifications without a team and ``team!="db"`` matches them too.
    Values may be double-quoted (``\\"``, ``\\\\`` and ``\\n`` are unescaped; any other
    backslash is kept, so ``"db\\.example"`` is the regex you meant) or bare.

What a route matches on
    A notification is routed **as a whole**, on the labels every alert shares: its common
    labels, with the group labels on top (for Alertmanager they are a subset anyway), plus
    pseudo-labels ``__source__`` (``alertmanager``, ``grafana``, ``generic``),
    ``__receiver__`` and, for generic webhooks, ``__webhook__`` (the webhook name). Routing
    per alert would split one Alertmanager group into several messages and break the
    one-notification-one-message model that makes deduplication and digests simple. The
    consequence: route on labels you group by in Alertmanager (``group_by``); a label whose
    value differs between the alerts of a group is absent from the common labels.

Order
    Routes are tried in order; the first that matches wins, unless it has ``continue_``, in
    which case the later routes are tried too (Alertmanager's ``continue``). When no route
    matches, the default route takes the notification. Routes do not nest.

Resolved notifications
    :meth:`Router.match` ignores ``send_resolved``; :meth:`Route.select` applies it (and drops
    resolved alerts from a firing notification for a route that does not want them).

Mentions
    Who is mentioned comes **only** from configuration (:class:`MentionRules`): label values
    select entries of the configuration, they never name a person themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from .model import Notification

__all__ = [
    "MentionRules",
    "Mentions",
    "Matcher",
    "MsgType",
    "Operator",
    "Route",
    "Router",
    "mention_list",
    "parse_matchers",
    "routing_labels",
]

Operator = Literal["=", "!=", "=~", "!~"]
MsgType = Literal["markdown", "markdown_v2", "text"]
_MSGTYPES = ("markdown", "markdown_v2", "text")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|=")
_UNQUOTED = re.compile(r"[^\s,{}\"]*")
_QUOTED_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


@dataclass(frozen=True)
class Matcher:
    """One label matcher, as in Alertmanager.

    Attributes:
        name: the label name.
        op: ``=``, ``!=``, ``=~`` or ``!~``.
        value: the value, or the regular expression for ``=~`` and ``!~``.
    """

    name: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"matcher {self}: {self.name!r} is not a valid label name")
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ConfigError(f"matcher {self.name}{self.op}: unknown operator {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                regex = re.compile(self.value)
            except re.error as exc:
                raise ConfigError(f"matcher {self}: invalid regular expression: {exc}") from None
            object.__setattr__(self, "_regex", regex)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse one matcher, e.g. ``severity=~"critical|warning"`` or ``team=db``.

        Raises:
            ConfigError: the text is not exactly one valid matcher.
        """
        matchers = _Scanner(text).matchers(braces=False)
        if len(matchers) != 1:
            raise ConfigError(f"matcher {text!r}: expected exactly one matcher")
        return matchers[0]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this matcher (an absent label reads as ``""``)."""
        actual = labels.get(self.name, "")
        if self._regex is not None:
            found = self._regex.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


class _Scanner:
    """A small hand-written scanner: quoted values may hold commas, braces and operators."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> ConfigError:
        return ConfigError(f"matcher {self.text!r}: {problem} at position {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def matchers(self, *, braces: bool) -> list[Matcher]:
        self.skip_space()
        opened = braces and self.text.startswith("{", self.pos)
        if opened:
            self.pos += 1
        out: list[Matcher] = []
        while True:
            self.skip_space()
            if opened and self.text.startswith("}", self.pos):
                self.pos += 1
                break
            if self.pos >= len(self.text):
                if opened:
                    raise self.fail("missing closing }")
                break
            out.append(self.one())
            self.skip_space()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.pos < len(self.text) and not (opened and self.text[self.pos] == "}"):
                raise self.fail("expected , between matchers")
        self.skip_space()
        if self.pos != len(self.text):
            raise self.fail("unexpected text")
        return out

    def one(self) -> Matcher:
        name = _NAME.match(self.text, self.pos)
        if name is None:
            raise self.fail("expected a label name")
        self.pos = name.end()
        self.skip_space()
        op = _OPERATOR.match(self.text, self.pos)
        if op is None:
            raise self.fail("expected one of = != =~ !~")
        self.pos = op.end()
        self.skip_space()
        value = self.quoted() if self.text.startswith('"', self.pos) else self.unquoted()
        operator: Operator = op.group()  # type: ignore[assignment]
        try:
            return Matcher(name.group(), operator, value)
        except ConfigError as exc:
            raise ConfigError(f"matcher {self.text!r}: {exc}") from None

    def quoted(self) -> str:
        out: list[str] = []
        i = self.pos + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            if ch == "\\" and i + 1 < len(self.text):
                nxt = self.text[i + 1]
                out.append(_QUOTED_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.fail("unterminated quoted value")

    def unquoted(self) -> str:
        found = _UNQUOTED.match(self.text, self.pos)
        value = found.group() if found else ""
        self.pos += len(value)
        return value


def parse_matchers(spec: str | Iterable[str | Matcher]) -> tuple[Matcher, ...]:
    """Parse matchers from ``'{a="b", c=~"d"}'``, ``'a="b", c=~"d"'`` or a list of those.

    Raises:
        ConfigError: a matcher is malformed (the message quotes it).
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[Matcher] = []
    for item in items:
        if isinstance(item, Matcher):
            out.append(item)
        else:
            out.extend(_Scanner(item).matchers(braces=True))
    return tuple(out)


def routing_labels(notification: Notification) -> dict[str, str]:
    """The labels routes match on: common labels, group labels, and pseudo-labels.

    See the module documentation for why a notification is routed as a whole.
    """
    labels = dict(notification.common_labels)
    labels.update(notification.group_labels)
    labels["__source__"] = notification.source
    labels["__receiver__"] = notification.receiver
    if notification.source == "generic":
        labels["__webhook__"] = notification.receiver
    return labels


# --------------------------------------------------------------------------- mentions

_USERID = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")
_MOBILE = re.compile(r"\+?[0-9][0-9\- ]{4,19}")


def _check_userid(userid: Any, where: str) -> str:
    if not isinstance(userid, str) or not (userid == "@all" or _USERID.fullmatch(userid)):
        raise ConfigError(
            f"{where}: {userid!r} is not a WeCom userid (1-64 of letters, digits, _ . @ -) or @all"
        )
    return userid


def _check_mobile(mobile: Any, where: str) -> str:
    if isinstance(mobile, int) and not isinstance(mobile, bool):
        mobile = str(mobile)
    if not isinstance(mobile, str) or not (mobile == "@all" or _MOBILE.fullmatch(mobile)):
        raise ConfigError(f"{where}: {mobile!r} is not a mobile number or @all")
    return mobile


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Mentions:
    """Who a message mentions.

    How each msgtype carries them: ``text`` in ``mentioned_list`` / ``mentioned_mobile_list``;
    ``markdown`` as ``<@userid>`` appended to the content (markdown cannot mention a mobile
    number: those are left out, with a warning in :meth:`Renderer.render_check`);
    ``markdown_v2`` cannot mention anyone, so the userids are written plainly on a last line
    ``cc: alice, bob`` (mobiles are left out: a number is not a name to show a group).

    Attributes:
        userids: WeCom userids, ``"@all"`` for everyone; order kept, no duplicates.
        mobiles: mobile numbers, ``"@all"`` for everyone.
    """

    userids: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "userids", _unique(_check_userid(u, "mentions.users") for u in self.userids)
        )
        object.__setattr__(
            self, "mobiles", _unique(_check_mobile(m, "mentions.mobiles") for m in self.mobiles)
        )

    def __bool__(self) -> bool:
        return bool(self.userids or self.mobiles)

    def __or__(self, other: Mentions) -> Mentions:
        return Mentions(self.userids + other.userids, self.mobiles + other.mobiles)


@dataclass(frozen=True)
class MentionRules:
    """Configuration of who to mention, selected by label values.

    From YAML (every key optional)::

        mentions:
          users: [oncall-lead]            # always (on firing notifications)
          mobiles: ["13800000000"]
          by_label:
            team:
              db: [alice, bob]            # shorthand: a list of userids
              web: {users: [carol], mobiles: ["13900000000"]}
            severity:
              critical: ["@all"]
          on_resolved: false              # mention on resolved notifications too?

    A ``by_label`` entry applies when any alert the message is about (the firing alerts of a
    firing notification, every alert of a resolved one) has that label value, or when the
    notification's common or group labels have it. Values are compared exactly.

    Attributes:
        users: userids always mentioned.
        mobiles: mobiles always mentioned.
        by_label: label name -> label value -> the :class:`Mentions` it adds.
        on_resolved: whether resolved notifications mention anyone (default: no; nobody needs
            to be paged because something got better).
    """

    users: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()
    by_label: Mapping[str, Mapping[str, Mentions]] = field(default_factory=dict)
    on_resolved: bool = False

    def __post_init__(self) -> None:
        Mentions(self.users, self.mobiles)  # validates

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any] | None, *, field: str = "mentions"
    ) -> MentionRules:
        """Build the rules from their YAML/JSON form (see the class documentation).

        Args:
            data: the ``mentions`` mapping (``None`` or empty: nobody is mentioned).
            field: where it sits in the configuration, for error messages.

        Raises:
            ConfigError: an unknown key, a wrong type, or a malformed userid/mobile; the
                message names the field (``routes[2].mentions.by_label.team.db``).
        """
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{field}: must be a mapping")
        unknown = set(data) - {"users", "mobiles", "by_label", "on_resolved"}
        if unknown:
            raise ConfigError(
                f"{field}: unknown key {sorted(unknown)[0]!r} "
                "(expected users, mobiles, by_label, on_resolved)"
            )
        users = _string_list(data.get("users"), f"{field}.users", _check_userid)
        mobiles = _string_list(data.get("mobiles"), f"{field}.mobiles", _check_mobile)
        on_resolved = data.get("on_resolved", False)
        if not isinstance(on_resolved, bool):
            raise ConfigError(f"{field}.on_resolved: must be true or false")
        by_label: dict[str, dict[str, Mentions]] = {}
        raw_by_label = data.get("by_label") or {}
        if not isinstance(raw_by_label, Mapping):
            raise ConfigError(f"{field}.by_label: must map label names to value mappings")
        for label, values in raw_by_label.items():
            where = f"{field}.by_label.{label}"
            if not isinstance(label, str) or not _NAME.fullmatch(label):
                raise ConfigError(f"{where}: {label!r} is not a valid label name")
            if not isinstance(values, Mapping):
                raise ConfigError(f"{where}: must map label values to userids")
            by_label[label] = {
                str(value): _target(target, f"{where}.{value}") for value, target in values.items()
            }
        return cls(users, mobiles, by_label, on_resolved)

    def resolve(self, notification: Notification) -> Mentions:
        """Who to mention for ``notification`` (nobody for a resolved one unless on_resolved).

        Only configured userids and mobiles can come out: label values merely choose entries.
        """
        if notification.status == "resolved" and not self.on_resolved:
            return Mentions()
        userids = list(self.users)
        mobiles = list(self.mobiles)
        if self.by_label:
            alerts = notification.alerts
            if notification.status == "firing":
                alerts = notification.firing_alerts
            label_sets: list[Mapping[str, str]] = [
                notification.common_labels,
                notification.group_labels,
                *(a.labels for a in alerts),
            ]
            for label, targets in self.by_label.items():
                for labels in label_sets:
                    target = targets.get(labels.get(label, "\0"))
                    if target is not None:
                        userids.extend(target.userids)
                        mobiles.extend(target.mobiles)
        return Mentions(tuple(userids), tuple(mobiles))


def _string_list(value: Any, where: str, check: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: must be a list")
    return tuple(check(item, f"{where}[{i}]") for i, item in enumerate(value))


def mention_list(value: Any, where: str) -> Mentions:
    """Who a configured list names: userids (``[alice, "@all"]``), or ``{users, mobiles}``.

    Raises:
        ConfigError: a wrong type, an unknown key or a malformed userid/mobile (the message
            names ``where``).
    """
    return _target(value, where)


def _target(value: Any, where: str) -> Mentions:
    if isinstance(value, Mapping):
        unknown = set(value) - {"users", "mobiles"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (users, mobiles)")
        return Mentions(
            _string_list(value.get("users"), f"{where}.users", _check_userid),
            _string_list(value.get("mobiles"), f"{where}.mobiles", _check_mobile),
        )
    return Mentions(_string_list(value, where, _check_userid))


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True, init=False)
class Route:
    """Where matching notifications go and how they are rendered.

    Attributes:
        name: unique; shown in history, and ``/alertmanager/{name}`` forces this route.
        matchers: all must match (none: matches everything). Strings are parsed.
        bots: the bot names to send to (at least one).
        template: the template name (built-in ``default``, ``default_v2``, ``default_text``,
            ``generic`` ..., or one from the configuration).
        msgtype: ``markdown``, ``markdown_v2`` or ``text``; ``None``: each bot's own default.
        mentions: who to mention (``None``: nobody).
        continue_: keep trying later routes after this one matched.
        send_resolved: deliver resolved notifications (and resolved alerts) too.
    """

    name: str
    matchers: tuple[Matcher, ...] = ()
    bots: tuple[str, ...] = ()
    template: str = "default"
    msgtype: MsgType | None = None
    mentions: MentionRules | None = None
    continue_: bool = False
    send_resolved: bool = True

    def __init__(
        self,
        name: str,
        matchers: str | Iterable[str | Matcher] = (),
        bots: Sequence[str] = (),
        template: str = "default",
        msgtype: MsgType | None = None,
        mentions: MentionRules | Mapping[str, Any] | None = None,
        continue_: bool = False,
        send_resolved: bool = True,
    ) -> None:
        where = f"route {name!r}"
        if not isinstance(name, str) or not name:
            raise ConfigError("route: name must be a non-empty string")
        if isinstance(bots, str):
            bots = [bots]
        if not bots or not all(isinstance(b, str) and b for b in bots):
            raise ConfigError(f"{where}: bots must list at least one bot name")
        if not isinstance(template, str) or not template:
            raise ConfigError(f"{where}: template must be a template name")
        if msgtype is not None and msgtype not in _MSGTYPES:
            raise ConfigError(f"{where}: msgtype must be one of {', '.join(_MSGTYPES)}")
        try:
            parsed = parse_matchers(matchers)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if mentions is not None and not isinstance(mentions, MentionRules):
            mentions = MentionRules.from_config(mentions, field=f"{where}.mentions")
        for attr, value in (
            ("name", name),
            ("matchers", parsed),
            ("bots", tuple(bots)),
            ("template", template),
            ("msgtype", msgtype),
            ("mentions", mentions),
            ("continue_", bool(continue_)),
            ("send_resolved", bool(send_resolved)),
        ):
            object.__setattr__(self, attr, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels``."""
        return all(m.matches(labels) for m in self.matchers)

    def select(self, notification: Notification) -> Notification | None:
        """What this route sends for ``notification``, honouring ``send_resolved``.

        Returns:
            ``notification`` itself; or, when ``send_resolved`` is off, ``None`` for a resolved
            notification and a copy without its resolved alerts for a firing one.
        """
        if self.send_resolved or notification.source == "generic":
            return notification
        if notification.status == "resolved":
            return None
        if len(notification.firing_alerts) == len(notification.alerts):
            return notification
        return notification.with_alerts(notification.firing_alerts)

    def mentions_for(self, notification: Notification) -> Mentions:
        """Who this route mentions for ``notification``."""
        return self.mentions.resolve(notification) if self.mentions else Mentions()


class Router:
    """Chooses the routes of a notification.

    Args:
        routes: tried in order (see the module documentation for the semantics).
        default_route: takes notifications no route matched; its matchers are ignored.

    Raises:
        ConfigError: two routes share a name.
    """

    def __init__(self, routes: Sequence[Route], default_route: Route) -> None:
        self.routes = tuple(routes)
        self.default_route = default_route
        names = [r.name for r in self.routes] + [default_route.name]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ConfigError(f"routes: more than one route is named {name!r}")
            seen.add(name)
        self._by_name = {r.name: r for r in (*self.routes, default_route)}

    def match(self, notification: Notification) -> list[Route]:
        """The routes ``notification`` takes: first match, plus later ones after ``continue_``.

        ``send_resolved`` is not applied here; see :meth:`Route.select`.

        Returns:
            At least one route: the default route when nothing matched.
        """
        labels = routing_labels(notification)
        matched: list[Route] = []
        for route in self.routes:
            if route.matches(labels):
                matched.append(route)
                if not route.continue_:
                    break
        return matched or [self.default_route]

    def route(self, name: str) -> Route:
        """The route named ``name`` (for ``/alertmanager/{name}``).

        Raises:
            LookupError: no route has that name.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise LookupError(f"no route named {name!r}") from None
