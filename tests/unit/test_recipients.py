import csv
import io
import os
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.recipients import PagedRows, open_recipients, read_through
from schemas.errors import RecipientsError


def read(path, fields=()) -> list[tuple]:
    with open_recipients(str(path), fields) as rows:
        return [row[:2] if not fields else row for row in rows]


def test_csv_rows_carry_their_line_numbers(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("name,To\nasha,+919000000001\n\nravi,09000000002\n")
    assert read(path) == [(2, "+919000000001"), (4, "09000000002")]


def test_csv_with_a_byte_order_mark_and_crlf_is_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffto\r\n+919000000001\r\n".encode())
    assert read(path) == [(2, "+919000000001")]


def test_json_lines_accept_numbers_as_strings_or_integers(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"to": "+919000000001", "name": "a"}\n\n{"to": 919000000002}\n')
    assert read(path) == [(1, "+919000000001"), (3, "919000000002")]


def test_json_lines_are_detected_without_the_suffix(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text('{"to": "+919000000001"}\n')
    assert read(path) == [(1, "+919000000001")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"name,phone\na,1\n", "has no 'to' column (header: 'name', 'phone')"),
        (
            b"to;name\n+919000000001;Asha\n",
            "(header: 'to;name'); its values look separated by semicolons: save it as CSV",
        ),
        (b"to\tname\n+919000000001\tAsha\n", "its values look separated by tabs"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
        (b"to\n+91900\xff\xfe0001\n", "line 2 is not UTF-8 text (the byte 0xff"),
        (b"\xff\xfet\x00o\x00\n\x00", "is UTF-16 text (Excel's 'Unicode Text'?): save it as CSV UTF-8"),
        (b'{"to": "+919000000001"}\n{"phone": "1"}\n', "line 2: no 'to' key"),
        (b'{"to": "+919000000001"}\nnot json\n', "line 2: not a JSON object"),
    ],
)
@pytest.mark.parametrize("reading", ["rows", "through"])
def test_unreadable_files_are_refused_with_the_reason(tmp_path, content, reason, reading):
    """Row by row, or read through by publishing's first pass: the same refusal."""
    path = tmp_path / "r.csv"
    if content.startswith(b"{"):
        path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecipientsError) as refused:
        read(path) if reading == "rows" else read_through(str(path))
    assert reason in str(refused.value)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize("reading", ["rows", "through"])
def test_a_broken_csv_line_is_refused_with_its_number(tmp_path, reading):
    path = tmp_path / "r.csv"
    path.write_bytes(b"to\n+919000000001\n+919000000002\n" + b"9" * (csv.field_size_limit() + 1) + b"\n")
    with pytest.raises(RecipientsError, match=r"line 4: field larger than field limit"):
        read(path) if reading == "rows" else read_through(str(path))


_PLAIN_LINES = 20_000  # more than the check pass reads in one piece


@pytest.mark.parametrize(
    "late, refusal",
    [
        (b"9" * (csv.field_size_limit() + 1) + b"\n", "field larger than field limit"),
        (
            b"+919000000001\n" * 3 + b'"+91 900"\n' + b"9" * (csv.field_size_limit() + 1) + b"\n",
            "field larger than field limit",
        ),
    ],
    ids=["long line", "long line after a quote"],
)
@pytest.mark.parametrize("reading", ["rows", "through"])
def test_a_refusal_deep_in_a_large_file_is_found_with_its_line(tmp_path, late, refusal, reading):
    path = tmp_path / "r.csv"
    path.write_bytes(b"to\n" + b"+919000000001\n" * _PLAIN_LINES + late)
    line = _PLAIN_LINES + 2 + late.count(b"\n") - 1
    with pytest.raises(RecipientsError, match=rf"line {line}: {refusal}"):
        read(path) if reading == "rows" else read_through(str(path))


