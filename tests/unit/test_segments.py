"""GSM-7 or UCS-2, and how many segments a message costs (160/153 septets, 70/67 UTF-16 units)."""

import pytest

from producer.segments import Encoding, encoding_of, segments

GSM, UCS = Encoding.GSM7, Encoding.UCS2


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, GSM, 1),
        ("a" * 161, GSM, 2),
        ("a" * 306, GSM, 2),
        ("a" * 307, GSM, 3),
        ("€" * 80, GSM, 1),  # extension characters count two septets
        ("€" * 81, GSM, 2),
        ("a" * 158 + "[", GSM, 1),  # 160 septets
        ("a" * 159 + "[", GSM, 2),  # 161 septets
        ("a" * 152 + "{" + "a" * 10, GSM, 2),  # the escape pair is not split: 152 + 2 > 153
        ("a" * 152 + "{" + "a" * 152, GSM, 3),
        ("ÄÖÑÜ§¿äöñüà", GSM, 1),  # basic-table accents are GSM-7
        ("ж" * 70, UCS, 1),
        ("ж" * 71, UCS, 2),
        ("ж" * 134, UCS, 2),
        ("ж" * 135, UCS, 3),
        ("á" * 70, UCS, 1),  # á is not in GSM-7 (à is)
        ("😀" * 35, UCS, 1),  # emoji are surrogate pairs: two units each
        ("😀" * 36, UCS, 2),
        ("a" * 68 + "😀", UCS, 1),  # 70 units
        ("a" * 69 + "😀", UCS, 2),
        ("a" * 66 + "😀" + "a" * 66, UCS, 3),  # 134 units, but the pair is not split across segments
        ("नमस्ते", UCS, 1),
    ],
)
def test_segments_by_encoding(text, encoding, count):
    assert encoding_of(text) is encoding
    assert segments(text, encoding) == count


def test_unicode_1_asks_for_ucs2_even_for_plain_text():
    assert encoding_of("Hello", "1") is UCS
    assert segments("a" * 71, UCS) == 2
