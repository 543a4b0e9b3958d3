"""The clients against a real local HTTP server: success, each errcode, HTTP 5xx, timeouts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.scripted import Answer, ScriptedAPI
from tests.images import amr_bytes, png_bytes
from tests.servers import serve
from wecom_bot import (
    AsyncBot,
    Bot,
    ConfigError,
    DeliveryError,
    HTTPStatusError,
    InvalidKeyError,
    MediaValidationError,
    MessageValidationError,
    RateLimitedError,
    RequestTimeout,
    TextMessage,
    TransportError,
    UnexpectedAnswerError,
    WeComAPIError,
)
from wecom_bot.errors import (
    EmptyContentError,
    InvalidMessageTypeError,
    InvalidParameterError,
    MediaMD5MismatchError,
    SystemBusyError,
)
from wecom_bot.retry import RetryPolicy

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, rate_window=0.05)


_OPEN: list[Bot] = []


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[ScriptedAPI, str]]:
    scripted = ScriptedAPI()
    with serve(scripted.app) as url:
        yield scripted, url


@pytest.fixture
def api(_server: tuple[ScriptedAPI, str]) -> Iterator[tuple[ScriptedAPI, str]]:
    scripted, _ = _server
    scripted.answers.clear()
    scripted.received.clear()
    yield _server
    while _OPEN:
        _OPEN.pop().close()


def bot(url: str, **options: object) -> Bot:
    """A Bot for the scripted server, without retries unless asked; closed after the test."""
    options.setdefault("retry", None)
    client = Bot(KEY, base_url=url, **options)  # type: ignore[arg-type]
    _OPEN.append(client)
    return client


def test_send_posts_the_exact_json_with_the_key(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    result = bot(url).send_text("告警 fired", mentioned_list=["@all"])
    assert (result.errcode, result.errmsg, result.attempts) == (0, "ok", 1)
    (request,) = scripted.received
    assert request.path == "/cgi-bin/webhook/send"
    assert request.query == {"key": KEY}
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == {
        "msgtype": "text",
        "text": {"content": "告警 fired", "mentioned_list": ["@all"]},
    }
    assert "告警".encode() in request.body  # UTF-8, not \\u escapes


@pytest.mark.parametrize("parameter", ["mentioned_list", "mentioned_mobile_list"])
def test_a_bare_string_for_a_mention_list_is_refused_before_sending(
    api: tuple[ScriptedAPI, str], parameter: str
) -> None:
    scripted, url = api
    with pytest.raises(MessageValidationError) as caught:
        bot(url).send_text("hi", **{parameter: "alice"})  # type: ignore[arg-type]
    assert caught.value.field == f"text.{parameter}"
    assert "not the string 'alice'" in str(caught.value)
    assert scripted.received == []


async def test_a_tuple_of_mentions_is_sent_as_a_list(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    bot(url).send_text("hi", mentioned_list=("alice", "bob"))
    async with AsyncBot(KEY, base_url=url, retry=None) as client:
        await client.send_text("hi", mentioned_mobile_list=("13800000000",))
        with pytest.raises(MessageValidationError):
            await client.send_text("hi", mentioned_list="bob")  # type: ignore[arg-type]
    first, second = (request.json()["text"] for request in scripted.received)
    assert first["mentioned_list"] == ["alice", "bob"]
    assert second["mentioned_mobile_list"] == ["13800000000"]


def test_full_webhook_url_gives_host_and_key(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    with Bot(f"{url}/cgi-bin/webhook/send?key={KEY}", retry=None) as client:
        client.send_markdown("**hi**")
    assert scripted.received[0].query["key"] == KEY
    assert scripted.received[0].json()["msgtype"] == "markdown"


@pytest.mark.parametrize(
    ("errcode", "errmsg", "error_type", "retryable"),
    [
        (93000, "invalid webhook url", InvalidKeyError, False),
        (45009, "api freq out of limit", RateLimitedError, True),
        (-1, "system busy", SystemBusyError, True),
        (40008, "invalid message type", InvalidMessageTypeError, False),
        (44004, "empty content", EmptyContentError, False),
        (40058, "text.content exceed max length 2048. invalid Request Parameter",
         InvalidParameterError, False),
        (301019, "media md5 not match", MediaMD5MismatchError, False),
        (12345, "something new", WeComAPIError, False),
    ],
)  # fmt: skip
def test_each_errcode_raises_its_error(
    api: tuple[ScriptedAPI, str],
    errcode: int,
    errmsg: str,
    error_type: type[WeComAPIError],
    retryable: bool,
) -> None:
    scripted, url = api
    tail = f", hint: [1700000000123456789012345], from ip: 127.0.0.1, more info at x?e={errcode}"
    scripted.then(Answer({"errcode": errcode, "errmsg": errmsg + tail}))
    with pytest.raises(error_type) as info:
        bot(url).send_text("x")
    error = info.value
    assert type(error) is error_type
    assert (error.errcode, error.errmsg, error.retryable) == (errcode, errmsg, retryable)
    assert KEY not in str(error) and KEY not in error.url
    assert "693a…5aaa" in error.url


def test_a_200_with_errcode_is_never_success(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer({"errcode": 45009, "errmsg": "ok"}))
    with pytest.raises(RateLimitedError):
        bot(url).send_text("x")


def test_success_with_warning_is_still_success(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer({"errcode": 0, "errmsg": "ok. Warning: wrong json format. "}))
    assert bot(url).send_text("x").errmsg.startswith("ok. Warning")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_retryable(api: tuple[ScriptedAPI, str], status: int) -> None:
    scripted, url = api
    scripted.then(Answer({"oops": 1}, status=status))
    with pytest.raises(HTTPStatusError) as info:
        bot(url).send_text("x")
    assert info.value.status_code == status and info.value.retryable


def test_http_4xx_is_not_retryable(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer({"oops": 1}, status=404))
    with pytest.raises(HTTPStatusError) as info:
        bot(url).send_text("x")
    assert not info.value.retryable


PORTAL = b"<!DOCTYPE html><html><head><title>Wi-Fi login</title></head><body>Sign in</body></html>"


@pytest.mark.parametrize(
    ("raw", "described"),
    [
        (PORTAL, "an HTML page (87 bytes, title 'Wi-Fi login')"),
        (b"<html>proxy login</html>", "an HTML page (24 bytes)"),
        (b"", "an empty body"),
        (b"  \n", "an empty body"),
        (b"Service Unavailable", "a body that is not JSON (19 bytes)"),
        (b'{"ok": true}', "JSON without an integer errcode"),
    ],
)
def test_a_200_that_is_not_the_apis_json_is_retryable(
    api: tuple[ScriptedAPI, str], raw: bytes, described: str
) -> None:
    scripted, url = api
    scripted.then(Answer(raw=raw))
    with pytest.raises(UnexpectedAnswerError) as info:
        bot(url).send_text("x")
    error = info.value
    assert isinstance(error, DeliveryError) and error.retryable and error.status_code == 200
    assert described in str(error) and "not the API's JSON" in str(error)
    assert KEY not in str(error) and KEY not in error.url


def test_a_portal_title_echoing_the_url_never_shows_the_key(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    page = f"<html><title>Blocked:\n https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}</title>"
    scripted.then(Answer(raw=page.encode()))
    with pytest.raises(UnexpectedAnswerError) as info:
        bot(url).send_text("x")
    text = str(info.value)
    assert KEY not in text and "key=693a" in text and "\n" not in text


def test_a_captive_portal_page_is_retried_then_the_send_succeeds(
    api: tuple[ScriptedAPI, str],
) -> None:
    scripted, url = api
    scripted.then(Answer(raw=PORTAL), Answer(raw=b""), Answer())
    result = bot(url, retry=FAST_RETRY).send_text("x")
    assert result.attempts == 3 and len(scripted.received) == 3


def test_a_captive_portal_page_that_stays_fails_after_the_attempts(
    api: tuple[ScriptedAPI, str],
) -> None:
    scripted, url = api
    scripted.then(*[Answer(raw=PORTAL)] * 3)
    with pytest.raises(UnexpectedAnswerError, match="captive portal"):
        bot(url, retry=FAST_RETRY).send_text("x")
    assert len(scripted.received) == FAST_RETRY.max_attempts


def test_timeout(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer(delay=1.0))
    with pytest.raises(RequestTimeout) as info:
        bot(url, timeout=0.2).send_text("x")
    assert info.value.retryable and KEY not in str(info.value)


def test_connection_refused_is_a_transport_error() -> None:
    with (
        Bot(KEY, base_url="http://127.0.0.1:9", retry=None, timeout=2) as client,
        pytest.raises(TransportError) as info,
    ):
        client.send_text("x")
    assert info.value.retryable
    assert KEY not in str(info.value)


def test_retries_transient_failures_then_succeeds(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(
        Answer(status=502),
        Answer({"errcode": -1, "errmsg": "system busy"}),
        Answer(),
    )
    result = bot(url, retry=FAST_RETRY).send_text("x")
    assert result.attempts == 3
    assert len(scripted.received) == 3


def test_gives_up_after_max_attempts(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(*[Answer({"errcode": -1, "errmsg": "system busy"})] * 3)
    with pytest.raises(SystemBusyError):
        bot(url, retry=FAST_RETRY).send_text("x")
    assert len(scripted.received) == 3


def test_permanent_errors_are_not_retried(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer({"errcode": 93000, "errmsg": "invalid webhook url"}))
    with pytest.raises(InvalidKeyError):
        bot(url, retry=FAST_RETRY).send_text("x")
    assert len(scripted.received) == 1


def test_rate_limited_answer_blocks_the_local_limiter(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer({"errcode": 45009, "errmsg": "api freq out of limit"}), Answer())
    client = bot(url, retry=FAST_RETRY, rate_limit="20/0.2s")
    assert client.send_text("x").attempts == 2
    assert client.limiter is not None


def test_local_rate_limit_spreads_sends(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    client = bot(url, rate_limit="3/0.3s")
    for i in range(7):
        client.send_text(f"m{i}")
    assert len(scripted.received) == 7
    assert client.limiter is not None and client.limiter.used(KEY) <= 3


def test_upload_then_send_file(api: tuple[ScriptedAPI, str], tmp_path: Path) -> None:
    scripted, url = api
    scripted.then(
        Answer({"errcode": 0, "errmsg": "ok", "type": "file", "media_id": "M1",
                "created_at": "1380000000"}),
        Answer(),
    )  # fmt: skip
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    bot(url).send_file(path)
    upload, send = scripted.received
    assert upload.path == "/cgi-bin/webhook/upload_media"
    assert upload.query == {"key": KEY, "type": "file"}
    assert upload.form["media"] == ("report.csv", b"a,b\n1,2\n")
    assert send.json() == {"msgtype": "file", "file": {"media_id": "M1"}}


def test_upload_media_returns_media(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(
        Answer({"errcode": 0, "errmsg": "ok", "type": "voice", "media_id": "V",
                "created_at": "1380000000"})
    )  # fmt: skip
    media = bot(url).upload_media(amr_bytes(), type="voice", filename="a.amr")
    assert (media.media_id, media.type, media.created_at) == ("V", "voice", 1380000000)


@pytest.mark.parametrize(
    ("data", "media_type", "rule"),
    [
        (b"12345", "file", "min_bytes"),
        (b"x" * (20 * 1024 * 1024 + 1), "file", "max_bytes"),
        (amr_bytes(2 * 1024 * 1024 + 1), "voice", "max_bytes"),
        (b"RIFF....WAVEfmt ", "voice", "format"),
        (b"123456", "video", "choice"),
    ],
)
def test_upload_rules_are_checked_before_any_request(
    api: tuple[ScriptedAPI, str], data: bytes, media_type: str, rule: str
) -> None:
    scripted, url = api
    with pytest.raises(MediaValidationError) as info:
        bot(url).upload_media(data, type=media_type, filename="f")  # type: ignore[arg-type]
    assert info.value.rule == rule
    assert scripted.received == []


def test_image_helper_sends_base64_and_md5(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    bot(url).send_image(png_bytes())
    body = scripted.received[0].json()
    assert body["msgtype"] == "image" and len(body["image"]["md5"]) == 32


def test_news_helper_accepts_dicts(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    bot(url).send_news([{"title": "t", "url": "https://example.com"}])
    assert scripted.received[0].json()["news"]["articles"] == [
        {"title": "t", "url": "https://example.com"}
    ]


def test_key_never_in_repr_or_logs(
    api: tuple[ScriptedAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    scripted, url = api
    scripted.then(Answer(status=503), Answer())
    caplog.set_level(logging.DEBUG)
    client = bot(url, retry=FAST_RETRY)
    client.send_text("x")
    assert KEY not in repr(client) and "693a…5aaa" in repr(client)
    assert KEY not in caplog.text
    assert KEY not in repr(client.endpoint)


def test_bad_key_or_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no key"):
        Bot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send")
    with pytest.raises(ConfigError, match="characters"):
        Bot("my key with spaces")
    with pytest.raises(ConfigError, match="empty"):
        Bot("")


async def test_async_bot_sends_and_raises(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(Answer(), Answer({"errcode": 93000, "errmsg": "invalid webhook url"}))
    async with AsyncBot(KEY, base_url=url, retry=None) as client:
        result = await client.send(TextMessage(content="async"))
        assert result.errcode == 0
        with pytest.raises(InvalidKeyError):
            await client.send_markdown_v2("# x")
    assert json.loads(scripted.received[0].body)["text"]["content"] == "async"


async def test_async_bot_retries_and_uploads(api: tuple[ScriptedAPI, str]) -> None:
    scripted, url = api
    scripted.then(
        Answer(status=500),
        Answer({"errcode": 0, "errmsg": "ok", "type": "file", "media_id": "M",
                "created_at": "1"}),
        Answer(),
    )  # fmt: skip
    async with AsyncBot(KEY, base_url=url, retry=FAST_RETRY, rate_limit="20/1s") as client:
        result = await client.send_file(b"hello world", filename="h.txt")
    assert result.errcode == 0
    assert [r.path.rsplit("/", 1)[1] for r in scripted.received] == [
        "upload_media", "upload_media", "send",
    ]  # fmt: skip