def test_a_large_file_with_quoted_fields_and_long_lines_within_the_limit_is_read_through(tmp_path):
    path = tmp_path / "r.csv"
    long_name = "x" * (csv.field_size_limit() - 100)  # longer than a piece of the check's scan
    plain = "+919000000001,a\n" * _PLAIN_LINES
    path.write_text(f'to,name\n{plain}+919000000002,"{long_name}"\n')
    assert read_through(str(path)) is False
    assert len(read(path)) == _PLAIN_LINES + 1


def test_a_readable_file_is_read_through_without_a_refusal(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('to,name\n+919000000001,Asha\n\n+919000000002,"Ravi, Jr"\n')
    assert read_through(str(path)) is False  # a quote: the csv module reads it when publishing


def test_missing_file_is_refused_before_any_row(tmp_path):
    with pytest.raises(RecipientsError, match=r"cannot read recipients file .*nope\.csv"):
        read(tmp_path / "nope.csv")


def test_rows_are_streamed_not_loaded(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("to\n" + "".join(f"+9190000{i:05d}\n" for i in range(50_000)))
    with open_recipients(str(path)) as rows:
        assert next(rows) == (2, "+919000000000", ())
        assert next(rows) == (3, "+919000000001", ())


def test_csv_fields_asked_for_are_read_by_header_name_and_missing_ones_are_none(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "to,Name,city\n+919000000001,Asha,Pune\n+919000000002,,Goa\n+919000000003\n+919000000004,  ,x\n"
    )
    assert read(path, ("name", "city", "plan")) == [
        (2, "+919000000001", ("Asha", "Pune", None)),
        (3, "+919000000002", (None, "Goa", None)),
        (4, "+919000000003", (None, None, None)),
        (5, "+919000000004", (None, "x", None)),  # blank is missing
    ]


def test_json_lines_fields_are_text_and_null_or_empty_ones_are_missing(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"to": "+919000000001", "Name": "Asha", "points": 120}\n'
        '{"to": "+919000000002", "name": null, "points": ""}\n'
    )
    assert read(path, ("name", "points")) == [
        (1, "+919000000001", ("Asha", "120")),
        (2, "+919000000002", (None, None)),
    ]


_CELL = st.text(st.characters(blacklist_characters='",\r\n', blacklist_categories=["Cs"]), max_size=6)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.sampled_from(["to\n", "to,name\n", "name,to\n", "\ufeffa,b,to\r\n", '"to",x\n']),
    lines=st.lists(st.lists(_CELL, max_size=4).map(",".join), max_size=12),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_an_unquoted_file_is_split_into_the_rows_the_csv_module_reads(
    tmp_path_factory, header, lines, ending
):
    path = tmp_path_factory.mktemp("r") / "r.csv"
    path.write_bytes((header + ending.join(lines) + (ending if lines else "")).encode())

    def rows_or_refusal(unquoted: bool, by_page: bool = False) -> list[tuple] | str:
        try:
            with open_recipients(str(path), unquoted=unquoted) as rows:
                if by_page:  # as publishing takes them: line numbers and numbers, a page at a time
                    assert isinstance(rows, PagedRows)
                    pages = rows.pages()
                    return [(line, raw, ()) for page in pages for line, raw in zip(*page, strict=True)]
                return list(rows)
        except RecipientsError as e:  # a NUL in the file's head, say: refused either way
            return str(e)

    read = rows_or_refusal(unquoted=False)
    assert rows_or_refusal(unquoted=True) == read
    assert rows_or_refusal(unquoted=True, by_page=True) == read


def test_a_quote_that_was_not_there_when_the_file_was_checked_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('to\n+919000000001\n"+919000000002"\n')  # read_through would have said False
    with (
        pytest.raises(RecipientsError, match="line 3: a quote that was not there when the file was checked"),
        open_recipients(str(path), unquoted=True) as rows,
    ):
        list(rows)


_SWALLOWED = "".join(f"98765{i:05d},Name{i}\n" for i in range(49))


@pytest.mark.parametrize(
    ("content", "fields", "refusal"),
    [
        (f'to,name\n9876543210,"Asha\n{_SWALLOWED}', (), r"line 2: a quote opened here is never closed"),
        (
            'to,name\n9876543210,"Asha\n9876543211,Ravi"\n',
            ("name",),
            r"line 2: a quoted value runs over line 3, which reads as a row of its own",
        ),
        (
            'name,to\n"Asha\nRavi,+91 98765 43211",9876543210\n',
            (),
            r"line 2: a quoted value runs over line 3, which reads as a row of its own",
        ),
        (
            'to,name\n"98765\r\n43210",Asha\n',
            (),
            r"line 2: the 'to' value '98765\\r\\n43210' holds a line break",
        ),
        ('to,name\n9876543210,"A"sha\n', (), r"line 2: text after a closing quote"),
        (
            'to,note\n9876543210,"' + "x\n" * 10 + '"\n',
            (),
            r"line 2: a quoted value runs over 11 lines, to line 12",
        ),
        ("To,name,to\n1,a,2\n", (), r"line 1: columns 1 and 3 \('To', 'to'\) are both 'to'"),
        ("to,name,NAME\n1,a,b\n", ("name",), r"line 1: columns 2 and 3 \('name', 'NAME'\) are both 'name'"),
        (
            "to,name\n1,a\x0cb\n",
            ("name",),
            r"line 2: field 'name' has the control character '\\x0c' \(U\+000C\)",
        ),
        (
            "to,name\n1,a\x9bb\n",
            ("name",),
            r"line 2: field 'name' has the control character '\\x9b' \(U\+009B\)",
        ),
    ],
)
@pytest.mark.parametrize("reading", ["rows", "through"])
def test_a_file_that_would_be_misread_is_refused_with_its_line(tmp_path, content, fields, refusal, reading):
    """Row by row, or read through by publishing's first pass (no fields): the same refusal."""
    path = tmp_path / "r.csv"
    path.write_bytes(content.encode())
    if reading == "through" and fields:
        pytest.skip("the first pass reads the fields only through `open_recipients`")
    with pytest.raises(RecipientsError, match=refusal):
        read(path, fields) if reading == "rows" else read_through(str(path))


@pytest.mark.parametrize(
    "number",
    [
        "0151/23456782",
        "98765\u00a043211",  # no-break space
        "98765\u202f43211",  # narrow no-break space
        "98765\u200743211",  # figure space
        "98765\u201343211",  # en dash
        "\uff19\uff18\uff17\uff16\uff15\uff14\uff13\uff12\uff11\uff11",  # full-width digits
        "'9876543211",  # a spreadsheet's mark that the cell is text
        "\uff0b49 151 23456782",  # full-width plus
    ],
)
def test_a_quoted_value_over_a_line_the_normaliser_reads_as_a_number_is_refused(tmp_path, number):
    """Any form of a number the normaliser accepts, where the `to` column is, reads as a row."""
    path = tmp_path / "r.csv"
    path.write_text(f'to,name\n9876543210,"Asha\n{number},Ravi"\n')
    with pytest.raises(
        RecipientsError, match=r"line 2: a quoted value runs over line 3, which reads as a row"
    ):
        read(path, ("name",))


@pytest.mark.parametrize("line", ["110001", "Flat 4/12", "Near 12-B", "'quoted'", "1 2"])
def test_a_quoted_value_over_lines_that_are_no_numbers_is_read(tmp_path, line):
    path = tmp_path / "r.csv"
    path.write_text(f'to,address\n9876543210,"Asha\n{line},Pune"\n')
    assert read(path, ("address",)) == [(2, "9876543210", (f"Asha\n{line},Pune",))]


def test_quoted_values_over_a_few_lines_are_read_on_the_line_they_start(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        'to,address,note\n9876543210,"Flat 4\r\n12, MG Road\nPune 411001",x\n9876543211,Goa,"a\tb"\n'
    )
    assert read(path, ("address", "note")) == [
        (2, "9876543210", ("Flat 4\r\n12, MG Road\nPune 411001", "x")),
        (5, "9876543211", ("Goa", "a\tb")),
    ]


def test_control_characters_in_columns_not_asked_for_and_repeated_unused_columns_are_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("to,note,note,name\n9876543210,\x07,x,Asha\n")
    assert read(path, ("name",)) == [(2, "9876543210", ("Asha",))]


def test_a_control_character_in_a_number_is_left_to_the_normaliser(tmp_path):
    """It makes the number invalid; the file is read."""
    path = tmp_path / "r.csv"
    path.write_text("to,name\n98765\x1b43210,Asha\n")
    assert read(path, ("name",)) == [(2, "98765\x1b43210", ("Asha",))]


@pytest.mark.parametrize(
    ("line", "fields", "refusal"),
    [
        (
            '{"to": "1", "name": "\\ud83d"}',
            (),
            r"line 2: field 'name' has a lone surrogate \(U\+D83D\): not valid text",
        ),
        ('{"to": "1", "x": {"y": ["\\udfff"]}}', (), r"line 2: field 'x' has a lone surrogate \(U\+DFFF\)"),
        (
            '{"to": "1", "name": "a\\u0007"}',
            ("name",),
            r"line 2: field 'name' has the control character '\\x07'",
        ),
        ('{"to": "1", "to": "2"}', (), r"line 2: the key 'to' is there 2 times"),
        ('{"to": "1", "Name": "a", "name": "b"}', ("name",), r"line 2: the key 'name' is there 2 times"),
        ('{"to":"9876543210","t\\u006f":"9876543211"}', (), r"line 2: the key 'to' is there 2 times"),
        ('{"to": "1", "\\u0054\\u004F": "2"}', (), r"line 2: the key 'to' is there 2 times"),
        (
            '{"to": "1", "name": "a", "n\\u0061me": "b"}',
            ("name",),
            r"line 2: the key 'name' is there 2 times",
        ),
        (
            '{"to": "1", "kind": "a", "\\u212aind": "b"}',
            ("kind",),
            r"line 2: the key 'kind' is there 2 times",
        ),
        ('{"to": "1", "name": "a"', (), r"line 2: not a JSON object \(Input data was truncated\)"),
    ],
)
def test_a_json_line_that_would_be_misread_is_refused_with_its_line(tmp_path, line, fields, refusal):
    path = tmp_path / "r.jsonl"
    path.write_text('{"to": "9876543210"}\n' + line + "\n")
    with pytest.raises(RecipientsError, match=refusal):
        read(path, fields)


def test_json_keys_repeated_in_values_or_unused_are_read(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"to": "1", "note": "to", "x": 1, "X": 2, "name": "\\ud83d\\ude00 \\u0009"}\n')
    assert read(path, ("name",)) == [(1, "1", ("\U0001f600 \t",))]


def test_json_keys_and_values_written_with_escapes_are_read_once(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"t\\u006f": "1", "n\\u0061me": "\\u0041sha", "note": "AT\\u0026T"}\n')
    assert read(path, ("name",)) == [(1, "1", ("Asha",))]


def test_a_nul_byte_in_the_head_is_refused_with_its_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"to,name\n1,a\n2,b\x00\n")
    with pytest.raises(RecipientsError, match=r"looks binary \(a NUL byte on line 3\)"):
        read(path)


