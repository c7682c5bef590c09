"""A suppression list written by an older version: marketing is refused against it until `campaign
suppress renormalise` has added the forms this version reads, on fakeredis and Redis."""

from __future__ import annotations

import pytest

from campaign.cli import main
from producer import suppression
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys, suppression_list
from schemas.errors import InputError
from worker.broker import build_broker

SID = "HXTEST0000IN"
OLD_MESSAGE = (
    f"the suppression list of account {SID} was written by an older version; "
    "run `campaign suppress renormalise` first"
)
# As the older normaliser stored them, and as this version reads the same people.
STORED_BY_OLD = {
    "+49015123456789": "+4915123456789",  # +49 (0)15123456789: the trunk 0 was kept
    "+3931234567": "+393931234567",  # 3931234567 with --prefix +39: misread as carrying +39
}


def write_old_list(client, *numbers: str) -> None:
    """A list as an older version left it: the numbers, no format."""
    client.sadd(keys.suppression_list(SID), *numbers)


def publish(backend, settings, rows, *, type="MKT", dry_run=False):
    spec = build_spec(settings=settings, sender="KLRHXA", type=type, body="Sale today")
    broker = None if dry_run else build_broker(settings, backend.client)
    return publish_campaign(
        spec, rows, client=backend.client, broker=broker, settings=settings, dry_run=dry_run
    )


def test_renormalise_adds_the_forms_this_version_reads_and_removes_nothing(backend):
    write_old_list(backend.client, *STORED_BY_OLD, "+919876543210")

    result = suppression.renormalise(backend.client, SID)

    listed = {n.decode() for n in backend.client.smembers(keys.suppression_list(SID))}
    assert listed == {*STORED_BY_OLD, *STORED_BY_OLD.values(), "+919876543210"}
    assert (result.read, result.added) == (3, 2)
    assert backend.client.get(keys.suppression_format(SID)) == suppression_list.FORMAT.encode()


def test_the_people_an_older_version_listed_are_found_as_they_are_written_now(backend):
    write_old_list(backend.client, *STORED_BY_OLD)
    suppression.renormalise(backend.client, SID)
    assert suppression.add(backend.client, SID, ["+49 (0)15123456789", "015123456789"], "+49") == 0
    assert suppression.add(backend.client, SID, ["3931234567", "+39 393 123 4567"], "+39") == 0


def test_renormalise_run_again_adds_nothing(backend):
    write_old_list(backend.client, *STORED_BY_OLD, "not a number")
    suppression.renormalise(backend.client, SID)
    again = suppression.renormalise(backend.client, SID)
    assert (again.read, again.added) == (5, 0)


def test_renormalise_reads_a_list_of_several_pages(backend, monkeypatch):
    monkeypatch.setattr(suppression, "PAGE", 7)
    old = [f"+490151{i:08d}" for i in range(50)]  # each kept its trunk 0
    write_old_list(backend.client, *old)
    assert suppression.renormalise(backend.client, SID).added == 50
    assert all(backend.client.sismember(keys.suppression_list(SID), "+49151" + n[7:]) for n in old)


@pytest.mark.parametrize("type", ["MKT", "DEFAULT"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_marketing_is_refused_against_a_list_an_older_version_wrote_and_nothing_is_published(
    backend, make_settings, type, dry_run
):
    settings = make_settings("http://127.0.0.1:9")
    write_old_list(backend.client, *STORED_BY_OLD)

    with pytest.raises(InputError) as refused:
        publish(backend, settings, [(2, "+4915123456789"), (3, "+919876543210")], type=type, dry_run=dry_run)

    assert str(refused.value) == OLD_MESSAGE
    assert backend.client.keys("campaign:*") == []
    assert backend.client.keys("dramatiq:*") == []


def test_after_renormalise_marketing_goes_and_leaves_out_the_old_forms(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9")
    write_old_list(backend.client, *STORED_BY_OLD)
    suppression.renormalise(backend.client, SID)

    result = publish(backend, settings, [(2, "+49 (0)15123456789"), (3, "+919876543210")])

    assert (result.total, result.suppressed) == (1, 1)


def test_an_otp_is_not_held_back_by_a_list_an_older_version_wrote(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9")
    write_old_list(backend.client, *STORED_BY_OLD)
    assert publish(backend, settings, [(2, "+4915123456789")], type="OTP").total == 1


@pytest.mark.parametrize("how", ["add", "import"])
def test_a_list_this_version_creates_carries_its_format(backend, how):
    if how == "add":
        suppression.add(backend.client, SID, ["+4915123456789"], None)
    else:
        suppression.import_rows(backend.client, SID, [(2, "+4915123456789", ())], None)
    assert backend.client.get(keys.suppression_format(SID)) == suppression_list.FORMAT.encode()
    assert suppression.in_use(backend.client, SID)


@pytest.mark.parametrize("how", ["add", "import"])
def test_adding_to_a_list_an_older_version_wrote_leaves_it_refused(backend, how):
    write_old_list(backend.client, *STORED_BY_OLD)
    if how == "add":
        assert suppression.add(backend.client, SID, ["+447911123456"], None) == 1
    else:
        suppression.import_rows(backend.client, SID, [(2, "+447911123456", ())], None)
    assert backend.client.get(keys.suppression_format(SID)) is None
    with pytest.raises(InputError, match="written by an older version"):
        suppression.in_use(backend.client, SID)


@pytest.fixture
def cli(real_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", SID)
    return real_redis


def test_send_is_refused_in_one_line_until_renormalise_has_run(cli, tmp_path, capsys):
    write_old_list(cli.client, *STORED_BY_OLD)
    path = tmp_path / "r.csv"
    path.write_text("to\n015123456789\n015123456790\n")
    send = ["send", "--sender", "KLRHXA", "--type", "MKT", "--prefix", "+49", "--body", "Sale"]
    send += ["--recipients", str(path)]

    code = main([*send, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and err == f"campaign: refused: {OLD_MESSAGE}\n"

    assert main(["suppress", "renormalise"]) == 0
    out = capsys.readouterr().out
    assert out == f"account {SID}: 2 numbers read, 2 forms added, 4 suppressed\n"

    assert main([*send, "--dry-run", "--json"]) == 0
    assert '"suppressed":1' in capsys.readouterr().out.replace(" ", "")
