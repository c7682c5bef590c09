from hypothesis import given
from hypothesis import strategies as st

from schemas.campaign import Recipient
from worker.payload import chunk_at

recipient_lists = st.lists(st.integers(min_value=0, max_value=10**9), max_size=3000).map(
    lambda ns: [Recipient(f"+91{n:010d}", i) for i, n in enumerate(ns)]
)


@given(recipient_lists, st.integers(min_value=1, max_value=1000), st.data())
def test_chunking_from_any_settled_offset_never_drops_or_repeats_a_recipient(people, size, data):
    start = data.draw(st.integers(min_value=0, max_value=len(people)))
    made = walk(people, size, start)
    assert [r for chunk in made for r in chunk] == people[start:]
    assert all(1 <= len(chunk) <= size for chunk in made)


def walk(people, size, offset=0):
    """Chunks as the worker takes them: from the settled offset, moving it by each chunk."""
    made = []
    while offset < len(people):
        made.append(chunk_at(people, offset, size))
        offset += len(made[-1])
    return made