@pytest.mark.parametrize(
    "content",
    ["to,name\n1,a\n\n2,b\n", 'to,name\n1,"a"\n\n"2",b\n', '{"to": "1"}\n\n{"to": 2}\n'],
    ids=["unquoted", "quoted", "json"],
)
def test_the_first_pass_hands_every_row_over_a_page_at_a_time(tmp_path, content):
    path = tmp_path / ("r.jsonl" if content.startswith("{") else "r.csv")
    path.write_text(content * 700)  # more than a page
    pages = []
    read_through(str(path), pages.append)
    assert len(pages) > 1
    assert [row for page in pages for row in zip(*page, strict=True)] == [row[:2] for row in read(path)]


_WIDE = [
    (
        "to,name\n9876543210,Asha\n9876543211,Kumar, Asha\n",
        "line 3: 3 fields where the header has 2 ('Kumar, Asha'?)",
    ),
    ("to,name\n9876543210,Asha,Extra,More\n", "line 2: 4 fields where the header has 2 ('Asha,Extra,More'?)"),
    ("to\n98765,43210\n", "line 2: 2 fields where the header has 1 ('98765,43210'?)"),
    ('to,name\n9876543210,"Asha",x,,\n', "line 2: 3 fields where the header has 2 ('Asha,x'?)"),
    (
        "name,to\nAsha,9876543210\n\n\nKumar, Asha,9876543211\n",
        "line 5: 3 fields where the header has 2 ('Kumar, Asha'?)",
    ),
    (  # as many commas in the page as rows: one short of a cell, one with one more
        "to,name\n9876543212\n9876543211,Kumar, Asha\n",
        "line 3: 3 fields where the header has 2 ('Kumar, Asha'?)",
    ),
    (
        "to,name\n9876543211,\u0906\u0936\u093e, \u0915\u0941\u092e\u093e\u0930\n",
        "line 2: 3 fields where the header has 2 ('\u0906\u0936\u093e, \u0915\u0941\u092e\u093e\u0930'?)",
    ),
    (
        "to,name,city\n9876543210,Asha,Pune, India,x\n",
        "line 2: 5 fields where the header has 3 ('Pune, India,x'?)",
    ),
]


