"""Fuzzing every inbound endpoint of the gateway: no 5xx, no crash, nothing stored from garbage.

The gateway journals into SQLite here, as deployed: text a store cannot encode (a lone
surrogate) or numbers it cannot hold (an id past 64 bits) reach it if nothing stops them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.conftest import new_key, running
from tests.gateway.harness import Running, gateway_config, running_gateway, wait_for
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.samples import alertmanager_firing, grafana_firing

SURROGATES = "\ud800\udbff\udc00\udfff"
texts = st.text(max_size=30) | st.text(
    st.sampled_from(SURROGATES + "a\u00e9\U0001f525"), max_size=6
)
"""Any text, and text with lone surrogates (JSON-escaped by json.dumps)."""
ids = st.sampled_from([0, 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64]) | st.integers()

json_values = st.recursive(
    st.none() | st.booleans() | ids | st.floats(allow_nan=False) | texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


def mutate(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A real payload with one field replaced by anything, or removed."""
    keys = sorted(base)

    def replace(key: str, value: Any) -> dict[str, Any]:
        out = dict(base)
        out[key] = value
        return out

    def drop(key: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k != key}

    return st.one_of(
        st.builds(replace, st.sampled_from(keys), json_values),
        st.builds(drop, st.sampled_from(keys)),
        st.builds(
            lambda v: {**base, "alerts": [{**base["alerts"][0], "labels": v}]},
            json_values,
        ),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    store = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'outbox.db'}"
    with running(EmulatorSettings(rate=None)) as emu:
        with running_gateway(gateway_config(emu.url, new_key(), store)) as gw:
            yield gw


ENDPOINTS = ["/alertmanager", "/grafana", "/webhook/deploy", "/alertmanager/db"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    wait=st.booleans(),
    body=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        # Surrogates as raw bytes (ED A0 80), which Python's JSON decoder also reads:
        json_values.map(
            lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        mutate(alertmanager_firing()).map(
            lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=200),
        mutate(alertmanager_firing()).map(lambda v: json.dumps(v).encode()),
        mutate(grafana_firing()).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_no_5xx_and_nothing_stored_unless_accepted(
    setup: Running, endpoint: str, wait: bool, body: bytes
) -> None:
    gw = setup
    counter = "wecom_bot_" + ("messages_queued" if wait else "notifications_received") + "_total"
    before = gw.metric(counter)
    answer = gw.client.post(
        endpoint + ("?wait=true" if wait else ""),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code < 500, answer.text
    after = gw.metric(counter)
    if answer.status_code != 200:
        assert "error" in answer.json()
        assert after == before  # nothing stored from a refused request
    elif wait:
        assert after - before == answer.json()["messages"]
    else:
        # Journaled: counted once, or recognised as a retry; never a dead letter of the
        # journal (what passed validation renders).
        status = answer.json()["status"]
        assert after - before == 1 and status in ("accepted", "duplicate")
        wait_for(lambda: gw.metric("wecom_bot_inbox_depth") == 0, what="the journal rendered")
        assert gw.metric("wecom_bot_inbox_dead_letters") == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    label=texts,
    where=st.sampled_from(["labels", "annotations"]),
    raw=st.booleans(),
    wait=st.booleans(),
)
def test_any_text_in_an_alert_is_accepted_and_rendered(
    setup: Running, label: str, where: str, raw: bool, wait: bool
) -> None:
    """Alertmanager drops what is answered 4xx: no text in a label or annotation may be refused,
    and what is accepted renders (a lone surrogate becomes U+FFFD)."""
    gw = setup
    payload = alertmanager_firing()
    payload["alerts"][0][where]["fuzzed"] = label
    payload["groupKey"] = f"fuzz-{label!r}-{where}"  # a new notification each time
    body = (
        json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if raw
        else json.dumps(payload).encode()
    )
    answer = gw.client.post(
        "/alertmanager" + ("?wait=true" if wait else ""),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: gw.metric("wecom_bot_inbox_depth") == 0, what="the journal rendered")
    assert gw.metric("wecom_bot_inbox_dead_letters") == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    action=st.sampled_from(["requeue", "discard"]),
    body=st.fixed_dictionaries(
        {}, optional={"ids": st.lists(ids, max_size=3), "all": st.booleans(), "bot": texts}
    ),
)
def test_dead_letter_actions_never_answer_5xx(
    setup: Running, action: str, body: dict[str, Any]
) -> None:
    gw = setup
    answer = gw.client.post(
        f"/api/v1/dead-letters/{action}",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (200, 422), answer.text
    ints = body.get("ids", [])
    if any(not 1 <= i < 2**63 for i in ints):
        assert answer.status_code == 422 and "body.ids" in answer.json()["error"]


CONSOLE_POSTS = [
    "/api/v1/dead-letters/requeue",
    "/api/v1/dead-letters/discard",
    "/api/v1/playground/render",
    "/api/v1/playground/send",
]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    endpoint=st.sampled_from(CONSOLE_POSTS),
    body=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=120),
        st.fixed_dictionaries(
            {},
            optional={
                "ids": json_values | st.lists(ids, max_size=3),
                "template": json_values,
                "route": json_values,
                "payload": json_values,
                "sample": json_values,
                "msgtype": st.sampled_from(["markdown", "markdown_v2", "text", "image", 5]),
                "bot": json_values,
                "source": json_values,
            },
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_console_actions_never_answer_5xx(setup: Running, endpoint: str, body: bytes) -> None:
    gw = setup
    answer = gw.client.post(endpoint, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/api/v1/history",
            "/api/v1/dead-letters",
            "/api/v1/history/{x}",
            "/api/v1/playground/samples/{x}",
            "/ui/assets/{x}",
        ]  # fmt: skip
    ),
    params=st.dictionaries(
        st.sampled_from(
            [
                "since",
                "until",
                "state",
                "source",
                "bot",
                "route",
                "label",
                "q",
                "limit",
                "cursor",
                "x",
            ]
        ),  # fmt: skip
        st.text(max_size=20)
        | st.sampled_from(["nan", "-inf", "Infinity", "1e400", str(2**63), "\ufffd"]),
        max_size=4,
    ),
    segment=st.one_of(
        st.text(min_size=1, max_size=30)
        .filter(lambda s: "/" not in s and s not in {".", ".."})
        .map(lambda s: quote(s, safe="")),
        st.sampled_from(["%ED%A0%80", "a%ED%BF%BFb", "%FF", str(2**63)]),  # surrogate bytes
    ),
)
def test_console_reads_never_answer_5xx(
    setup: Running, path: str, params: dict[str, str], segment: str
) -> None:
    gw = setup
    answer = gw.client.get(path.replace("{x}", segment), params=params)
    assert answer.status_code < 500, answer.text


