"""The Chinese docs (``*.zh-CN.md``) stay in step with the English ones they translate.

Each pair is compared block by block, so that whoever edits the English file is told what to
carry over, and where. The rules a translation follows:

- **First line.** The English file starts with ``[中文](X.zh-CN.md)``, the Chinese one with
  ``[English](X.md)``. That line is not compared further.
- **Headings.** The same number, levels and order. Each Chinese heading carries the English
  heading's anchor, ``## <a id="storms"></a>风暴``, so that ``#storms`` works in both files
  and links keep their fragments.
- **Code blocks** (fenced, indentation included) are byte-identical and in the same order.
  Commands, configuration, sample messages and log lines are not translated, not even their
  comments: a command in the Chinese README must run as written, and a sample message shows
  what the gateway really sends.
- **Inline code** (```key```, ```wecom-bot gateway check```): the same spans in each section
  (between two headings), in any order, since a sentence may be turned around.
- **Tables**: the same tables in each section, with the same rows and columns.
- **Links and images**: the same targets in each section, in any order; a target that has a
  Chinese version (``docs/gateway.md``) is that version in the Chinese file
  (``docs/gateway.zh-CN.md``), fragment kept. Every relative link of the README and of
  docs/, in either language, resolves: the file exists, and so does the fragment (a
  heading's GitHub anchor or an ``id``).
- **Chinese.** Every paragraph, list item and table row of the Chinese file with six or more
  English words outside code also has Chinese in it (nothing left untranslated), and CJK
  characters are at least half of the letters of its prose.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [
    ("README.md", "README.zh-CN.md"),
    ("docs/gateway.md", "docs/gateway.zh-CN.md"),
    ("docs/actions.md", "docs/actions.zh-CN.md"),
]
CHINESE_OF = {ROOT / en: ROOT / zh for en, zh in PAIRS}
MIN_CJK_SHARE = 0.5
MAX_ENGLISH_WORDS = 5

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ANCHOR_IN_HEADING = re.compile(r'^<a id="([^"]+)"></a>')
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_TARGET = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")
HTML_ID = re.compile(r"""<[a-z]+\b[^>]*?\b(?:id|name)=["']([^"']+)["']""")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LANGUAGE_SWITCH = re.compile(r"^\[(中文|English)\]\(")
WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass
class Section:
    """What lies under one heading (or before the first one)."""

    heading: str
    code_spans: Counter[str] = field(default_factory=Counter)
    links: Counter[str] = field(default_factory=Counter)
    tables: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # line, cells per row


@dataclass
class Doc:
    path: Path
    first_line: str
    headings: list[tuple[int, str, int]] = field(default_factory=list)  # level, text, line
    code_blocks: list[tuple[int, str]] = field(default_factory=list)  # line, text
    sections: list[Section] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)  # line, block of prose
    ids: set[str] = field(default_factory=set)


def code_spans(text: str) -> tuple[list[str], str]:
    """The inline code spans of ``text``, and ``text`` with each span replaced by a space."""
    spans: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            rest.append(text[i : i + 2])
            i += 2
            continue
        if text[i] != "`":
            rest.append(text[i])
            i += 1
            continue
        run = len(text[i:]) - len(text[i:].lstrip("`"))
        closing = re.compile(r"(?<!`)" + "`" * run + r"(?!`)")
        end = closing.search(text, i + run)
        if end is None:
            rest.append(text[i : i + run])
            i += run
            continue
        spans.append(text[i + run : end.start()].strip())
        rest.append(" ")
        i = end.end()
    return spans, "".join(rest)


def table_row_cells(line: str) -> int:
    _, plain = code_spans(line)
    plain = plain.replace("\\|", "")
    return plain.strip().strip("|").count("|") + 1


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"<[^>]+>", "", heading).replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse(path: Path) -> Doc:
    lines = path.read_text("utf-8").split("\n")
    doc = Doc(path=path, first_line=lines[0])
    section = Section(heading="(before the first heading)")
    doc.sections.append(section)
    slugs: Counter[str] = Counter()
    paragraph: list[str] = []
    paragraph_line = 0
    table: list[int] = []
    table_line = 0

    def collect(text: str) -> None:
        spans, plain = code_spans(text)
        section.code_spans.update(" ".join(span.split()) for span in spans)
        section.links.update(LINK.findall(plain) + HTML_TARGET.findall(plain))

    def end_paragraph() -> None:
        if paragraph:
            text = "\n".join(paragraph)
            collect(text)
            doc.prose.append((paragraph_line, text))
            paragraph.clear()

    def end_table() -> None:
        if table:
            section.tables.append((table_line, tuple(table)))
            table.clear()

    number = 1 if LANGUAGE_SWITCH.match(lines[0]) else 0
    while number < len(lines):
        line = lines[number]
        number += 1
        fence = FENCE.match(line)
        if fence:
            end_paragraph()
            end_table()
            start = number
            marker = fence.group(2)
            block = [line]
            while number < len(lines):
                block.append(lines[number])
                number += 1
                if lines[number - 1].strip().startswith(marker[0] * len(marker)) and len(block) > 1:
                    break
            doc.code_blocks.append((start, "\n".join(block)))
            continue
        heading = HEADING.match(line)
        if heading:
            end_paragraph()
            end_table()
            text = heading.group(2)
            anchor = ANCHOR_IN_HEADING.match(text)
            if anchor:
                doc.ids.add(anchor.group(1))
                text = text[anchor.end() :]
            doc.headings.append((len(heading.group(1)), text, number))
            base = slug(text)
            doc.ids.add(base if not slugs[base] else f"{base}-{slugs[base]}")
            slugs[base] += 1
            section = Section(heading=text)
            doc.sections.append(section)
            continue
        doc.ids.update(HTML_ID.findall(line))
        stripped = line.strip()
        if stripped.startswith("|"):
            end_paragraph()
            collect(stripped)
            if not table:
                table_line = number
            table.append(table_row_cells(stripped))
            doc.prose.append((number, stripped))
            continue
        end_table()
        if not stripped:
            end_paragraph()
            continue
        if re.match(r"^([-*+]|\d+\.)\s", stripped):
            end_paragraph()
        if not paragraph:
            paragraph_line = number
        paragraph.append(stripped)
    end_paragraph()
    end_table()
    return doc


def chinese_target(target: str, source: Path) -> str:
    """What the Chinese file links to where the English one links to ``target``."""
    path, _, fragment = target.partition("#")
    if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):
        return target
    resolved = (source.parent / path).resolve()
    if resolved in CHINESE_OF:
        path = path[: -len(".md")] + ".zh-CN.md"
    return path + ("#" + fragment if fragment else "")


def prose_text(block: str) -> str:
    """A block's words: no code, no link targets, no HTML tags."""
    _, plain = code_spans(block)
    plain = re.sub(r"\]\([^)]*\)", "]", plain)
    plain = re.sub(r"<[^>]+>", " ", plain)
    return re.sub(r"https?://\S+", " ", plain)