@pytest.mark.parametrize(("content", "refusal"), _WIDE)
@pytest.mark.parametrize("reading", ["rows", "fields", "unquoted", "through"])
def test_a_row_with_a_value_past_the_header_is_refused_with_its_line(tmp_path, content, refusal, reading):
    """Most likely a value holding a comma, unquoted, its cells shifted: on every way a CSV file is read."""
    path = tmp_path / "r.csv"
    path.write_text(content)
    if reading == "unquoted" and '"' in content:
        pytest.skip("a file with a quote is read by the csv module")
    with pytest.raises(RecipientsError) as refused:
        if reading == "through":
            read_through(str(path))
        elif reading == "unquoted":
            with open_recipients(str(path), unquoted=True) as rows:
                list(rows.pages()) if isinstance(rows, PagedRows) else list(rows)
        else:
            read(path, ("name",) if reading == "fields" else ())
    assert f"recipients file {str(path)!r} {refusal}: quote a value that holds a comma" == str(refused.value)


def test_a_row_wider_than_the_header_deep_in_a_large_unquoted_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("to,name\n" + "9876543210,Asha\n" * 2500 + "9876543211,Kumar, Asha\n9876543212\n")
    with pytest.raises(RecipientsError, match="line 2502: 3 fields where the header has 2"):
        read_through(str(path))
    with (
        pytest.raises(RecipientsError, match="line 2502: 3 fields"),
        open_recipients(str(path), unquoted=True) as rows,
    ):
        list(rows)


