"""Action links that cannot be turned against the gateway: tokens have one spelling and a
bounded expiry, old-format tokens are refused, link writing never raises for any label, an
alert's ``externalURL`` only selects among configured Alertmanagers (with a bounded memory of
the unknown ones it logged), ``actions.ttl`` is bounded, and no URL password is shown."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_bot.errors import ConfigError, SecretNotSetError
from wecom_bot.gateway.actions.links import ActionLinker
from wecom_bot.gateway.actions.registry import (
    MAX_REMEMBERED_UNKNOWN,
    AlertmanagerRegistry,
    normalized_url,
)
from wecom_bot.gateway.actions.tokens import (
    CLOCK_SLACK,
    ActionToken,
    TokenError,
    packable,
    sign,
    verify,
)
from wecom_bot.gateway.check import check_config
from wecom_bot.gateway.config import load_config
from wecom_bot.gateway.runtime import build_runtime
from wecom_bot.masking import mask_url

SECRET = b"0123456789abcdef-test-secret"
NOW = 1_800_000_000.0
BASE = "bots: {ops: {key: k}}\n"
PASSWORD = "hunter2-Am-pa55"


def _registry(text: str) -> AlertmanagerRegistry:
    return AlertmanagerRegistry.from_config(load_config(text=BASE + text))


# --------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_only_the_canonical_spelling_of_a_token_is_accepted() -> None:
    token = sign(ActionToken("s", (("alertname", "X"),), int(NOW) + 60, "main"), SECRET)
    body, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = []
    for part in ("body", "mac"):
        for last in alphabet:
            b, m = (body[:-1] + last, mac) if part == "body" else (body, mac[:-1] + last)
            try:
                verify(f"{b}.{m}", SECRET, now=NOW)
            except TokenError:
                continue
            accepted.append(f"{b}.{m}")
    # The 10-byte MAC leaves 4 bits of its last character unused: 16 spellings decode to it.
    same_mac = [c for c in alphabet if base64.urlsafe_b64decode(mac[:-1] + c + "==") ==
                base64.urlsafe_b64decode(mac + "==")]  # fmt: skip
    assert len(same_mac) == 16
    assert accepted == [token, token]  # the original, once per loop; no other spelling


def test_an_expiry_further_than_the_ttl_is_refused() -> None:
    ttl = 3600.0
    for ahead, good in [(ttl, True), (ttl + CLOCK_SLACK, True), (ttl + CLOCK_SLACK + 1, False),
                        (86400 * 365 * 50, False)]:  # fmt: skip
        token = sign(ActionToken("a", (("a", "b"),), int(NOW + ahead), ""), SECRET)
        if good:
            assert verify(token, SECRET, now=NOW, max_ttl=ttl).expires_at == int(NOW + ahead)
        else:
            with pytest.raises(TokenError, match="further ahead"):
                verify(token, SECRET, now=NOW, max_ttl=ttl)


def test_a_token_of_the_older_format_is_refused_with_a_clear_reason() -> None:
    # Version 1: kind, expiry, a 3-byte hash of the Alertmanager's URL, the matchers.
    body = b"s" + struct.pack(">I", int(NOW) + 60) + bytes.fromhex("abcdef") + b"\x01a\x01b"
    text = _b64(body)
    mac = _b64(hmac.new(SECRET, text.encode(), hashlib.sha256).digest()[:10])
    with pytest.raises(TokenError, match="older version of the gateway; use the link of a newer"):
        verify(f"{text}.{mac}", SECRET, now=NOW)


def test_a_token_names_its_alertmanager_and_round_trips() -> None:
    token = ActionToken("d", (("alertname", "磁盘"), ("", "")), int(NOW) + 5, "prod-eu.1")
    assert verify(sign(token, SECRET), SECRET, now=NOW, max_ttl=60) == token


# --------------------------------------------------------------------------- link writing

_ANY_CHAR = st.characters(codec=None, exclude_categories=())  # lone surrogates included
_TEXTS = st.one_of(
    st.text(_ANY_CHAR, max_size=400),
    st.integers(0, 400).map(lambda n: "x" * n),  # every size in bytes, 0-400
    st.integers(0, 133).map(lambda n: "数" * n),  # 3-byte characters around 255 bytes
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "é" * 128, "y" * 255, "y" * 256]),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_TEXTS, _TEXTS, max_size=4), st.sampled_from(["", "http://am:9093", "x"]))
def test_writing_links_never_raises_for_any_label(labels: dict[str, str], external: str) -> None:
    linker = ActionLinker("https://gw.example.com", SECRET, clock=lambda: NOW,
                          alertmanagers=_REGISTRY)  # fmt: skip
    links = linker.for_group(labels, external)
    carriable = all(packable(k) and packable(v) for k, v in labels.items())
    if not carriable or not labels:
        assert links is None
        return
    if links is None:
        return  # over the byte budget
    for url in filter(None, (links.ack, links.silence, links.details)):
        token = verify(url.rsplit("/", 1)[1], SECRET, now=NOW, max_ttl=linker.ttl)
        assert token.matchers == tuple(labels.items())
        assert token.alertmanager == ("main" if external != "x" else "")


_REGISTRY = AlertmanagerRegistry.from_config(
    load_config(text=BASE + "alertmanagers: [{name: main, url: 'http://am:9093'}]\n")
)


def test_a_group_label_of_256_to_299_bytes_gets_no_links_and_no_error() -> None:
    linker = ActionLinker("https://gw.example.com", SECRET, clock=lambda: NOW)
    for size in range(256, 300):  # within the byte budget, over what a token carries
        assert linker.for_group({"cluster": "c" * size}, "") is None
        assert linker.for_group({"c" * size: "x"}, "") is None
    assert linker.for_group({"alertname": "X", "zone": "\udc80"}, "") is None


# --------------------------------------------------------------------------- selection


def test_an_external_url_selects_a_configured_alertmanager_by_normalized_prefix() -> None:
    registry = _registry(
        "alertmanagers:\n"
        "  - {name: root, url: 'http://am.internal:9093'}\n"
        "  - {name: eu, url: 'http://10.0.0.5:9093', external_urls: ['https://AM.example.com/eu/']}\n"
    )  # fmt: skip
    cases = {
        "http://am.internal:9093": "root",
        "HTTP://AM.INTERNAL:9093/": "root",
        "http://am.internal:9093/anything/below": "root",
        "http://user:pw@am.internal:9093/?q=1#x": "root",
        "https://am.example.com/eu": "eu",
        "https://am.example.com:443/eu/#/alerts": "eu",
        "https://am.example.com/eu/sub": "eu",
        "https://am.example.com/europe": None,  # a prefix of segments, not of characters
        "https://am.example.com/": None,
        "http://am.example.com/eu": None,  # another scheme
        "http://am.internal:9094": None,
        "http://am.internal.evil.example:9093": None,
        "http://127.0.0.1:9093/webhook/deploy": None,
        "not a url": None,
        "http://[::1:bad": None,
        "http://am.internal:99999": None,
    }
    for url, name in cases.items():
        am = registry.select(url, log=False)
        assert (am.name if am else None) == name, url
    assert registry.select("", log=False) is None  # two configured, none is the default
    assert registry.get("eu").url == "http://10.0.0.5:9093"  # type: ignore[union-attr]
    assert registry.get("eu").public_url == "https://AM.example.com/eu"  # type: ignore[union-attr]


def test_the_default_serves_alerts_without_external_url() -> None:
    both = _registry("actions: {alertmanager_url: 'http://a:1'}\n"
                     "alertmanagers: [{name: b, url: 'http://b:1'}]\n")  # fmt: skip
    assert both.select("").name == "am" and both.names == ["b", "am"]  # type: ignore[union-attr]
    assert _registry("alertmanagers: [{name: b, url: 'http://b:1'}]\n").select("").name == "b"  # type: ignore[union-attr]
    two = _registry("alertmanagers: [{name: b, url: 'http://b:1'}, {name: c, url: 'http://c:1'}]\n")
    assert two.select("") is None
    assert _registry("").select("http://a:1", log=False) is None


def test_unknown_urls_are_logged_once_each_in_a_bounded_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = _registry("alertmanagers: [{name: b, url: 'http://b:1'}]\n")
    caplog.set_level(logging.WARNING, logger="wecom_bot.gateway.actions")
    for _ in range(3):
        assert registry.select(f"http://admin:{PASSWORD}@evil.example/x") is None
    assert len(caplog.records) == 1
    assert PASSWORD not in caplog.text and "admin:***@evil.example" in caplog.text
    caplog.clear()
    for i in range(10_000):
        registry.select(f"http://evil-{i}.example/" + "p" * 5000)
    assert len(caplog.records) == 10_000
    assert len(registry._logged) == MAX_REMEMBERED_UNKNOWN
    assert max(len(k) for k in registry._logged) <= 200


def test_normalized_url_refuses_what_is_not_http() -> None:
    for bad in ("ftp://x", "http://", "javascript:alert(1)", "//x"):
        with pytest.raises(ValueError):
            normalized_url(bad)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("alertmanagers: [{name: 'a b', url: 'http://a:1'}]", "alertmanagers.0.name"),
        ("alertmanagers: [{name: a, url: 'ftp://a'}]", "alertmanagers.0.url"),
        ("alertmanagers: [{name: a, url: 'http://a:1'}, {name: a, url: 'http://b:1'}]",
         "the name 'a' is given twice"),
        ("actions: {alertmanager_url: 'http://a:1'}\n"
         "alertmanagers: [{name: am, url: 'http://b:1'}]",
         "the name 'am' is taken by actions.alertmanager_url"),
        ("alertmanagers: [{name: a, url: 'http://a:1'}, {name: b, url: 'http://A:1/'}]",
         "also alertmanager 'a'"),
        ("alertmanagers: [{name: a, url: 'http://a:1', username: u}]", "needs username and"),
        ("alertmanagers: [{name: a, url: 'http://a:1', username: u, password_env: P,"
         " bearer_token_env: T}]", "not both"),
        ("alertmanagers: [{name: a, url: 'http://u:p@a:1', bearer_token_env: T}]",
         "give them once"),
        ("alertmanagers: [{name: a, url: 'http://a:1', pasword_env: P}]",
         "did you mean 'password_env'"),
        ("actions: {ttl: 3000000000}", "actions.ttl: must be between 1m and 90d"),
        ("actions: {ttl: 59s}", "actions.ttl: must be between 1m and 90d"),
        ("actions: {ttl: 91d}", "actions.ttl: must be between 1m and 90d"),
    ],
)  # fmt: skip
def test_bad_alertmanagers_and_ttls_are_config_errors_naming_the_field(
    text: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(".", r"\.")):
        load_config(text=BASE + text + "\n")


def test_ttl_bounds_themselves_are_accepted() -> None:
    assert load_config(text=BASE + "actions: {ttl: 1m}\n").actions.ttl == 60
    assert load_config(text=BASE + "actions: {ttl: 90d}\n").actions.ttl == 90 * 86400


def test_credentials_come_from_the_environment_and_a_missing_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = (BASE + "alertmanagers:\n"
            "  - {name: a, url: 'http://a:1', username: ops, password_env: WB_AM_PW}\n"
            "  - {name: b, url: 'http://b:1', bearer_token_env: WB_AM_TOKEN}\n"
            "  - {name: c, url: 'http://me:pw%40x@c:1'}\n")  # fmt: skip
    config = load_config(text=text)
    monkeypatch.delenv("WB_AM_PW", raising=False)
    monkeypatch.delenv("WB_AM_TOKEN", raising=False)
    with pytest.raises(SecretNotSetError, match=r"alertmanagers\[0\]\.password: environment"):
        build_runtime(config, store=None, metrics=None, clock=time.time)
    monkeypatch.setenv("WB_AM_PW", PASSWORD)
    monkeypatch.setenv("WB_AM_TOKEN", "tok-" + PASSWORD)
    registry = build_runtime(config, store=None, metrics=None, clock=time.time).alertmanagers
    a, b, c = (registry.get(n) for n in "abc")
    assert a is not None and a.basic == ("ops", PASSWORD) and a.bearer is None
    assert b is not None and b.bearer == "tok-" + PASSWORD and b.basic is None
    assert c is not None and c.basic == ("me", "pw@x") and c.url == "http://c:1"
    assert PASSWORD not in repr(a) + repr(b)
    # gateway check goes on, naming what is not set here.
    monkeypatch.delenv("WB_AM_TOKEN")
    path = tmp_path / "gw.yaml"
    path.write_text(text, "utf-8")
    report = check_config(path)
    assert report["unresolved_keys"] == {
        "alertmanagers[1].bearer_token": "environment variable WB_AM_TOKEN is not set or empty"
    }


def test_url_passwords_are_masked_in_errors_config_views_and_check(tmp_path: Path) -> None:
    for text in (
        f"actions: {{alertmanager_url: 'http://admin:{PASSWORD}@am:99999'}}",
        f"external_url: 'ftp://admin:{PASSWORD}@gw.example'",
        f"external_url: 'https://admin:{PASSWORD}@gw.example'",  # links would carry it
        f"alertmanagers: [{{name: a, url: 'http://admin:{PASSWORD}@am/?x=1'}}]",
        f"alertmanagers: [{{name: a, url: 'http://a:1', external_urls: ['gopher://u:{PASSWORD}@x']}}]",
    ):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            load_config(text=BASE + text + "\n")
        message = str(caught.value)
        assert PASSWORD not in message, message
        assert ":***@" in message or "must not hold credentials" in message, message
    good = (BASE + "external_url: 'https://gw.example'\n"
            f"actions: {{secret: {'s' * 20}, alertmanager_url: 'http://admin:{PASSWORD}@am:9093'}}\n"
            f"alertmanagers: [{{name: a, url: 'http://u:{PASSWORD}@a:1',"
            f" external_urls: ['https://v:{PASSWORD}@a.example']}}]\n")  # fmt: skip
    masked = json.dumps(load_config(text=good).masked())
    assert PASSWORD not in masked and masked.count(":***@") == 3
    path = tmp_path / "gw.yaml"
    path.write_text(good, "utf-8")
    assert PASSWORD not in json.dumps(check_config(path))
    assert mask_url(f"see http://a:{PASSWORD}@h/x and http://h:80/") == (
        "see http://a:***@h/x and http://h:80/"
    )


def test_check_refuses_an_unbounded_ttl_clearly(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(BASE + "external_url: https://gw.example\n"
                    f"actions: {{secret: {'s' * 20}, ttl: 3000000000}}\n", "utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match=r"actions\.ttl: must be between 1m and 90d"):
        check_config(path)


def test_the_short_form_alertmanager_keeps_all_three_links_of_a_short_group() -> None:
    registry = _registry("actions: {alertmanager_url: 'http://alertmanager.example.com:9093'}\n")
    linker = ActionLinker("https://gw.example.com", SECRET, alertmanagers=registry)
    links = linker.for_group({"alertname": "HighCPU"}, "http://alertmanager.example.com:9093/")
    assert links is not None and links.details, "the details link was dropped"
    for url in (links.ack, links.silence, links.details):
        assert verify(url.rsplit("/", 1)[1], SECRET, now=time.time()).alertmanager == "am"
