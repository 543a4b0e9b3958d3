"""Matchers (Alertmanager semantics), routes, the router, and mentions from configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wecom_bot.errors import ConfigError
from wecom_bot.gateway.model import Alert, Notification
from wecom_bot.gateway.routing import (
    Matcher,
    MentionRules,
    Mentions,
    Route,
    Router,
    parse_matchers,
    routing_labels,
)

T0 = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)


def alert(status: str = "firing", **labels: str) -> Alert:
    return Alert(status, labels, {}, T0)  # type: ignore[arg-type]


def notification(
    *alerts: Alert,
    common: dict[str, str] | None = None,
    group: dict[str, str] | None = None,
    status: str = "firing",
    source: str = "alertmanager",
    receiver: str = "wecom",
) -> Notification:
    return Notification(
        source,  # type: ignore[arg-type]
        status,  # type: ignore[arg-type]
        receiver=receiver,
        alerts=alerts,
        common_labels=common or {},
        group_labels=group or {},
    )


# --------------------------------------------------------------------------- matchers


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('severity="critical"', "severity", "=", "critical"),
        ('severity!="info"', "severity", "!=", "info"),
        ('severity=~"critical|warning"', "severity", "=~", "critical|warning"),
        ('team!~"db.*"', "team", "!~", "db.*"),
        ("team=db", "team", "=", "db"),
        ('  team  =~  "a b"  ', "team", "=~", "a b"),
        ('msg="say \\"hi\\"\\n"', "msg", "=", 'say "hi"\n'),
        ('host=~"db\\.example\\.com"', "host", "=~", "db\\.example\\.com"),
        ('path="C:\\\\x"', "path", "=", "C:\\x"),
        ('team=""', "team", "=", ""),
    ],
)
def test_matcher_parse(text: str, name: str, op: str, value: str) -> None:
    m = Matcher.parse(text)
    assert (m.name, m.op, m.value) == (name, op, value)
    assert Matcher.parse(str(m)) == m  # str() round-trips


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('="x"', "expected a label name"),
        ("team", "expected one of = != =~ !~"),
        ('team=="x"', "expected , between matchers"),
        ('team="db', "unterminated quoted value"),
        ('team=~"(unclosed"', "invalid regular expression"),
        ('a="1", b="2"', "expected exactly one matcher"),
        ('1team="x"', "expected a label name"),
        ("", "expected exactly one matcher"),
    ],
)
def test_matcher_parse_errors_quote_the_matcher(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        Matcher.parse(text)
    assert problem in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        ('s=~"crit"', "critical", False),  # anchored: a prefix is not a match
        ('s=~"ritical"', "critical", False),  # nor a suffix
        ('s=~"crit.*"', "critical", True),
        ('s=~"critical|warning"', "warning", True),
        ('s=~"critical|warning"', "xwarning", False),  # the alternation is grouped, then anchored
        ('s=~"critical|warning"', "criticalx", False),
        ('s!~"critical|warning"', "info", True),
        ('s!~"critical|warning"', "critical", False),
        ('s=~".*"', "a\nb", False),  # like RE2: "." does not cross a newline
        ('s=~"(?s).*"', "a\nb", True),
        ('s="critical"', "critical", True),
        ('s="critical"', "Critical", False),
        ('s!="critical"', "warning", True),
    ],
)
def test_matcher_semantics(matcher: str, value: str, expected: bool) -> None:
    assert Matcher.parse(matcher).matches({"s": value}) is expected


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ('team=""', True),
        ('team!="db"', True),
        ('team=~".*"', True),
        ('team=~".+"', False),
        ('team="db"', False),
        ('team!~""', False),
    ],
)
def test_an_absent_label_reads_as_empty(matcher: str, expected: bool) -> None:
    assert Matcher.parse(matcher).matches({"other": "x"}) is expected


def test_parse_matchers_forms() -> None:
    braces = parse_matchers('{a="x,}y", b=~"1|2" , c!=z}')
    assert [(m.name, m.op, m.value) for m in braces] == [
        ("a", "=", "x,}y"),
        ("b", "=~", "1|2"),
        ("c", "!=", "z"),
    ]
    assert parse_matchers('a="x,}y", b=~"1|2", c!=z') == braces
    assert parse_matchers(['a="x,}y"', 'b=~"1|2"', Matcher("c", "!=", "z")]) == braces
    with pytest.raises(ConfigError, match="missing closing }"):
        parse_matchers('{a="b"')


# --------------------------------------------------------------------------- routes


def test_router_first_match_wins_unless_continue() -> None:
    critical = Route("critical", ['severity="critical"'], ["oncall"])
    db = Route("db", ['team="db"'], ["db-group"])
    audit = Route("audit", [], ["audit"], continue_=True)
    default = Route("default", [], ["general"])
    n = notification(alert(), common={"severity": "critical", "team": "db"})

    assert Router([critical, db], default).match(n) == [critical]
    critical_continue = Route("critical", ['severity="critical"'], ["oncall"], continue_=True)
    assert Router([critical_continue, db], default).match(n) == [critical_continue, db]
    # A continuing catch-all first, then the first specific match stops.
    assert Router([audit, critical, db], default).match(n) == [audit, critical]
    # Nothing matched: the default route.
    quiet = notification(alert(), common={"severity": "info"})
    assert Router([critical, db], default).match(quiet) == [default]
    # A continuing route matched, so the default route is not added.
    assert Router([audit, critical], default).match(quiet) == [audit]


def test_routing_uses_common_and_group_labels_not_single_alerts() -> None:
    route = Route("db", ['team="db"'], ["db"])
    default = Route("default", [], ["general"])
    router = Router([route], default)
    # Only one of two alerts has team=db: it is not a common label, so the route does not match.
    mixed = notification(alert(team="db"), alert(team="web"), common={"alertname": "X"})
    assert router.match(mixed) == [default]
    assert router.match(notification(alert(team="db"), common={"team": "db"})) == [route]
    # Group labels count too, and override common ones of the same name.
    grouped = notification(alert(), common={"team": "web"}, group={"team": "db"})
    assert router.match(grouped) == [route]


def test_pseudo_labels_route_sources_and_webhooks() -> None:
    grafana = Route("grafana", ['__source__="grafana"'], ["g"])
    deploys = Route("deploys", ['__webhook__="deploys"'], ["d"])
    receiver = Route("team-a", ['__receiver__=~"team-a.*"'], ["a"])
    default = Route("default", [], ["general"])
    router = Router([grafana, deploys, receiver], default)
    assert router.match(notification(alert(), source="grafana")) == [grafana]
    generic = Notification("generic", "firing", receiver="deploys", raw={})
    assert router.match(generic) == [deploys]
    assert router.match(notification(alert(), receiver="team-a-prod")) == [receiver]
    assert routing_labels(generic) == {
        "__source__": "generic",
        "__receiver__": "deploys",
        "__webhook__": "deploys",
    }


def test_route_lookup_and_duplicate_names() -> None:
    a = Route("a", [], ["x"])
    router = Router([a], Route("default", [], ["x"]))
    assert router.route("a") is a
    assert router.route("default") is router.default_route
    with pytest.raises(LookupError, match="no route named 'b'"):
        router.route("b")
    with pytest.raises(ConfigError, match="more than one route is named 'a'"):
        Router([a, Route("a", [], ["y"])], Route("default", [], ["x"]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "bots": ["x"]}, "name must be a non-empty string"),
        ({"name": "r", "bots": []}, "route 'r': bots must list at least one bot name"),
        ({"name": "r", "bots": ["x"], "msgtype": "news"}, "route 'r': msgtype must be one of"),
        ({"name": "r", "bots": ["x"], "template": ""}, "route 'r': template must be"),
        ({"name": "r", "bots": ["x"], "matchers": ['s=~"("']}, "route 'r': matcher"),
        (
            {"name": "r", "bots": ["x"], "mentions": {"user": ["a"]}},
            "route 'r'.mentions: unknown key 'user'",
        ),
    ],
)
def test_route_validation_names_the_route(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Route(**kwargs)
    assert message in str(info.value)


def test_route_select_honours_send_resolved() -> None:
    mixed = notification(alert(instance="a"), alert("resolved", instance="b"))
    resolved = notification(alert("resolved"), status="resolved")
    keep = Route("keep", [], ["x"])
    assert keep.select(mixed) is mixed and keep.select(resolved) is resolved
    drop = Route("drop", [], ["x"], send_resolved=False)
    assert drop.select(resolved) is None
    only_firing = drop.select(mixed)
    assert only_firing is not None
    assert [a.labels["instance"] for a in only_firing.alerts] == ["a"]
    all_firing = notification(alert(), alert())
    assert drop.select(all_firing) is all_firing


# --------------------------------------------------------------------------- mentions


RULES = {
    "users": ["lead"],
    "by_label": {
        "team": {"db": ["alice", "bob"], "web": {"users": ["carol"], "mobiles": ["13800000000"]}},
        "severity": {"critical": ["@all"]},
    },
}


def test_mentions_from_labels_of_every_firing_alert() -> None:
    rules = MentionRules.from_config(RULES)
    n = notification(alert(team="db"), alert(team="web", severity="critical"), alert(team="ops"))
    got = rules.resolve(n)
    assert got.userids == ("lead", "alice", "bob", "carol", "@all")
    assert got.mobiles == ("13800000000",)


def test_mentions_skip_resolved_alerts_and_resolved_notifications() -> None:
    rules = MentionRules.from_config(RULES)
    n = notification(alert(team="db"), alert("resolved", team="web"))
    assert rules.resolve(n).userids == ("lead", "alice", "bob")
    resolved = notification(alert("resolved", team="db"), status="resolved")
    assert not rules.resolve(resolved)
    on_resolved = MentionRules.from_config({**RULES, "on_resolved": True})
    assert on_resolved.resolve(resolved).userids == ("lead", "alice", "bob")


def test_mentions_use_common_labels_and_deduplicate() -> None:
    rules = MentionRules.from_config({"by_label": {"team": {"db": ["alice"]}}, "users": ["alice"]})
    n = notification(alert(team="db"), alert(team="db"), common={"team": "db"})
    assert rules.resolve(n) == Mentions(("alice",))


def test_label_values_only_select_configured_people() -> None:
    rules = MentionRules.from_config(RULES)
    hostile = notification(
        alert(team="@all", severity="<@alice>", owner="@all"), common={"team": "@all"}
    )
    assert rules.resolve(hostile) == Mentions(("lead",))
    assert not MentionRules().resolve(notification(alert(team="db")))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"users": ["<@x>"]}, "mentions.users[0]: '<@x>' is not a WeCom userid"),
        ({"users": ["a b"]}, "is not a WeCom userid"),
        ({"mobiles": ["call me"]}, "mentions.mobiles[0]: 'call me' is not a mobile number"),
        ({"users": {"a": 1}}, "mentions.users: must be a list"),
        ({"by_label": ["team"]}, "mentions.by_label: must map label names"),
        ({"by_label": {"team": ["db"]}}, "mentions.by_label.team: must map label values"),
        ({"by_label": {"bad-name": {}}}, "'bad-name' is not a valid label name"),
        ({"by_label": {"team": {"db": {"user": ["a"]}}}}, "by_label.team.db: unknown key 'user'"),
        ({"by_label": {"team": {"db": ["x>"]}}}, "mentions.by_label.team.db[0]"),
        ({"on_resolved": "yes"}, "mentions.on_resolved: must be true or false"),
        ({"users": ["a"], "paging": True}, "mentions: unknown key 'paging'"),
    ],
)
def test_mention_config_errors_name_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        MentionRules.from_config(config)
    assert message in str(info.value)


def test_mentions_value_type() -> None:
    m = Mentions(("a", "b", "a"), ("13800000000", 13900000000))  # type: ignore[arg-type]
    assert m.userids == ("a", "b") and m.mobiles == ("13800000000", "13900000000")
    assert (m | Mentions(("c", "a"))).userids == ("a", "b", "c")
    assert not Mentions() and bool(Mentions(mobiles=("@all",)))
    with pytest.raises(ConfigError):
        Mentions(("<@all>",))


def test_route_mentions_for() -> None:
    route = Route("r", [], ["x"], mentions=RULES)
    assert route.mentions_for(notification(alert(team="db"))).userids == ("lead", "alice", "bob")
    assert not Route("r", [], ["x"]).mentions_for(notification(alert(team="db")))