@pytest.mark.parametrize("reading", ["rows", "unquoted", "through"])
def test_trailing_empty_cells_and_short_rows_are_read(tmp_path, reading):
    """A spreadsheet's trailing empty cells are no value; a row short of cells misses values."""
    path = tmp_path / "r.csv"
    path.write_text("to,name\n" + "9876543210,Asha,\n9876543211,Ravi, ,\t\n9876543212\n9876543213,,,\n" * 700)
    expected = [(2 + 4 * i + j, f"987654321{j}") for i in range(700) for j in range(4)]
    if reading == "through":
        assert read_through(str(path)) is True
    elif reading == "unquoted":
        with open_recipients(str(path), unquoted=True) as rows:
            assert [row[:2] for row in rows] == expected
    else:
        assert read(path) == expected
        assert read(path, ("name",))[:4] == [
            (2, "9876543210", ("Asha",)),
            (3, "9876543211", ("Ravi",)),
            (4, "9876543212", (None,)),
            (5, "9876543213", (None,)),
        ]


_LATIN1 = "to,name\n" + "".join(f"98765432{i:02d},Name{i}\n" for i in range(30)) + "9876543299,Jos\xe9\n"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("reading", ["rows", "fields", "through", "stdin", "pipe"])
def test_a_file_not_utf8_is_refused_with_its_line(tmp_path, stdin, ending, bom, reading):
    path = tmp_path / "latin1.csv"
    path.write_bytes(bom + _LATIN1.replace("\n", ending).encode("latin-1"))
    where = f"recipients file {str(path)!r}"
    if reading in ("stdin", "pipe"):
        where = "recipients file '-'"
        stdin(path.read_bytes(), pipe=reading == "pipe")
        path = "-"
    with pytest.raises(RecipientsError) as refused:
        read_through(str(path)) if reading == "through" else read(
            path, ("name",) if reading == "fields" else ()
        )
    assert str(refused.value) == (
        f"{where} line 32 is not UTF-8 text (the byte 0xe9: invalid continuation byte); "
        "save it as UTF-8 (in Excel: CSV UTF-8)"
    )