def where(doc: Doc, line: int) -> str:
    return f"{doc.path.relative_to(ROOT)}:{line}"


def pair_ids() -> list[str]:
    return [zh for _, zh in PAIRS]


@pytest.fixture(params=PAIRS, ids=pair_ids())
def pair(request: pytest.FixtureRequest) -> tuple[Doc, Doc]:
    english, chinese = request.param
    return parse(ROOT / english), parse(ROOT / chinese)


def test_each_file_links_to_the_other_on_its_first_line(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    assert en.first_line == f"[中文]({zh.path.name})", (
        f"{where(en, 1)}: the first line must be [中文]({zh.path.name})"
    )
    assert zh.first_line == f"[English]({en.path.name})", (
        f"{where(zh, 1)}: the first line must be [English]({en.path.name})"
    )


def test_same_headings_in_the_same_order_with_the_english_anchors(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    for index, ((level, text, line), theirs) in enumerate(
        zip(en.headings, zh.headings, strict=False)
    ):
        zh_level, zh_text, zh_line = theirs
        assert level == zh_level, (
            f"heading {index + 1} is level {level} in {where(en, line)} ({text!r}) "
            f"but level {zh_level} in {where(zh, zh_line)} ({zh_text!r})"
        )
        raw = zh.path.read_text("utf-8").split("\n")[zh_line - 1]
        expected = f'<a id="{slug(text)}"></a>'
        assert expected in raw, (
            f"{where(zh, zh_line)}: the heading that translates {where(en, line)} {text!r} "
            f"must start with {expected} (the English anchor); it reads {raw!r}"
        )
    missing = [
        f"{where(en, line)} {'#' * lv} {t}" for lv, t, line in en.headings[len(zh.headings) :]
    ]
    extra = [f"{where(zh, line)} {'#' * lv} {t}" for lv, t, line in zh.headings[len(en.headings) :]]
    assert not missing, f"headings with no translation in {zh.path.name}: {missing}"
    assert not extra, f"headings in {zh.path.name} with no English original: {extra}"


def test_code_blocks_are_byte_identical_and_in_the_same_order(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    for index, ((line, block), (zh_line, zh_block)) in enumerate(
        zip(en.code_blocks, zh.code_blocks, strict=False)
    ):
        diff = difflib.unified_diff(
            zh_block.split("\n"),
            block.split("\n"),
            where(zh, zh_line),
            where(en, line),
            lineterm="",
        )
        assert block == zh_block, (
            f"code block {index + 1} differs: {where(en, line)} vs {where(zh, zh_line)}; "
            "copy the English block over unchanged:\n" + "\n".join(diff)
        )
    assert len(en.code_blocks) == len(zh.code_blocks), (
        f"{en.path.name} has {len(en.code_blocks)} code blocks, {zh.path.name} "
        f"{len(zh.code_blocks)}: missing or extra from "
        + (
            where(en, en.code_blocks[len(zh.code_blocks)][0])
            if len(en.code_blocks) > len(zh.code_blocks)
            else where(zh, zh.code_blocks[len(en.code_blocks)][0])
        )
    )


def _section_pairs(en: Doc, zh: Doc) -> list[tuple[str, Section, Section]]:
    assert len(en.sections) == len(zh.sections), "the headings differ (see the heading test)"
    return [(s.heading, s, z) for s, z in zip(en.sections, zh.sections, strict=True)]


def test_same_inline_code_in_each_section(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    for heading, s, z in _section_pairs(en, zh):
        only_en = s.code_spans - z.code_spans
        only_zh = z.code_spans - s.code_spans
        assert not only_en and not only_zh, (
            f"section {heading!r}: inline code differs between {en.path.name} and "
            f"{zh.path.name}; only in English: {sorted(only_en)}, only in Chinese: "
            f"{sorted(only_zh)}"
        )


def test_same_tables_in_each_section(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    for heading, s, z in _section_pairs(en, zh):
        shapes, zh_shapes = [t for _, t in s.tables], [t for _, t in z.tables]
        assert shapes == zh_shapes, (
            f"section {heading!r}: the tables differ (cells per row): "
            + "; ".join(f"{where(en, line)} {shape}" for line, shape in s.tables)
            + " vs "
            + "; ".join(f"{where(zh, line)} {shape}" for line, shape in z.tables)
        )


def test_same_link_targets_in_each_section(pair: tuple[Doc, Doc]) -> None:
    en, zh = pair
    for heading, s, z in _section_pairs(en, zh):
        expected = Counter({chinese_target(t, en.path): n for t, n in s.links.items()})
        assert expected == z.links, (
            f"section {heading!r}: links differ; {zh.path.name} should link to "
            f"{sorted(expected.elements())} (the English targets, .md -> .zh-CN.md where a "
            f"Chinese version exists), it links to {sorted(z.links.elements())}"
        )


def test_the_chinese_file_is_chinese(pair: tuple[Doc, Doc]) -> None:
    _, zh = pair
    cjk = latin = 0
    for line, block in zh.prose:
        text = prose_text(block)
        has_cjk = len(CJK.findall(text))
        words = WORD.findall(text)
        assert has_cjk or len(words) <= MAX_ENGLISH_WORDS, (
            f"{where(zh, line)} reads as English, not translated: {block[:120]!r}"
        )
        cjk += has_cjk
        latin += sum(len(w) for w in words)
    assert cjk / (cjk + latin) >= MIN_CJK_SHARE, (
        f"{zh.path.name}: CJK is {cjk / (cjk + latin):.0%} of the prose's letters, "
        f"below {MIN_CJK_SHARE:.0%}"
    )


MARKDOWN = ["README.md", "README.zh-CN.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
)


@pytest.mark.parametrize("name", MARKDOWN)
def test_relative_links_resolve(name: str) -> None:
    """Every relative link of the README and docs/, in either language, leads somewhere."""
    doc = parse(ROOT / name)
    targets = [t for s in doc.sections for t in s.links]
    first = LINK.findall(doc.first_line)
    broken = []
    for target in targets + first:
        path, _, fragment = target.partition("#")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        file = (doc.path.parent / path).resolve() if path else doc.path
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in parse(file).ids:
            broken.append(f"{target}: no heading or id {fragment!r} in {file.name}")
    assert not broken, f"{name}: broken links: {broken}"
