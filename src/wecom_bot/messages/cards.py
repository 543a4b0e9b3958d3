"""Template cards: ``text_notice`` and ``news_notice``, with every part the spec lists.

Hard rules (list lengths, click types and the fields each type needs, aspect ratio, colours)
are enforced when a card is built. Display lengths the spec only *advises* are reported by
:meth:`~wecom_bot.messages.Message.advisories`, never rejected.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from .. import limits
from ..errors import Rule
from ._base import ApiModel, Message, fail


def _require_for_type(model: ApiModel, kind: int | None, needs: dict[int, str]) -> None:
    """Raise when the click ``type`` of ``model`` needs a field that is missing or empty."""
    if kind is None:
        return
    field = needs.get(kind)
    if field is not None and not getattr(model, field):
        raise fail(Rule.REQUIRED, f"is required when type is {kind}", field=field)


def _check_choice(value: int | None, allowed: tuple[int, ...]) -> int | None:
    if value is not None and value not in allowed:
        raise fail(
            Rule.CHOICE,
            f"must be one of {', '.join(map(str, allowed))}, got {value}",
            limit=list(allowed),
            actual=value,
        )
    return value


class Source(ApiModel):
    """Where the card comes from: icon, short description (<= 13 chars advised), its colour.

    ``desc_color``: 0 grey (default), 1 black, 2 red, 3 green.
    """

    api_path: ClassVar[str] = "template_card.source"

    icon_url: str | None = None
    desc: str | None = None
    desc_color: int | None = None

    @field_validator("desc_color")
    @classmethod
    def _color(cls, value: int | None) -> int | None:
        return _check_choice(value, limits.SOURCE_DESC_COLORS)


class MainTitle(ApiModel):
    """The main title (<= 26 chars advised) and its description (<= 30 advised)."""

    api_path: ClassVar[str] = "template_card.main_title"

    title: str | None = None
    desc: str | None = None


class EmphasisContent(ApiModel):
    """Key figure of a text_notice card: value (<= 10 advised) and what it means (<= 15)."""

    api_path: ClassVar[str] = "template_card.emphasis_content"

    title: str | None = None
    desc: str | None = None


class _Clickable(ApiModel):
    """A part a click can open: ``type`` picks what, and each type needs its own field."""

    click_types: ClassVar[tuple[int, ...]] = (0, 1, 2)
    needs: ClassVar[dict[int, str]] = {1: "url", 2: "appid"}

    type: int | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: int | None) -> int | None:
        return _check_choice(value, cls.click_types)

    @model_validator(mode="after")
    def _needs(self) -> Self:
        _require_for_type(self, self.type, self.needs)
        return self


class QuoteArea(_Clickable):
    """A quoted block; ``type`` 0/absent no click, 1 url (``url``), 2 mini program (``appid``)."""

    api_path: ClassVar[str] = "template_card.quote_area"

    title: str | None = None
    quote_text: str | None = None


class HorizontalContent(_Clickable):
    """A key/value row; ``type`` 1 link (``url``), 2 file (``media_id``), 3 member (``userid``)."""

    api_path: ClassVar[str] = "template_card.horizontal_content_list[]"
    click_types: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    needs: ClassVar[dict[int, str]] = {1: "url", 2: "media_id", 3: "userid"}

    keyname: str
    value: str | None = None
    media_id: str | None = None
    userid: str | None = None


class JumpItem(_Clickable):
    """A link row; ``type`` 0/absent plain text, 1 url (``url``), 2 mini program (``appid``)."""

    api_path: ClassVar[str] = "template_card.jump_list[]"

    title: str


class CardAction(_Clickable):
    """What a click on the card does (required): 1 open ``url``, 2 open mini program ``appid``."""

    api_path: ClassVar[str] = "template_card.card_action"
    click_types: ClassVar[tuple[int, ...]] = (1, 2)

    type: int


class CardImage(ApiModel):
    """The large picture of a news_notice card; ``aspect_ratio`` in [1.3, 2.25], default 1.3."""

    api_path: ClassVar[str] = "template_card.card_image"

    url: str
    aspect_ratio: float | None = None

    @field_validator("aspect_ratio")
    @classmethod
    def _ratio(cls, value: float | None) -> float | None:
        low, high = limits.CARD_IMAGE_ASPECT_RATIO_MIN, limits.CARD_IMAGE_ASPECT_RATIO_MAX
        if value is not None and not low <= value <= high:
            raise fail(
                Rule.RANGE,
                f"must be between {low} and {high}, got {value}",
                limit=[low, high],
                actual=value,
            )
        return value


class ImageTextArea(_Clickable):
    """Picture on the left, text on the right; click ``type`` rules as for the quote area."""

    api_path: ClassVar[str] = "template_card.image_text_area"

    title: str | None = None
    desc: str | None = None
    image_url: str | None = None


class VerticalContent(ApiModel):
    """A title (<= 26 advised) and text (<= 112 advised) block of a news_notice card."""

    api_path: ClassVar[str] = "template_card.vertical_content_list[]"

    title: str
    desc: str | None = None


def _advise(out: list[str], path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        out.append(f"{path} has {len(value)} characters; WeCom advises at most {limit}")


class _Card(Message):
    msgtype: ClassVar[str] = "template_card"
    card_type: str
    source: Source | None = None
    main_title: MainTitle | None = None
    quote_area: QuoteArea | None = None
    horizontal_content_list: list[HorizontalContent] | None = Field(
        default=None, max_length=limits.HORIZONTAL_CONTENT_MAX_ITEMS
    )
    jump_list: list[JumpItem] | None = Field(default=None, max_length=limits.JUMP_LIST_MAX_ITEMS)
    card_action: CardAction

    @model_validator(mode="before")
    @classmethod
    def _fill_card_type(cls, data: Any) -> Any:
        # Built with keywords, the card type is implied by the class.
        if isinstance(data, dict) and "card_type" not in data:
            return {**data, "card_type": cls.model_fields["card_type"].default}
        return data

    def advisories(self) -> list[str]:
        """Display lengths over WeCom's advice (characters); they do not block sending."""
        out: list[str] = []
        p = "template_card"
        if self.source:
            _advise(out, f"{p}.source.desc", self.source.desc, limits.ADVISED_SOURCE_DESC_CHARS)
        if self.main_title:
            mt = self.main_title
            _advise(out, f"{p}.main_title.title", mt.title, limits.ADVISED_MAIN_TITLE_CHARS)
            _advise(out, f"{p}.main_title.desc", mt.desc, limits.ADVISED_MAIN_TITLE_DESC_CHARS)
        for i, row in enumerate(self.horizontal_content_list or []):
            q = f"{p}.horizontal_content_list[{i}]"
            _advise(out, f"{q}.keyname", row.keyname, limits.ADVISED_HORIZONTAL_KEYNAME_CHARS)
            _advise(out, f"{q}.value", row.value, limits.ADVISED_HORIZONTAL_VALUE_CHARS)
        for i, jump in enumerate(self.jump_list or []):
            _advise(out, f"{p}.jump_list[{i}].title", jump.title, limits.ADVISED_JUMP_TITLE_CHARS)
        return out