@pytest.mark.parametrize("at", [0, 1, 2, 8190, 8191, 8192, 8193, 70_000, 200_003])
@pytest.mark.parametrize("bad", [b"\xff", b"\xe9x", b"\xe2\x82", b"\xed\xa0\x80"])
@pytest.mark.parametrize("reading", ["rows", "unquoted", "through", "pipe"])
def test_the_line_of_a_byte_not_utf8_is_exact_wherever_it_is(tmp_path, stdin, at, bad, reading):
    """At a chunk's edge, after a character split over two chunks, deep in a pipe: the line it is on."""
    head = (
        "to\n" + "".join(f"+9190000{i % 100000:05d}\u20ac\r\n" if i % 3 else f"{i}\r" for i in range(40_000))
    ).encode()
    content = head[:at] + bad + head[at:]
    while content[at - 1 : at] and 0x80 <= content[at - 1] < 0xC0:  # not inside a character
        at -= 1
        content = head[:at] + bad + head[at:]
    line = 1 + head[:at].count(b"\n") + head[:at].count(b"\r") - head[:at].count(b"\r\n")
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    if reading == "pipe":
        stdin(content, pipe=True)
        path = "-"
    with pytest.raises(RecipientsError, match=rf" line {line} is not UTF-8 text \(the byte 0x{bad[0]:02x}"):
        if reading == "through":
            read_through(str(path))
        else:
            with open_recipients(str(path), unquoted=reading == "unquoted") as rows:
                list(rows)


@pytest.fixture
def stdin(monkeypatch):
    """Makes stdin hold some bytes: a file (seekable) or a pipe, which can be read once."""
    made: list[tuple[io.TextIOWrapper, threading.Thread | None]] = []

    def holding(content: bytes, *, pipe: bool) -> None:
        thread = None
        if pipe:
            read, write = os.pipe()
            thread = threading.Thread(target=_write_all, args=(write, content))
            thread.start()
            stream = io.TextIOWrapper(io.BufferedReader(io.FileIO(read)))  # closed below
        else:
            stream = io.TextIOWrapper(io.BufferedReader(io.BytesIO(content)))
        made.append((stream, thread))
        monkeypatch.setattr(sys, "stdin", stream)

    yield holding
    for stream, thread in made:
        stream.close()  # a writer still writing gets a broken pipe
        if thread is not None:
            thread.join()


def _write_all(fd: int, content: bytes) -> None:
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass  # the reader refused the file before its end
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "content",
    [
        "to,name\n9876543210,Asha\n".encode("utf-16"),  # Excel's "Unicode Text", with its byte order mark
        "to,name\n9876543210,Asha\n".encode("utf-16-be"),
        "to,name\n9876543210,Asha\n".encode("utf-16-le"),
        "\u0906\u0936\u093e\n".encode("utf-16"),  # no NUL byte at all
    ],
    ids=["with its mark", "big-endian", "little-endian", "no NUL"],
)
@pytest.mark.parametrize("reading", ["rows", "through"])
def test_a_utf16_file_is_refused_as_such(tmp_path, content, reading):
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with pytest.raises(RecipientsError) as refused:
        read(path) if reading == "rows" else read_through(str(path))
    assert str(refused.value) == (
        f"recipients file {str(path)!r} is UTF-16 text (Excel's 'Unicode Text'?): save it as CSV UTF-8"
    )
