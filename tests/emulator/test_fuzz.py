"""Fuzzing the webhook endpoints: never a 5xx, never a crash, nothing invalid accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.images import png_bytes
from wecom_bot.masking import key_fingerprint
from wecom_bot.messages import MSGTYPES, parse_message

from . import payloads
from .conftest import Emu, new_key, running

KNOWN_ERRCODES = {0, 93000, 40008, 44004, 40058, 301019, 40007, 45009, 44001, 40004}
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)  # fmt: skip
texts = st.text(max_size=40) | st.text(alphabet="中x", min_size=680, max_size=2100)
article = st.fixed_dictionaries(
    {"title": texts, "url": st.text(max_size=20)},
    optional={"description": texts, "picurl": json_values},
)
card_part = st.fixed_dictionaries(
    {},
    optional={"type": st.integers(-1, 4) | json_values, "url": st.text(max_size=10),
              "appid": st.text(max_size=5), "title": texts, "aspect_ratio": st.floats(0, 4)},
)  # fmt: skip
message_body = json_values | st.fixed_dictionaries(
    {},
    optional={
        "content": texts | json_values,
        "mentioned_list": st.lists(st.text(max_size=8) | json_values, max_size=3),
        "media_id": st.text(max_size=50) | json_values,
        "base64": st.text(max_size=40) | st.just(payloads.image()["image"]["base64"]),
        "md5": st.text(max_size=40) | st.just(payloads.image()["image"]["md5"]),
        "articles": st.lists(article, max_size=10) | json_values,
        "card_type": st.sampled_from(["text_notice", "news_notice", "other"]) | json_values,
        "main_title": card_part,
        "sub_title_text": texts,
        "card_action": card_part,
        "card_image": card_part,
        "quote_area": card_part,
        "jump_list": st.lists(card_part, max_size=4),
        "horizontal_content_list": st.lists(card_part, max_size=7),
    },
)
near_valid = (
    st.builds(payloads.text, st.text(min_size=1, max_size=700))
    | st.builds(lambda c: {"msgtype": "markdown_v2", "markdown_v2": {"content": c}}, texts)
    | st.builds(lambda arts: {"msgtype": "news", "news": {"articles": arts}},
                st.lists(article, min_size=1, max_size=9))
    | st.builds(lambda title, action: payloads.text_card(main_title={"title": title},
                                                         card_action=action),
                st.text(max_size=5), card_part)
)  # fmt: skip
messages = (
    near_valid
    | st.builds(
        lambda msgtype, body, extra: {"msgtype": msgtype, msgtype: body, **extra},
        st.sampled_from([*MSGTYPES, "video", ""]),
        message_body,
        st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    )
    | json_values
)


@pytest.fixture(scope="module")
def fuzz_emu() -> Iterator[Emu]:
    with running() as emu:
        yield emu


def check_answer(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["errcode"] in KNOWN_ERRCODES, body
    code: int = body["errcode"]
    return code


def check_store(emu: Emu, key: str, code: int) -> None:
    """Every accepted entry is a valid message; a rejected request is stored as rejected."""
    entries = emu.entries(key)
    accepted = [e for e in entries if e["status"] == "accepted"]
    for entry in accepted:
        parse_message(entry["payload"])
    assert len(accepted) == (1 if code == 0 else 0)
    if code not in (0, 93000):
        assert [e["errcode"] for e in entries] == [code]


@FUZZ
@given(payload=messages)
def test_send_arbitrary_json(fuzz_emu: Emu, payload: Any) -> None:
    key = new_key()
    body = json.dumps(payload).encode()
    code = check_answer(fuzz_emu.send_raw(key, body))
    event(f"errcode {code}")
    check_store(fuzz_emu, key, code)


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; x"]),
)
def test_send_arbitrary_bytes(fuzz_emu: Emu, body: bytes, content_type: str) -> None:
    key = new_key()
    code = check_answer(fuzz_emu.send_raw(key, body, content_type or None))
    assert code != 0
    check_store(fuzz_emu, key, code)


@settings(FUZZ, max_examples=40)
@given(key=st.text(max_size=40) | st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_send_arbitrary_keys(fuzz_emu: Emu, key: str) -> None:
    answer = fuzz_emu.client.post(
        "/cgi-bin/webhook/send", params={"key": key}, json=payloads.text()
    )
    code = check_answer(answer)
    assert code in (0, 93000)
    event(f"errcode {code}")
    if code == 0:
        group = fuzz_emu.client.get(f"/api/groups/{key_fingerprint(key)}").text
        assert len(key) < 12 or key not in group


@FUZZ
@given(
    data=st.binary(max_size=400) | st.builds(lambda n: b"#!AMR\n" + b"<" * n, st.integers(0, 99)),
    media_type=st.sampled_from(["file", "voice", "image", ""]),
    filename=st.text(max_size=30),
    field=st.sampled_from(["media", "media", "file"]),
)  # fmt: skip
def test_upload_arbitrary_media(
    fuzz_emu: Emu, data: bytes, media_type: str, filename: str, field: str
) -> None:
    key = new_key()
    answer = fuzz_emu.client.post(
        "/cgi-bin/webhook/upload_media",
        params={"key": key, "type": media_type},
        files={field: (filename, data, "application/octet-stream")},
    )
    code = check_answer(answer)
    event(f"errcode {code}")
    listing = fuzz_emu.client.get(f"/api/groups/{key_fingerprint(key)}/media").json()["media"]
    if code == 0:
        [media] = listing
        assert media["size"] == len(data) > 5 and media["type"] == media_type
        assert media_type == "file" or data.startswith(b"#!AMR")
        assert fuzz_emu.client.get(f"/api/media/{media['media_id']}").content == data
    else:
        assert listing == []


@FUZZ
@given(body=st.binary(max_size=500), boundary=st.text("abc-", min_size=1, max_size=10))
def test_upload_arbitrary_multipart_bodies(fuzz_emu: Emu, body: bytes, boundary: str) -> None:
    key = new_key()
    framed = f'--{boundary}\r\nContent-Disposition: form-data; name="media"\r\n\r\n'.encode()
    answer = fuzz_emu.client.post(
        "/cgi-bin/webhook/upload_media",
        params={"key": key, "type": "file"},
        content=framed + body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert check_answer(answer) != 0 or body.count(f"--{boundary}".encode())


def test_valid_image_survives_the_round_trip(fuzz_emu: Emu) -> None:
    key = new_key()
    payload = payloads.image(png_bytes(8, 8))
    assert check_answer(fuzz_emu.send(key, payload)) == 0
    check_store(fuzz_emu, key, 0)


_HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(
        ["/", "/api/groups", "/api/reset", "/api/groups/{g}", "/api/groups/{g}/faults"]
    ),
    host=st.one_of(
        st.sampled_from(["{self}", "localhost", "evil.example", "10.0.0.2:80"]),
        _HEADER.filter(lambda h: any("g" <= c <= "z" for c in h.lower())),  # a name, not an IP
    ),
    origin=st.one_of(
        st.none(), st.sampled_from(["http://{self}", "http://evil.example", "null"]), _HEADER
    ),
    site=st.one_of(st.none(), st.sampled_from(["same-origin", "cross-site", "same-site", "none"])),
)
def test_controls_follow_the_exposure_rules_for_any_headers(
    emu: Emu, method: str, path: str, host: str, origin: str | None, site: str | None
) -> None:
    own = emu.url.split("://", 1)[1]
    headers = {"Host": host.replace("{self}", own)}
    if origin is not None:
        headers["Origin"] = origin.replace("{self}", own)
    if site is not None:
        headers["Sec-Fetch-Site"] = site
    group = key_fingerprint(new_key())
    body = {"kind": "drop"} if method == "POST" and "faults" in path else None
    answer = emu.client.request(method, path.replace("{g}", group), json=body, headers=headers)
    assert answer.status_code < 500, answer.text
    name = (
        headers["Host"].lower().rsplit(":", 1)[0]
        if headers["Host"].count(":") == 1
        else headers["Host"].lower()
    )
    if name not in ("127.0.0.1", "localhost", "10.0.0.2"):
        assert answer.status_code == 421
    elif method != "GET" and (
        (site is not None and site not in ("same-origin", "none"))
        or (
            site is None
            and headers.get("Origin")  # an empty Origin is no Origin (browsers send "null")
            and headers["Origin"].lower() != f"http://{headers['Host'].lower()}"
        )
    ):
        assert answer.status_code == 403
    else:
        assert answer.status_code not in (403, 421)
