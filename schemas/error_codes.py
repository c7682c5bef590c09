"""Kaleyra's error-code catalogue, each code marked as success, transient or permanent.

Source: hexa-api-overview.md (E1xx-E6xx) and sms-json-xml.md (E7xx).
"""

from __future__ import annotations

import enum

import msgspec


class CodeKind(enum.Enum):
    SUCCESS = "success"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class ErrorCode(msgspec.Struct, frozen=True):
    code: str
    kind: CodeKind
    description: str


_S, _T, _P = CodeKind.SUCCESS, CodeKind.TRANSIENT, CodeKind.PERMANENT

CATALOGUE: dict[str, ErrorCode] = {
    entry.code: entry
    for entry in (
        ErrorCode("E100", _S, "Message Submitted Successfully"),
        ErrorCode("E101", _S, "Campaign Accepted"),
        ErrorCode("E102", _P, "No Medium Configured for Queue"),
        ErrorCode("E400", _P, "For bulk SMS type should be MKT"),
        ErrorCode("E401", _P, "SMS length is exceeding 4000 characters"),
        ErrorCode("E402", _P, "Invalid schedule time: 15 minutes to 3 months from now"),
        ErrorCode("E403", _T, "Something went wrong at our end, please try again after some time"),
        ErrorCode("E404", _P, "If Type is OTP then only one mobile number is allowed"),
        ErrorCode("E405", _P, "If Type is TXN then mobile numbers should not be more than 100"),
        ErrorCode("E406", _P, "No Valid mobile numbers found"),
        ErrorCode("E600", _P, "To field has to be filled"),
        ErrorCode("E601", _P, "Body cannot be left empty"),
        ErrorCode("E602", _P, "Sender-Id is required"),
        ErrorCode("E603", _P, "Port number must contain only numbers"),
        ErrorCode("E604", _P, "Unicode should contain only 0, 1 or AUTO"),
        ErrorCode("E605", _P, "Duplicate should contain only 1 or 0"),
        ErrorCode("E606", _P, "Flash should contain only 1 or 0"),
        ErrorCode("E607", _P, "Campaign name should contain only alpha numerics"),
        ErrorCode("E608", _P, "ref should contain only alpha numerics"),
        ErrorCode("E609", _P, "ref1 should contain only alpha numerics"),
        ErrorCode("E610", _P, "ref2 should contain only alpha numerics"),
        ErrorCode("E611", _P, "Type is required"),
        ErrorCode("E612", _P, "For Group SMS Use Either 'to' field or 'list_id' field"),
        ErrorCode("E613", _P, "List_id field has to be filled"),
        ErrorCode("E614", _P, "For 'list_id' type should not be OTP"),
        ErrorCode("E615", _P, "Type has to be either TXN, MKT or OTP"),
        ErrorCode("E616", _P, "Sender field has to be filled"),
        ErrorCode("E617", _P, "Campaign_id field has to be filled"),
        ErrorCode("E618", _P, "Body field has to be filled"),
        ErrorCode("E619", _P, "InValid Sender ID Pattern"),
        ErrorCode("E620", _S, "Campaign validated successfully"),
        ErrorCode("E621", _P, "Invalid Sender ID Pattern"),
        ErrorCode("E638", _P, "Upload the files"),
        ErrorCode("E639", _P, "Upload only csv or pdf files"),
        ErrorCode("E640", _P, "Upload files which are less than 1 MB"),
        ErrorCode("E700", _P, "Please enter a valid JSON object"),
        ErrorCode("E703", _P, "sms field is mandatory and cannot be empty"),
        ErrorCode("E708", _P, "For type OTP you can send only 1 sms. Sms node must have only 1 object."),
    )
}

# HTTP statuses that mean "nothing was sent, try again" when the reply carries no known code.
TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503})
# Of those, the ones that say the gateway itself is not there (its front answers for it).
UNAVAILABLE_HTTP_STATUSES = frozenset({502, 503})
# Any other status without a known code (a 504, a 500, an unreadable 200) leaves the outcome unknown.
_TRANSIENT_LABELS = frozenset(f"HTTP{status}" for status in TRANSIENT_HTTP_STATUSES)


def transient(code: str) -> bool:
    """Whether a failure's code says a later try may go: a transient code of the catalogue, or the label
    of a transient HTTP status that came without a code (`HTTP429`)."""
    return kind_of(code) is CodeKind.TRANSIENT or code in _TRANSIENT_LABELS


def kind_of(code: str) -> CodeKind | None:
    """The catalogue's verdict on `code`, or None when the code is not documented."""
    entry = CATALOGUE.get(code.upper())
    return entry.kind if entry else None
