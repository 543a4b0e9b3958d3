"""Other clients work against the emulator unchanged: the spec page's curl, apprise, our SDK."""

from __future__ import annotations

import shutil
import subprocess

import apprise
import pytest
from apprise.plugins.wecombot import NotifyWeComBot

from tests.images import amr_bytes, png_bytes
from wecom_bot.client import Bot
from wecom_bot.errors import HTTPStatusError, RateLimitedError
from wecom_bot.masking import key_fingerprint
from wecom_bot.messages import Article, VoiceMessage

from .conftest import Emu, new_key
from .payloads import SPEC_CURL, SPEC_KEY

# apprise loads its plugins lazily and one of them imports the deprecated imghdr module.
APPRISE_WARNINGS = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


def test_the_spec_pages_curl_example_runs_verbatim(emu: Emu) -> None:
    assert shutil.which("curl"), "curl is needed for this test"
    command = SPEC_CURL.replace("https://qyapi.weixin.qq.com", emu.url)
    assert command.count(emu.url) == 1
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, timeout=20, check=True, text=True
    )
    assert done.stdout == '{"errcode":0,"errmsg":"ok"}'
    [entry] = emu.entries(SPEC_KEY)
    assert entry["payload"] == {"msgtype": "text", "text": {"content": "hello world"}}


@APPRISE_WARNINGS
def test_apprise_wecombot_message_is_stored(emu: Emu, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    # apprise builds its URL from this template; only the host changes.
    template = NotifyWeComBot.notify_url.replace("https://qyapi.weixin.qq.com", emu.url)
    assert template != NotifyWeComBot.notify_url
    monkeypatch.setattr(NotifyWeComBot, "notify_url", template)
    notifier = apprise.Apprise()
    assert notifier.add(f"wecombot://{key}")
    assert bool(notifier.notify(body="磁盘使用率 91%", title="disk alert"))
    [entry] = emu.entries(key)
    assert entry["status"] == "accepted" and entry["msgtype"] == "text"
    assert "磁盘使用率 91%" in entry["payload"]["text"]["content"]


@APPRISE_WARNINGS
def test_apprise_cannot_tell_a_rate_limited_message_from_a_sent_one(
    emu: Emu, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer's weakness the style guide names: HTTP 200 taken as success."""
    key = new_key()
    template = NotifyWeComBot.notify_url.replace("https://qyapi.weixin.qq.com", emu.url)
    monkeypatch.setattr(NotifyWeComBot, "notify_url", template)
    answer = emu.client.post(
        f"/api/groups/{key_fingerprint(key)}/faults", json={"kind": "errcode", "errcode": 45009}
    )
    assert answer.status_code == 201
    notifier = apprise.Apprise()
    notifier.add(f"wecombot://{key}")
    reported = bool(notifier.notify(body="lost"))
    [entry] = emu.entries(key)
    assert entry["errcode"] == 45009 and entry["status"] == "rejected"
    assert reported is True  # apprise says "sent"; the emulator shows it was not


def test_our_sdk_sends_every_kind_and_sees_faults(emu: Emu) -> None:
    key = new_key()
    bot = Bot(key, base_url=emu.url, timeout=5, retry=False)
    try:
        bot.send_text("hello", mentioned_list=["@all"])
        bot.send_markdown("**bold**")
        bot.send_image(png_bytes())
        bot.send_news([Article(title="t", url="https://example.com")])
        upload = bot.upload_media(amr_bytes(200), type="voice", filename="v.amr")
        bot.send(VoiceMessage(media_id=upload.media_id))
        gid = key_fingerprint(key)
        emu.client.post(f"/api/groups/{gid}/faults", json={"kind": "errcode", "errcode": 45009})
        with pytest.raises(RateLimitedError) as limited:
            bot.send_text("limited")
        assert limited.value.retryable and key not in str(limited.value)
        emu.client.post(f"/api/groups/{gid}/faults", json={"kind": "http_status", "status": 502})
        with pytest.raises(HTTPStatusError) as bad_gateway:
            bot.send_text("bad gateway")
        assert bad_gateway.value.status_code == 502
    finally:
        bot.close()
    kinds = [e["msgtype"] for e in emu.entries(key) if e["status"] == "accepted"]
    assert kinds == ["text", "markdown", "image", "news", "voice"]