# --------------------------------------------------------------------------- exposure

EVERY_PATH = [
    *ENDPOINTS,
    *CONSOLE_POSTS,
    "/-/reload",
    "/api/v1/config/reload",
    "/api/v1/status",
    "/api/v1/config",
    "/ui",
    "/metrics",
    "/healthz",
    "/readyz",
]
PROBES = ("/healthz", "/readyz")
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)  # what a header can carry (h11 refuses surrounding blanks)


def expected_refusal(method: str, path: str, headers: dict[str, str], body: bytes) -> int | None:
    """The status the exposure rules must answer, or None when they let it through."""
    if path in PROBES:
        return None
    host = headers.get("Host", "")
    name = host.strip().lower()
    name = name[1:].split("]", 1)[0] if name.startswith("[") else name
    name = name.split(":", 1)[0] if name.count(":") == 1 else name
    import ipaddress

    try:
        ipaddress.ip_address(name)
        is_ip = True
    except ValueError:
        is_ip = False
    if not (is_ip or name in ("localhost", "127.0.0.1", "::1")):
        return 421
    if method == "GET":
        return None
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    origin = headers.get("Origin", "").strip().lower()
    if site:
        if site not in ("same-origin", "none"):
            return 403
    elif origin and origin not in (
        f"http://{host.strip().lower()}",
        f"https://{host.strip().lower()}",
    ):
        return 403
    media = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    json_type = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if (body or media) and not json_type:
        return 415
    return None


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(EVERY_PATH),
    host=st.one_of(
        st.sampled_from(
            [
                "{self}",
                "localhost",
                "127.0.0.1",
                "[::1]:9",
                "10.0.0.1",
                "evil.example",
                "evil.example:{port}",
                "LOCALHOST",
                "127.0.0.1.nip.io",
                "",
                "::1",
            ]
        ),
        header_text,
    ),  # fmt: skip
    origin=st.one_of(
        st.none(),
        st.sampled_from(["http://{self}", "https://{self}", "null", "http://evil.example", ""]),
        header_text,
    ),
    site=st.one_of(
        st.none(), st.sampled_from(["same-origin", "none", "same-site", "cross-site"]), header_text
    ),
    content_type=st.one_of(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                "application/x.thing+json",
                "text/plain",
                "multipart/form-data",
                "application/x-www-form-urlencoded",
                "APPLICATION/JSON",
                "json",
            ]
        ),
        header_text,
    ),  # fmt: skip
    body=st.one_of(st.just(b'{"all": true}'), st.binary(max_size=60)),
)
def test_exposure_rules_hold_for_any_headers_and_never_5xx(
    setup: Running,
    method: str,
    path: str,
    host: str,
    origin: str | None,
    site: str | None,
    content_type: str,
    body: bytes,
) -> None:
    gw = setup
    port = gw.url.rsplit(":", 1)[1]
    own = f"127.0.0.1:{port}"
    headers = {"Host": host.replace("{self}", own).replace("{port}", port)}
    if origin is not None:
        headers["Origin"] = origin.replace("{self}", own)
    if site is not None:
        headers["Sec-Fetch-Site"] = site
    if method == "POST":
        headers["Content-Type"] = content_type
    started = time.monotonic()
    answer = gw.client.request(
        method, path, headers=headers, content=body if method == "POST" else None
    )
    assert answer.status_code < 500, answer.text
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert gw.client.get("/healthz").status_code == 200
    assert time.monotonic() - started < 1.0  # no wedge: the probe answers within a second
    wanted = expected_refusal(method, path, headers, body)
    if wanted is not None:
        assert answer.status_code == wanted, (headers, answer.text)
    else:
        assert answer.status_code not in (403, 415, 421), (headers, answer.text)
