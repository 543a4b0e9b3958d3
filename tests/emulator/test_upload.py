"""The upload_media endpoint: answer shape, size and type rules, ownership and expiry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.images import amr_bytes
from wecom_bot import limits
from wecom_bot.masking import key_fingerprint

from .conftest import Emu, errcode, errtext, new_key


class FakeClock:
    """Wall-clock seconds that move only when told."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def amr_frames(frames: int) -> bytes:
    """An AMR-NB file of ``frames`` 20 ms frames (mode 12.2 kbit/s: 1 + 31 bytes each)."""
    return b"#!AMR\n" + (b"\x3c" + b"\x00" * 31) * frames


def test_file_upload_answers_like_wecom(make_emu: Any) -> None:
    clock, key = FakeClock(), new_key()
    with make_emu(clock=clock, rate=None) as emu:
        answer = emu.upload(key, b"mytext", "file", "wework.txt")
        assert errcode(answer) == 0
        body = answer.json()
        assert list(body) == ["errcode", "errmsg", "type", "media_id", "created_at"]
        assert body["errmsg"] == "ok" and body["type"] == "file"
        assert body["created_at"] == "1700000000"
        assert len(body["media_id"]) >= 20 and body["media_id"].isascii()
        [media] = emu.client.get(f"/api/groups/{key_fingerprint(key)}/media").json()["media"]
        assert media["filename"] == "wework.txt" and media["size"] == 6
        assert emu.client.get(f"/api/media/{body['media_id']}").content == b"mytext"


def test_the_spec_pages_raw_multipart_request_is_accepted(emu: Emu, key: str) -> None:
    boundary = "-------------------------acebdf13572468"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="media";filename="wework.txt"; filelength=6\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        "mytext\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    answer = emu.client.post(
        "/cgi-bin/webhook/upload_media",
        params={"key": key, "type": "file"},
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert errcode(answer) == 0
    media_id = answer.json()["media_id"]
    assert emu.client.get(f"/api/media/{media_id}").content == b"mytext"


def test_voice_must_be_amr_within_size_and_duration(emu: Emu, key: str) -> None:
    assert errcode(emu.upload(key, amr_frames(3000), "voice", "a.amr")) == 0  # 60.0 s
    too_long = emu.upload(key, amr_frames(3001), "voice", "a.amr")
    assert errcode(too_long) == 40058
    assert errtext(too_long) == "media exceed max duration 60s. invalid Request Parameter"
    not_amr = emu.upload(key, b"RIFF....WAVEfmt ", "voice", "a.wav")
    assert errcode(not_amr) == 40058
    assert errtext(not_amr) == "media invalid format, voice must be AMR. invalid Request Parameter"
    too_big = emu.upload(key, amr_bytes(limits.VOICE_MAX_BYTES + 1), "voice", "a.amr")
    assert errtext(too_big) == "media exceed max length 2097152. invalid Request Parameter"
    wideband = b"#!AMR-WB\n" + (b"\x44" + b"\x00" * 46) * 10
    assert errcode(emu.upload(key, wideband, "voice", "wb.amr")) == 0


def test_size_floor_is_more_than_five_bytes(emu: Emu, key: str) -> None:
    small = emu.upload(key, b"12345")
    assert errcode(small) == 40058
    assert errtext(small) == "media below min length 6. invalid Request Parameter"
    assert errcode(emu.upload(key, b"123456")) == 0


def test_file_over_20_mib_is_refused(emu: Emu, key: str) -> None:
    answer = emu.upload(key, b"\0" * (limits.FILE_MAX_BYTES + 1))
    assert errcode(answer) == 40058
    assert errtext(answer) == "media exceed max length 20971520. invalid Request Parameter"


