"""The page over plain HTTP: the shell and its policy, the assets, and the drawn entries."""

from __future__ import annotations

import base64
import json
import re
import uuid
from hashlib import md5 as md5_hash
from html.parser import HTMLParser

import pytest

from tests.images import amr_bytes, png_bytes
from wecom_bot.emulator.page import CONTENT_SECURITY_POLICY
from wecom_bot.masking import key_fingerprint, mask_key
from wecom_bot.preview import PREVIEW_CSS

from .conftest import Emu

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">"\'&'
BAD_URL = "javascript:window.__pwned=1"


def new_key() -> str:
    return str(uuid.uuid4())


class Tags(HTMLParser):
    """Every start tag of a fragment with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> Tags:
    tags = Tags()
    tags.feed(fragment)
    tags.close()
    return tags


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_page_is_served_with_a_strict_policy(emu: Emu) -> None:
    answer = emu.client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    policy = directives(answer.headers["content-security-policy"])
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert not any("unsafe" in v for values in policy.values() for v in values)


def test_page_shell_has_no_inline_script_style_or_handlers(emu: Emu) -> None:
    page = emu.client.get("/").text
    tags = parse(page)
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert scripts == [{"src": "/page/assets/page.js", "defer": None}]
    assert re.findall(r"<script[^>]*>(.*?)</script>", page, re.S) == [""]  # no script body
    assert not [tag for tag, _ in tags.tags if tag == "style"]
    for tag, attrs in tags.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
    sheets = [attrs["href"] for tag, attrs in tags.tags if tag == "link" and "stylesheet" in (
        attrs.get("rel") or "")]  # fmt: skip
    assert sheets == ["/page/assets/preview.css", "/page/assets/page.css"]
    assert re.search(r'data-last-entry-id="\d+"', page)


def test_page_never_shows_a_key(emu: Emu) -> None:
    key = new_key()
    emu.send_ok(key, {"msgtype": "text", "text": {"content": f"my key is {key}"}})
    assert key not in emu.client.get("/").text
    [entry] = emu.entries(key)
    assert key not in json.dumps(entry, ensure_ascii=False)
    assert mask_key(key) in entry["html"]  # the emulator masks a key quoted in a message


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.js", "text/javascript; charset=utf-8"),
        ("page.css", "text/css; charset=utf-8"),
        ("preview.css", "text/css; charset=utf-8"),
    ],
)
def test_assets_are_served_from_the_package(emu: Emu, name: str, content_type: str) -> None:
    answer = emu.client.get(f"/page/assets/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert len(answer.text) > 1000
    assert re.search(r"https?://|@import|url\(\s*['\"]?(?!data:)", answer.text) is None
    if name == "preview.css":
        assert answer.text == PREVIEW_CSS


def test_page_script_inserts_html_in_one_place_only(emu: Emu) -> None:
    script = emu.client.get("/page/assets/page.js").text
    # The one place HTML is inserted: the server-drawn preview fragment.
    assert script.count("innerHTML") == 2  # the comment that says so, and the assignment
    assert "rendered.innerHTML = typeof entry.html" in script
    assert "insertAdjacentHTML" not in script and "outerHTML" not in script
    assert "eval(" not in script and "new Function" not in script


@pytest.mark.parametrize("name", ["nope.js", "..%2Fpage.py", "page.py", "static"])
def test_unknown_assets_are_404(emu: Emu, name: str) -> None:
    assert emu.client.get(f"/page/assets/{name}").status_code == 404


def test_entries_draw_accepted_messages_and_describe_rejected_ones(emu: Emu) -> None:
    key = new_key()
    content = '# 标题\n<font color="info">ok</font>'
    emu.send_ok(key, {"msgtype": "markdown", "markdown": {"content": content}})
    rejected = emu.send(key, {"msgtype": "text", "text": {"content": "长" * 700}})
    assert rejected["errcode"] == 40058
    accepted, refused = emu.entries(key)

    assert accepted["status"] == "accepted" and accepted["msgtype"] == "markdown"
    assert accepted["size"] == len(content.encode())
    assert accepted["size_limit"] == 4096 and accepted["over_limit"] is False
    assert 'class="wb-msg wb-msg--markdown"' in accepted["html"]
    assert '<span class="wb-font wb-font--info">ok</span>' in accepted["html"]

    assert refused["status"] == "rejected" and refused["html"] is None
    assert refused["errcode"] == 40058
    assert refused["reason"] == "text.content exceed max length 2048. invalid Request Parameter"
    assert ", hint: [" in refused["errmsg"] and ", hint:" not in refused["reason"]
    assert (refused["size"], refused["size_limit"], refused["over_limit"]) == (2100, 2048, True)
    assert refused["payload"]["text"]["content"] == "长" * 700


def test_entries_escape_hostile_content_in_every_field(emu: Emu) -> None:
    key = new_key()
    media_id = emu.upload(key, b"%PDF-1.4 report", "file", f"{HOSTILE}.pdf")
    hostile = [
        {"msgtype": "text", "text": {"content": HOSTILE, "mentioned_list": [HOSTILE]}},
        {"msgtype": "markdown", "markdown": {
            "content": f"# {HOSTILE}\n[click]({BAD_URL}) <@{HOSTILE}> `{HOSTILE}`"}},
        {"msgtype": "markdown_v2", "markdown_v2": {
            "content": f"| {HOSTILE} |\n| --- |\n| x |\n\n![a]({BAD_URL})\n```\n{HOSTILE}\n```"}},
        {"msgtype": "news", "news": {"articles": [
            {"title": HOSTILE, "description": HOSTILE, "url": BAD_URL, "picurl": BAD_URL},
            {"title": HOSTILE, "url": "https://example.com/\"onmouseover=\"x", "picurl": BAD_URL},
        ]}},
        {"msgtype": "file", "file": {"media_id": media_id}},
        {"msgtype": "template_card", "template_card": {
            "card_type": "text_notice",
            "source": {"icon_url": BAD_URL, "desc": HOSTILE},
            "main_title": {"title": HOSTILE, "desc": HOSTILE},
            "quote_area": {"type": 1, "url": BAD_URL, "title": HOSTILE, "quote_text": HOSTILE},
            "sub_title_text": HOSTILE,
            "horizontal_content_list": [{"keyname": HOSTILE, "value": HOSTILE, "type": 1,
                                         "url": BAD_URL}],
            "jump_list": [{"type": 1, "title": HOSTILE, "url": BAD_URL}],
            "card_action": {"type": 1, "url": BAD_URL},
        }},
    ]  # fmt: skip
    for payload in hostile:
        answer = emu.send(key, payload)
        assert answer["errcode"] in (0, 40058), answer
    entries = [e for e in emu.entries(key) if e["html"] is not None]
    assert len(entries) >= 4
    for entry in entries:
        tags = parse(entry["html"])
        for tag, attrs in tags.tags:
            assert tag not in {"script", "iframe", "object", "embed", "svg", "style", "base"}
            assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
            assert "style" not in attrs, (tag, attrs)
            for name in ("href", "src"):
                value = attrs.get(name)
                if value is not None:
                    assert value.startswith(("https://", "http://", "data:image/png;base64,",
                                             "data:image/jpeg;base64,")), value  # fmt: skip
        assert "<script" not in entry["html"]
        text = "".join(tags.text)
        assert "<script>" in text or "<img" in text or entry["msgtype"] == "file"
    # The raw payload comes back as data, untouched: the page shows it as text.
    assert entries[0]["payload"]["text"]["content"] == HOSTILE


def test_file_and_voice_entries_show_names_and_sizes(emu: Emu) -> None:
    key = new_key()
    file_id = emu.upload(key, b"x" * 3000, "file", "季度报告.pdf")
    voice_id = emu.upload(key, amr_bytes(900), "voice", "standup.amr")
    emu.send_ok(key, {"msgtype": "file", "file": {"media_id": file_id}})
    emu.send_ok(key, {"msgtype": "voice", "voice": {"media_id": voice_id}})
    file_entry, voice_entry = emu.entries(key)
    assert "季度报告.pdf" in file_entry["html"] and "2.9 KB" in file_entry["html"]
    assert (file_entry["size"], file_entry["size_limit"]) == (3000, 20 * 1024 * 1024)
    assert "standup.amr" in voice_entry["html"] and "900 B" in voice_entry["html"]
    assert voice_entry["media"][0]["media_id"] == voice_id


def test_card_aspect_ratio_becomes_a_data_attribute(emu: Emu) -> None:
    key = new_key()
    emu.send_ok(key, {"msgtype": "template_card", "template_card": {
        "card_type": "news_notice",
        "main_title": {"title": "t"},
        "card_image": {"url": "https://example.com/a.png", "aspect_ratio": 2.25},
        "card_action": {"type": 1, "url": "https://example.com"},
    }})  # fmt: skip
    [entry] = emu.entries(key)
    assert 'data-wb-aspect-ratio="2.25"' in entry["html"]
    assert "style=" not in entry["html"]  # the policy would refuse it; page.js applies it
    assert entry["size_limit"] is None and entry["size"] > 100  # JSON body, no documented limit


def test_image_entries_measure_the_decoded_bytes(emu: Emu) -> None:
    key = new_key()
    data = png_bytes(4, 4, padding=500)
    encoded = base64.b64encode(data).decode()
    digest = md5_hash(data).hexdigest()
    emu.send_ok(key, {"msgtype": "image", "image": {"base64": encoded, "md5": digest}})
    [entry] = emu.entries(key)
    assert (entry["size"], entry["size_limit"]) == (len(data), 2 * 1024 * 1024)
    assert 'src="data:image/png;base64,' in entry["html"]


def test_entries_page_forward_and_tail(emu: Emu) -> None:
    key = new_key()
    for i in range(5):
        emu.send_ok(key, {"msgtype": "text", "text": {"content": f"m{i}"}})
    group = key_fingerprint(key)
    first = emu.client.get(f"/page/groups/{group}/entries", params={"limit": 2}).json()
    assert [e["payload"]["text"]["content"] for e in first["entries"]] == ["m0", "m1"]
    assert first["more"] is True
    rest = emu.client.get(
        f"/page/groups/{group}/entries", params={"since_id": first["next_since_id"]}
    ).json()
    assert [e["payload"]["text"]["content"] for e in rest["entries"]] == ["m2", "m3", "m4"]
    assert rest["more"] is False
    tail = emu.client.get(
        f"/page/groups/{group}/entries", params={"limit": 2, "tail": "true"}
    ).json()
    assert [e["payload"]["text"]["content"] for e in tail["entries"]] == ["m3", "m4"]
    assert tail["skipped"] == 3 and tail["more"] is False
    assert tail["next_since_id"] == rest["next_since_id"]


@pytest.mark.parametrize("group", ["00000000", "not-an-id", "<script>"])
def test_entries_of_unknown_groups_are_404(emu: Emu, group: str) -> None:
    answer = emu.client.get(f"/page/groups/{group}/entries")
    assert answer.status_code == 404
    assert answer.json() == {"error": "no such group"}


def test_bad_query_values_are_refused(emu: Emu) -> None:
    key = new_key()
    emu.send_ok(key, {"msgtype": "text", "text": {"content": "x"}})
    group = key_fingerprint(key)
    for params in ({"since_id": "-1"}, {"limit": "0"}, {"tail": "maybe"}):
        answer = emu.client.get(f"/page/groups/{group}/entries", params=params)
        assert answer.status_code == 400, params