class TextNoticeCard(_Card):
    """A ``text_notice`` template card.

    ``card_action`` is required, and so is one of ``main_title.title`` or ``sub_title_text``.
    """

    card_type: Literal["text_notice"] = "text_notice"
    emphasis_content: EmphasisContent | None = None
    sub_title_text: str | None = None

    @model_validator(mode="after")
    def _title_or_subtitle(self) -> Self:
        if not (self.main_title and self.main_title.title) and not self.sub_title_text:
            raise fail(
                Rule.REQUIRED,
                "text_notice needs main_title.title or sub_title_text (one or both)",
                field="main_title.title",
            )
        return self

    def advisories(self) -> list[str]:
        """Display lengths over WeCom's advice (characters); they do not block sending."""
        out = super().advisories()
        p = "template_card"
        if self.emphasis_content:
            ec = self.emphasis_content
            _advise(
                out, f"{p}.emphasis_content.title", ec.title, limits.ADVISED_EMPHASIS_TITLE_CHARS
            )
            _advise(out, f"{p}.emphasis_content.desc", ec.desc, limits.ADVISED_EMPHASIS_DESC_CHARS)
        _advise(
            out, f"{p}.sub_title_text", self.sub_title_text, limits.ADVISED_SUB_TITLE_TEXT_CHARS
        )
        return out


class NewsNoticeCard(_Card):
    """A ``news_notice`` template card (picture, image-text area, vertical list).

    ``card_action`` and ``main_title.title`` are required.
    """

    card_type: Literal["news_notice"] = "news_notice"
    card_image: CardImage | None = None
    image_text_area: ImageTextArea | None = None
    vertical_content_list: list[VerticalContent] | None = Field(
        default=None, max_length=limits.VERTICAL_CONTENT_MAX_ITEMS
    )

    @model_validator(mode="after")
    def _title(self) -> Self:
        if not (self.main_title and self.main_title.title):
            raise fail(
                Rule.REQUIRED, "news_notice needs main_title.title", field="main_title.title"
            )
        return self

    def advisories(self) -> list[str]:
        """Display lengths over WeCom's advice (characters); they do not block sending."""
        out = super().advisories()
        for i, item in enumerate(self.vertical_content_list or []):
            q = f"template_card.vertical_content_list[{i}]"
            _advise(out, f"{q}.title", item.title, limits.ADVISED_VERTICAL_TITLE_CHARS)
            _advise(out, f"{q}.desc", item.desc, limits.ADVISED_VERTICAL_DESC_CHARS)
        return out


TemplateCard = TextNoticeCard | NewsNoticeCard
"""Either template card."""
