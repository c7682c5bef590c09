from campaign.demo import run_demo


def test_demo_sends_its_campaign_end_to_end_with_no_services(tmp_path, capsys):
    events = tmp_path / "demo.jsonl"
    code = run_demo(recipients=1500, e403_rate=0.3, latency_ms=0, threads=4, events_path=str(events))
    assert code == 0
    submitted = [line for line in events.read_bytes().splitlines() if b'"sms.submitted"' in line]
    assert len(submitted) == 1500
    summary = capsys.readouterr().err
    assert "completed" in summary and "messages per second" in summary
