from hypothesis import given
from hypothesis import strategies as st

from schemas.campaign import Recipient
from worker.payload import chunked

recipient_lists = st.lists(st.integers(min_value=0, max_value=10**9), max_size=3000).map(
    lambda ns: [Recipient(f"+91{n:010d}", i) for i, n in enumerate(ns)]
)


@given(recipient_lists, st.integers(min_value=1, max_value=1000))
def test_chunking_never_drops_or_repeats_a_recipient(people, size):
    chunks = chunked(people, size)
    assert [r for chunk in chunks for r in chunk] == people
    assert all(1 <= len(chunk) <= size for chunk in chunks)
