"""Messages that carry media: image (inline base64), file and voice (uploaded media_id)."""

from __future__ import annotations

import base64 as b64
import binascii
import hashlib
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import field_validator, model_validator

from .. import limits
from ..errors import Rule
from ._base import Message, fail

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


def image_format(data: bytes) -> Literal["png", "jpeg"] | None:
    """Recognise PNG or JPEG by magic bytes; None for anything else."""
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    return None


class ImageMessage(Message):
    """An image, JPG or PNG, at most 2 MiB before base64.

    Build it with :meth:`from_bytes` or :meth:`from_path`, which compute ``base64`` and ``md5``;
    given both, they are checked against each other.
    """

    msgtype: ClassVar[str] = "image"
    base64: str
    md5: str

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Build an image message from raw JPG/PNG bytes."""
        return cls(base64=b64.b64encode(data).decode("ascii"), md5=hashlib.md5(data).hexdigest())

    @classmethod
    def from_path(cls, path: str | Path) -> Self:
        """Build an image message from a JPG/PNG file."""
        return cls.from_bytes(Path(path).read_bytes())

    @property
    def data(self) -> bytes:
        """The decoded image bytes."""
        return b64.b64decode(self.base64)

    @field_validator("md5")
    @classmethod
    def _check_md5(cls, value: str) -> str:
        if len(value) != 32 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise fail(Rule.FORMAT, f"must be 32 hex digits, got {len(value)} characters")
        return value

    @model_validator(mode="after")
    def _check_image(self) -> Self:
        try:
            data = b64.b64decode(self.base64, validate=True)
        except (binascii.Error, ValueError):
            raise fail(Rule.BASE64, "is not valid base64", field="base64") from None
        if not data:
            raise fail(Rule.EMPTY, "decodes to no data", field="base64")
        if len(data) > limits.IMAGE_MAX_BYTES:
            raise fail(
                Rule.MAX_BYTES,
                f"image is {len(data)} bytes, limit {limits.IMAGE_MAX_BYTES} bytes (2 MiB) "
                "before base64",
                limit=limits.IMAGE_MAX_BYTES,
                actual=len(data),
                field="base64",
            )
        if image_format(data) is None:
            raise fail(
                Rule.FORMAT, "image must be JPG or PNG (checked by magic bytes)", field="base64"
            )
        actual = hashlib.md5(data).hexdigest()
        if actual != self.md5.lower():
            raise fail(
                Rule.MD5_MISMATCH,
                f"{self.md5} does not match the md5 of the decoded bytes ({actual})",
                actual=actual,
                field="md5",
            )
        return self


def _check_media_id(value: str) -> str:
    if not value:
        raise fail(Rule.EMPTY, "must not be empty (upload the media first)")
    return value


class FileMessage(Message):
    """A file, by the media_id of an upload of type ``file`` (valid 3 days, this robot only)."""

    msgtype: ClassVar[str] = "file"
    media_id: str

    _media_id = field_validator("media_id")(_check_media_id)


class VoiceMessage(Message):
    """A voice message, by the media_id of an upload of type ``voice`` (AMR, <= 60 s)."""

    msgtype: ClassVar[str] = "voice"
    media_id: str

    _media_id = field_validator("media_id")(_check_media_id)
