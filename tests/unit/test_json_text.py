"""`verbatim`: strings that can be joined into JSON by hand, byte for byte as msgspec writes them."""

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from worker.json_text import verbatim


@given(st.lists(st.text(max_size=8), min_size=1, max_size=5))
def test_verbatim_strings_are_exactly_what_msgspec_writes_between_quotes(values):
    by_hand = ("[" + ",".join(f'"{value}"' for value in values) + "]").encode()
    if verbatim(values):
        assert msgspec.json.encode(values) == by_hand
    if "".join(values).isascii():  # never verbatim otherwise: its bytes outnumber its characters
        assert verbatim(values) == (msgspec.json.encode(values) == by_hand)


def test_quotes_backslashes_and_control_characters_are_not_verbatim_and_nor_is_nothing():
    assert verbatim(["+919876543210", "abc-123:4"])
    assert not any(verbatim([value]) for value in ('a"b', "a\\b", "a\nb", "a\x00b"))
    assert not verbatim([])
