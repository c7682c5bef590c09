"""The data model's Lua scripts: each loads on fakeredis and on a real Redis, names its KEYS and ARGV,
and gets the library functions it uses, once each."""

from __future__ import annotations

import re
from importlib import resources

import msgspec
import pytest

from redis_model import scripts
from schemas.campaign import ChunkOutcome, Outcome

NAMES = sorted(
    entry.name.removesuffix(".lua")
    for entry in (resources.files("redis_model") / "lua").iterdir()
    if entry.name.endswith(".lua")
)


def test_every_script_is_found():
    assert {"claim", "settle", "begin_job", "reserve_turn", "publish_job", "reopen"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_script_loads_and_says_what_its_keys_and_arguments_are(name, backend):
    text = scripts.source(name)

    assert backend.client.script_load(text)
    own = (resources.files("redis_model") / "lua" / f"{name}.lua").read_text()
    assert "\n-- KEYS:" in own
    # Keys and fixed arguments are bound to named locals at the top, the block after the header.
    lines = own.splitlines()
    top = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    locals_end = lines.index("", top + 1) if "" in lines[top + 1 :] else len(lines)
    assert lines[top].startswith("local "), f"{name}.lua: no named locals after its header"
    body = "\n".join(lines[locals_end:])
    assert re.search(r"KEYS\[\d|ARGV\[\d", body) is None, f"{name}.lua uses a key or argument by position"


def test_a_library_function_comes_before_its_user_and_only_once():
    text = scripts.source("publish_job")  # uses renew_lease, which uses redis_now

    assert text.count("local function redis_now") == 1
    assert text.index("local function redis_now") < text.index("local function renew_lease")
    assert text.index("local function renew_lease") < text.index("local campaign_key")


def test_a_worker_lost_record_written_by_an_older_version_still_decodes():
    """Before the records were encoded in Python, the claim script wrote this one by hand."""
    old = b'{"outcome":"unknown","size":250,"code":"WORKER_LOST"}'

    outcome = msgspec.json.decode(old, type=ChunkOutcome)

    assert (outcome.outcome, outcome.size, outcome.code) == (Outcome.UNKNOWN, 250, "WORKER_LOST")
    assert outcome.counts()["unknown"] == 250
