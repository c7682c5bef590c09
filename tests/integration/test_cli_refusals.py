"""`campaign send` and `suppress import` refuse a file rather than misread it, and a list that is
mostly invalid numbers: exit 2, one line on stderr naming the line or the value, nothing in Redis."""

from __future__ import annotations

import importlib.metadata
import io
import os
import socket
import sys

import msgspec
import pytest

from campaign.cli import main
from campaign.processes import refuse_taken
from schemas.errors import SettingsError

SEND = ["send", "--sender", "KLRHXA", "--type", "MKT", "--prefix", "+91"]
ROWS = "".join(f"98765{i:05d},Name{i}\n" for i in range(49))


@pytest.fixture
def cli(real_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", "HXCLI")
    return real_redis


def refused(capsys, code: int) -> str:
    """The one line of a refusal."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("suffix", "content", "body", "reason"),
    [
        (
            ".csv",
            f'to,name\n9876543210,"Asha\n{ROWS}',
            "Hi {name}",
            "line 2: a quote opened here is never closed",
        ),
        (
            ".csv",
            f'to,name\n9876543210,"Asha\n{ROWS}',
            "Sale today",
            "line 2: a quote opened here is never closed",
        ),
        (
            ".csv",
            'to,name\n9876543210,"Asha\n9876543211,Ravi"\n9876543212,Bob\n',
            "Hi {name}",
            "line 2: a quoted value runs over line 3, which reads as a row of its own ('9876543211,Ravi')",
        ),
        (
            ".csv",
            'to,name\n9876543210,"Asha\n9876543211,"Ravi"\n',
            "Hi {name}",
            "line 2: a quote opened here runs to line 3",
        ),
        (".csv", 'to,name\n9876543210,"Asha" Rao\n', "Hi {name}", "line 2: text after a closing quote"),
        (
            ".csv",
            'name,to\nAsha,"98765\n43210"\n',
            "Sale today",
            "line 2: the 'to' value '98765\\n43210' holds a line break",
        ),
        (
            ".csv",
            'to,note\n9876543210,"' + "a line\n" * 11 + '"\n',
            "Sale today",
            "line 2: a quoted value runs over 12 lines, to line 13",
        ),
        (
            ".csv",
            "to,name,TO \n9876543210,Asha,9876543211\n",
            "Sale today",
            "line 1: columns 1 and 3 ('to', 'TO ') are both 'to'",
        ),
        (
            ".csv",
            "to,Name,name\n9876543210,Asha,Ravi\n",
            "Hi {name}",
            "line 1: columns 2 and 3 ('Name', 'name') are both 'name'",
        ),
        (
            ".csv",
            "to,name\n9876543210,Asha\n9876543211,Ra\x07vi\n",
            "Hi {name}",
            "line 3: field 'name' has the control character '\\x07' (U+0007)",
        ),
        (
            ".csv",
            "to,name\n9876543210,\x1b[31mAsha\n",
            "Hi {name}",
            "line 2: field 'name' has the control character '\\x1b' (U+001B)",
        ),
        (
            ".csv",
            "to,name\n9876543210,A\x7f\n",
            "Hi {name}",
            "line 2: field 'name' has the control character",
        ),
        (
            ".csv",
            "to,name\n9876543210,A\x85\n",
            "Hi {name}",
            "line 2: field 'name' has the control character",
        ),
        (".csv", "to,name\n9876543210,A\n9876543211,B\x00\n", "Sale today", "(a NUL byte on line 3)"),
        (
            ".jsonl",
            '{"to": "9876543210", "name": "Asha"}\n{"to": "9876543211", "name": "A\\u0000"}\n',
            "Hi {name}",
            "line 2: field 'name' has the control character '\\x00' (U+0000)",
        ),
        (
            ".jsonl",
            '{"to": "9876543210", "name": "Asha"}\n\n\n\n{"to": "9876543211", "name": "\\ud800"}\n',
            "Hi {name}",
            "line 5: field 'name' has a lone surrogate (U+D800): not valid text",
        ),
        (
            ".jsonl",
            '{"to": "9876543210", "name": "\\udc00 x"}\n',
            "Sale today",
            "line 1: field 'name' has a lone surrogate (U+DC00)",
        ),
        (
            ".jsonl",
            '{"to": "9876543210", "To": "9876543211"}\n',
            "Sale today",
            "line 1: the key 'to' is there 2 times",
        ),
        (
            ".jsonl",
            '{"to": "9876543210", "t\\u006f": "9876543211"}\n',
            "Sale today",
            "line 1: the key 'to' is there 2 times",
        ),
        (
            ".csv",
            f"to,name\n{ROWS}9876543211,Kumar, Asha\n",
            "Sale today",
            "line 51: 3 fields where the header has 2 ('Kumar, Asha'?): quote a value that holds a comma",
        ),
        (
            ".csv",
            f"to,name\n{ROWS}9876543211,Kumar, Asha\n",
            "Hi {name}",
            "line 51: 3 fields where the header has 2 ('Kumar, Asha'?): quote a value that holds a comma",
        ),
        (
            ".csv",
            f'to,name\n{ROWS}"9876543211",Asha,Extra,More\n',
            "Sale today",
            "line 51: 4 fields where the header has 2 ('Asha,Extra,More'?)",
        ),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry run"])
def test_a_file_that_would_be_misread_is_refused_with_its_line(
    cli, tmp_path, capsys, suffix, content, body, reason, dry_run
):
    path = tmp_path / f"r{suffix}"
    path.write_bytes(content.encode("utf-8", "surrogatepass"))
    code = main([*SEND, "--recipients", str(path), "--body", body, *(["--dry-run"] if dry_run else [])])
    err = refused(capsys, code)
    assert reason in err and str(path) in err
    assert cli.client.dbsize() == 0


def test_trailing_empty_cells_are_read(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to,name\n9876543210,Asha,\n9876543211,,,\n")
    assert main([*SEND, "--recipients", str(path), "--body", "Sale today", "--json"]) == 0
    published = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (published["total"], published["invalid"]) == (2, 0)


LATIN1 = ("to,name\n" + ROWS[: ROWS.index("9876500030")] + "9876543210,Jos\xe9\n").encode("latin-1")
NOT_UTF8 = (
    "line 32 is not UTF-8 text (the byte 0xe9: invalid continuation byte); "
    "save it as UTF-8 (in Excel: CSV UTF-8)"
)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (LATIN1, NOT_UTF8),
        (
            LATIN1.decode("latin-1").encode("utf-16"),
            "is UTF-16 text (Excel's 'Unicode Text'?): save it as CSV UTF-8",
        ),
    ],
    ids=["latin-1", "utf-16"],
)
@pytest.mark.parametrize("body", ["Hi {name}", "Sale today"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry run"])
def test_a_file_in_another_encoding_is_refused_with_what_to_do(
    cli, tmp_path, capsys, content, reason, body, dry_run
):
    path = tmp_path / "latin1.csv"
    path.write_bytes(content)
    code = main([*SEND, "--recipients", str(path), "--body", body, *(["--dry-run"] if dry_run else [])])
    assert refused(capsys, code) == f"campaign: refused: recipients file {str(path)!r} {reason}\n"
    assert cli.client.dbsize() == 0


def test_stdin_not_utf8_is_refused_with_its_line(cli, capsys, monkeypatch):
    read, write = os.pipe()
    os.write(write, LATIN1)
    os.close(write)
    with io.TextIOWrapper(open(read, "rb")) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code = main([*SEND, "--recipients", "-", "--body", "Hi {name}"])
        assert NOT_UTF8 in refused(capsys, code)
    assert cli.client.dbsize() == 0


def test_a_value_over_a_few_lines_is_read_as_one_value_on_the_line_it_starts(cli, tmp_path, capsys):
    """An address over three lines, its second line with a comma: no row swallowed."""
    path = tmp_path / "r.csv"
    path.write_text('to,address\n9876543210,"Flat 4\n12, MG Road\nPune"\n9876543211,Goa\n')
    assert main([*SEND, "--recipients", str(path), "--body", "Sent to {address}", "--json"]) == 0
    published = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (published["total"], published["invalid"]) == (2, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Hi\x1b[1m", "body has the control character '\\x1b' (U+001B) at character 2"),
        ("Hi\x00", "body has the control character '\\x00' (U+0000) at character 2"),
        ("caf\udce9", "body has bytes that are not UTF-8 at character 3 (the byte 0xe9)"),
        ("Hi \ud800", "body has a lone surrogate (U+D800) at character 3"),
    ],
)
def test_a_body_with_control_characters_or_lone_surrogates_is_refused(cli, tmp_path, capsys, body, reason):
    path = tmp_path / "r.csv"
    path.write_text("to\n9876543210\n")
    err = refused(capsys, main([*SEND, "--recipients", str(path), "--body", body]))
    assert reason in err
    assert cli.client.dbsize() == 0


def test_a_body_may_hold_line_breaks_and_tabs(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("to\n9876543210\n")
    assert main([*SEND, "--recipients", str(path), "--body", "Sale\r\n\tToday", "--dry-run"]) == 0


def test_a_control_character_in_a_number_makes_it_invalid_and_is_stored_escaped(cli, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    rows = [f'{{"to": "98765{i:05d}"}}\n' for i in range(40)]
    path.write_text("".join(rows) + '{"to": "\\u00009876543299"}\n{"to": "98765\\u001b43298"}\n')
    assert (
        main([*SEND, "--recipients", str(path), "--body", "Sale today", "--json", "--max-invalid", "5%"]) == 0
    )
    published = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (published["total"], published["invalid"]) == (40, 2)
    assert published["invalid_rows"] == [
        [41, "\\x009876543299", "has '\\x00'"],
        [42, "98765\\x1b43298", "has '\\x1b'"],
    ]
    assert main(["invalid", published["campaign_id"]]) == 0
    out = capsys.readouterr().out
    assert "\x00" not in out and "\x1b" not in out and "\\x00" in out


@pytest.mark.parametrize("body", ["Hi {name}", "Sale today"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry run"])
def test_a_quote_left_open_over_numbers_written_with_slashes_is_refused(cli, tmp_path, capsys, body, dry_run):
    """The rows it would swallow are numbers as a German list writes them, 0151/23456782."""
    path = tmp_path / "r.csv"
    path.write_text(
        'to,name\n0151/23456781,"Ben\n0151/23456782,Carl\n0151/23456783,Dora\n0151/23456784,Eva"\n'
        "0151/23456785,Finn\n"
    )
    send = ["send", "--sender", "KLRHXA", "--type", "MKT", "--prefix", "+49", "--recipients", str(path)]
    err = refused(capsys, main([*send, "--body", body, *(["--dry-run"] if dry_run else [])]))
    assert (
        "line 2: a quoted value runs over line 3, which reads as a row of its own ('0151/23456782,Carl')"
        in err
    )
    assert cli.client.dbsize() == 0


@pytest.mark.parametrize(
    ("suffix", "row"), [(".csv", "9876543299\x1f\n"), (".jsonl", '{"to": "9876543299\\u001f"}\n')]
)
@pytest.mark.parametrize("body", ["Hi {name|there}", "Sale today"])
def test_a_number_ending_in_a_control_character_is_invalid_with_or_without_placeholders(
    cli, tmp_path, capsys, suffix, row, body
):
    """\\x1f is white space to `str.strip`: the row is invalid whichever way the file is read."""
    path = tmp_path / f"r{suffix}"
    rows = [f"98765{i:05d}\n" if suffix == ".csv" else f'{{"to": "98765{i:05d}"}}\n' for i in range(40)]
    path.write_text(("to\n" if suffix == ".csv" else "") + "".join(rows) + row)
    assert main([*SEND, "--recipients", str(path), "--body", body, "--json", "--max-invalid", "5%"]) == 0
    published = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (published["total"], published["invalid"]) == (40, 1)
    line = 42 if suffix == ".csv" else 41
    assert published["invalid_rows"] == [[line, "9876543299\\x1f", "has '\\x1f'"]]


NATIONAL_LIST = (
    "to\n"
    + "".join(f"98765{i:05d}\n" for i in range(60))
    + "".join(f"+9198765{i:05d}\n" for i in range(60, 100))
)
MOSTLY_INVALID = (
    "60 of 100 rows (60%) are invalid numbers, more than CAMPAIGN_MAX_INVALID (5%); likely cause: "
    "no --prefix: 60 national numbers; --max-invalid 60% allows it"
)
NO_PREFIX = ["send", "--sender", "KLRHXA", "--type", "MKT", "--body", "Sale today"]


@pytest.mark.parametrize(
    "options", [[], ["--dry-run"], ["--body", "Hi {name|there}"]], ids=["send", "dry run", "personalised"]
)
def test_a_list_mostly_invalid_is_refused_with_the_share_and_likely_cause(cli, tmp_path, capsys, options):
    path = tmp_path / "r.csv"
    path.write_text(NATIONAL_LIST)
    err = refused(capsys, main([*NO_PREFIX, "--recipients", str(path), *options]))
    assert err == f"campaign: refused: {MOSTLY_INVALID}\n"
    assert cli.client.dbsize() == 0


def test_estimate_reports_the_same_refusal(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(NATIONAL_LIST)
    estimate = ["estimate", *NO_PREFIX[1:]]
    assert MOSTLY_INVALID in refused(capsys, main([*estimate, "--recipients", str(path)]))


def test_a_list_from_stdin_mostly_invalid_is_refused_before_it_is_visible(cli, capsys, monkeypatch):
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(NATIONAL_LIST.encode())))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert MOSTLY_INVALID in refused(capsys, main([*NO_PREFIX, "--recipients", "-"]))
    assert cli.client.dbsize() == 0


@pytest.mark.parametrize(
    ("options", "env"),
    [(["--max-invalid", "60%"], None), (["--max-invalid", "0.61"], None), ([], "0.6"), ([], "100%")],
)
def test_max_invalid_allows_a_list_up_to_its_share(cli, tmp_path, capsys, monkeypatch, options, env):
    if env is not None:
        monkeypatch.setenv("CAMPAIGN_MAX_INVALID", env)
    path = tmp_path / "r.csv"
    path.write_text(NATIONAL_LIST)
    assert main([*NO_PREFIX, "--recipients", str(path), "--json", *options]) == 0
    published = msgspec.json.decode(capsys.readouterr().out.splitlines()[-1])
    assert (published["total"], published["invalid"]) == (40, 60)


def test_a_max_invalid_below_the_share_names_the_option(cli, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(NATIONAL_LIST)
    err = refused(capsys, main([*NO_PREFIX, "--recipients", str(path), "--max-invalid", "59.5%"]))
    assert "60 of 100 rows (60%) are invalid numbers, more than --max-invalid (59.5%)" in err


def test_a_small_list_is_held_to_the_same_share(cli, tmp_path, capsys):
    """No minimum count: 1 row of 3 is a third of the list."""
    path = tmp_path / "r.csv"
    path.write_text("to\n9876543210\n9876543211\nAsha\n")
    err = refused(capsys, main([*SEND, "--body", "Hi", "--recipients", str(path)]))
    assert "1 of 3 rows (33.3%) are invalid numbers" in err and "likely cause: 1 row 'has letters'" in err
    assert "--max-invalid 34% allows it" in err


@pytest.mark.parametrize("given", ["5", "-1%", "abc", "150%", "nan"])
def test_a_max_invalid_that_is_no_share_is_refused(cli, tmp_path, capsys, given):
    path = tmp_path / "r.csv"
    path.write_text("to\n9876543210\n")
    err = refused(capsys, main([*SEND, "--body", "Hi", "--recipients", str(path), f"--max-invalid={given}"]))
    assert f"max-invalid {given!r} is neither a percentage like 5% nor a fraction like 0.05" in err


def test_a_bad_campaign_max_invalid_setting_is_refused(cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_MAX_INVALID", "5")
    path = tmp_path / "r.csv"
    path.write_text("to\n9876543210\n")
    err = refused(capsys, main([*SEND, "--body", "Hi", "--recipients", str(path)]))
    assert "CAMPAIGN_MAX_INVALID='5' is neither a percentage like 5% nor a fraction like 0.05" in err


def test_suppress_import_of_a_list_mostly_invalid_adds_nothing(cli, tmp_path, capsys):
    path = tmp_path / "optouts.csv"
    path.write_text(NATIONAL_LIST)
    err = refused(capsys, main(["suppress", "import", str(path)]))
    assert err == f"campaign: refused: {MOSTLY_INVALID}\n"
    assert cli.client.dbsize() == 0
    assert main(["suppress", "import", str(path), "--max-invalid", "60%"]) == 0
    assert main(["suppress", "count"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "40"


def test_suppress_import_refuses_a_file_it_would_misread(cli, tmp_path, capsys):
    path = tmp_path / "optouts.csv"
    path.write_text(f'to,name\n9876543210,"Asha\n{ROWS}')
    err = refused(capsys, main(["suppress", "import", str(path), "--prefix", "+91"]))
    assert "line 2: a quote opened here is never closed" in err
    assert cli.client.dbsize() == 0


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["worker", "--threads", "x"], "argument --threads: 'x' is not a whole number"),
        (["worker", "--processes", "0"], "argument --processes: '0' must be at least 1"),
        (["worker", "--metrics-port", "x"], "argument --metrics-port: 'x' is not a port number"),
        (
            ["worker", "--metrics-port", "70000"],
            "argument --metrics-port: '70000' must be a port from 0 (none) to 65535",
        ),
        (["simulate", "--e403-rate", "often"], "argument --e403-rate: 'often' is not a number"),
        (["simulate", "--e403-rate", "nan"], "argument --e403-rate: 'nan' must be between 0 and 1"),
    ],
)
def test_a_bad_option_value_is_refused_saying_what_was_wanted(capsys, argv, reason):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {reason}")


@pytest.mark.parametrize("command", ["serve", "simulate"])
@pytest.mark.parametrize("shared", [False, True], ids=["taken", "shared-by-reuse-port"])
def test_a_server_port_in_use_is_refused_in_one_line_before_it_starts(command, shared, capsys, monkeypatch):
    """Also a port another `campaign serve` holds with SO_REUSEPORT: a second would take half its requests."""
    monkeypatch.setenv("KALEYRA_API_KEY", "k")
    with socket.socket() as taken:
        if shared:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([command, "--port", str(port)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"campaign: refused: --port {port} cannot be used on 127.0.0.1: Address already in use"
    )


def test_a_host_that_is_no_address_is_refused_in_one_line(capsys):
    assert main(["serve", "--host", "999.1.1.1", "--port", "8000"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("campaign: refused: --host '999.1.1.1' cannot be used: ")


def test_an_ipv6_address_is_probed_as_the_server_binds_it_ipv6_alone():
    """`::` next to an IPv4 listener on the same port: asyncio binds it IPv6-only, so it is free."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket() as ipv4:
        ipv4.bind(("0.0.0.0", 0))
        ipv4.listen()
        port = ipv4.getsockname()[1]
        try:
            refuse_taken("::", port, f"--port {port}")
        except SettingsError as e:
            assert "Cannot assign" in str(e) or "not supported" in str(e), e  # no IPv6 configured
        with pytest.raises(SettingsError, match="Address already in use"):
            refuse_taken("0.0.0.0", port, f"--port {port}")


def test_version_is_the_installed_package_s(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"campaign {importlib.metadata.version('kaleyra-campaigns')}"


def test_an_interval_without_watch_is_refused_rather_than_ignored(capsys):
    assert main(["status", "c_any", "--interval", "5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "campaign: refused: --interval is the time between readings of --watch: give --watch too"
    )
