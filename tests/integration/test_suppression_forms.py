"""A number on the suppression list is found in whatever form it is written, on fakeredis and Redis."""

from __future__ import annotations

import pytest

from producer import suppression
from producer.numbers import NumberNormaliser
from schemas import keys

SID = "HXTEST0000IN"
# One German mobile as people and spreadsheets write it, and as libphonenumber reads it.
FORMS = [
    "+49 (0)15123456789",
    "+4915123456789",
    "0049 151 23456789",
    "015123456789",
    "0151/234 567 89",
    "0151\u201323456789",
    "\uff0b\uff14\uff19 151 2345 6789",
    "4915123456789",
    "'+49\u00a0151\u00a023456789",
]


@pytest.mark.parametrize("listed", FORMS)
def test_a_number_listed_in_one_form_is_found_in_every_other(backend, listed):
    assert suppression.add(backend.client, SID, [listed], "+49") == 1
    for other in FORMS:
        assert suppression.add(backend.client, SID, [other], "+49") == 0, other  # already listed
    assert suppression.count(backend.client, SID) == 1
    assert backend.client.sismember(keys.suppression_list(SID), NumberNormaliser("+49").normalise(FORMS[3]))


def test_a_number_listed_in_one_form_is_removed_by_another(backend):
    suppression.add(backend.client, SID, ["+49 (0)15123456789"], None)
    assert suppression.remove(backend.client, SID, ["0151 234 567 89"], "+49") == 1
    assert suppression.count(backend.client, SID) == 0
