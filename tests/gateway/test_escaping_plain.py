"""The escapers' fast path for plain values (host names, addresses) gives what the full
escaping gives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.gateway.templates import escaping

ESCAPERS = (escaping.escape_text, escaping.escape_markdown, escaping.escape_markdown_v2)
near_plain = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9.:/\-]{1,24}\Z"),  # plain, and ends or starts with a mark
    st.from_regex(r"\A[0-9]{1,4}[.)]\Z"),  # an ordered-list number: escaped at a line start
    st.text(alphabet="ab1.:-/_ \n@<", max_size=12),
)


@given(near_plain)
@settings(max_examples=400, deadline=None)
def test_the_fast_path_changes_nothing_the_full_escaping_would_change(value: str) -> None:
    fast = [escape(value) for escape in ESCAPERS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(escaping, "_PLAIN", re.compile(r"(?!)"))  # never plain: the full path
        full = [escape(value) for escape in ESCAPERS]
    assert fast == full