def test_body_far_over_the_cap_is_refused_unread(make_emu: Any) -> None:
    key = new_key()
    with make_emu(upload_body_cap=10_000, rate=None) as emu:
        answer = emu.upload(key, b"x" * 50_000)
        assert errtext(answer) == "media exceed max length 20971520. invalid Request Parameter"
        [entry] = emu.entries(key)
        assert entry["endpoint"] == "upload_media" and entry["status"] == "rejected"


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"files": {"media": ("empty.txt", b"")}},
        {"files": {"attachment": ("a.txt", b"0123456789")}},
        {"data": {"media": "not a file part"}, "files": {"x": ("x", b"1")}},
        {"json": {"media": "0123456789"}},
        {"content": b"--zz\r\nbroken", "headers": {"Content-Type": "multipart/form-data; b=zz"}},
        {},
    ],
    ids=["empty-file", "wrong-field", "plain-field", "json", "broken-multipart", "no-body"],
)
def test_missing_or_empty_media_is_44001(emu: Emu, key: str, request_kwargs: Any) -> None:
    answer = emu.client.post(
        "/cgi-bin/webhook/upload_media", params={"key": key, "type": "file"}, **request_kwargs
    )
    assert errcode(answer) == 44001
    assert errtext(answer) == "empty media data"


def test_empty_media_is_reported_before_the_key(emu: Emu) -> None:
    answer = emu.client.post(
        "/cgi-bin/webhook/upload_media",
        params={"key": "bad key", "type": "file"},
        files={"media": ("e", b"")},
    )
    assert errcode(answer) == 44001


@pytest.mark.parametrize("bad_key", [None, "", "has space", "x" * 200])
def test_bad_key_is_invalid_param_key(emu: Emu, bad_key: str | None) -> None:
    params = {"type": "file"} | ({"key": bad_key} if bad_key is not None else {})
    answer = emu.client.post(
        "/cgi-bin/webhook/upload_media", params=params, files={"media": ("a", b"0123456789")}
    )
    assert errcode(answer) == 40058
    assert errtext(answer) == "invalid param 'key'"


@pytest.mark.parametrize("media_type", [None, "", "image", "FILE", "video"])
def test_type_other_than_file_or_voice_is_40004(emu: Emu, key: str, media_type: str | None) -> None:
    params = {"key": key} | ({"type": media_type} if media_type is not None else {})
    answer = emu.client.post(
        "/cgi-bin/webhook/upload_media", params=params, files={"media": ("a", b"0123456789")}
    )
    assert errcode(answer) == 40004
    assert errtext(answer) == "invalid media type"


def test_restricted_keys_refuse_uploads_from_others(make_emu: Any) -> None:
    allowed = new_key()
    with make_emu(keys=[allowed], rate=None) as emu:
        assert errcode(emu.upload(allowed, b"0123456789")) == 0
        assert errtext(emu.upload(new_key(), b"0123456789")) == "invalid param 'key'"


def test_media_id_expires_after_three_days(make_emu: Any) -> None:
    clock, key = FakeClock(), new_key()
    with make_emu(clock=clock, rate=None) as emu:
        media_id = emu.media_id(key, b"quarterly report")
        payload = {"msgtype": "file", "file": {"media_id": media_id}}
        clock.now += limits.MEDIA_TTL_SECONDS - 1
        assert errcode(emu.send(key, payload)) == 0
        clock.now += 2
        expired = emu.send(key, payload)
        assert errcode(expired) == 40007
        assert errtext(expired) == "invalid media_id"
        assert expired.json()["errmsg"].split("hint: [")[1][:10] == str(int(clock.now))


def test_upload_filename_keeps_only_the_base_name(emu: Emu, key: str) -> None:
    media_id = emu.upload(key, b"0123456789", "file", "../../etc/报告.txt").json()["media_id"]
    [media] = emu.client.get(f"/api/groups/{key_fingerprint(key)}/media").json()["media"]
    assert media["media_id"] == media_id and media["filename"] == "报告.txt"


def test_unknown_media_download_is_404(emu: Emu) -> None:
    assert emu.client.get("/api/media/nope").status_code == 404


def test_uploads_run_concurrently_without_mixing_up(emu: Emu, key: str) -> None:
    import concurrent.futures

    def one(i: int) -> tuple[int, str]:
        with httpx.Client(base_url=emu.url) as client:
            answer = client.post(
                "/cgi-bin/webhook/upload_media",
                params={"key": key, "type": "file"},
                files={"media": (f"{i}.txt", f"payload-{i:04d}".encode())},
            )
            return i, answer.json()["media_id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    for i, media_id in results:
        assert emu.client.get(f"/api/media/{media_id}").content == f"payload-{i:04d}".encode()
