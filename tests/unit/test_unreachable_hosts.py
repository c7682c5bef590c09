"""A host that failed is taken for unreachable, with why, until the quiet time after its last failure."""

from worker.unreachable_hosts import UnreachableHosts


def test_a_failed_host_is_unreachable_until_quiet_after_its_last_failure_or_an_answer():
    now = [100.0]
    hosts = UnreachableHosts(quiet_s=30, clock=lambda: now[0])

    hosts.failed("a.example", "timed out")
    now[0] = 120.0
    hosts.failed("a.example", "could not connect")  # the quiet time starts again, with the last reason
    now[0] = 149.0
    assert hosts.why("a.example") == "could not connect" and hosts.why("b.example") is None
    now[0] = 150.0
    assert hosts.why("a.example") is None

    hosts.failed("a.example", "timed out")
    hosts.answered("a.example")  # even an error answer: it is there
    assert hosts.why("a.example") is None
