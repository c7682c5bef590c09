"""`campaign invalid|report`: a campaign's skipped rows, or every recipient's outcome, as CSV on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from campaign import connect


def add_parsers(commands: Any) -> None:
    invalid = commands.add_parser(
        "invalid", help="list the rows skipped as invalid, as CSV: line,value,reason"
    )
    invalid.add_argument("campaign_id")
    invalid.set_defaults(run=_invalid)

    report = commands.add_parser(
        "report",
        help="one CSV row per recipient: line, number, outcome, code, message_id, delivery, status_trace, "
        "reported_at (streamed)",
    )
    report.add_argument("campaign_id")
    report.add_argument("--csv", action="store_true", help="CSV on stdout (the default and only format)")
    report.add_argument(
        "--full-numbers", action="store_true", help="show numbers in full (masked by default)"
    )
    report.set_defaults(run=_report)


def _invalid(args: argparse.Namespace) -> int:
    from producer.control import campaign_status, invalid_rows

    client = connect.redis_client()
    campaign_status(client, args.campaign_id)  # refuses an unknown id
    print("line,value,reason")
    for row in invalid_rows(client, args.campaign_id):
        print(f"{row.line},{_csv_field(row.value)},{_csv_field(row.reason)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from producer.control import campaign_status
    from producer.report import COLUMNS, report_rows

    client = connect.redis_client()
    campaign_status(client, args.campaign_id)  # refuses an unknown id
    out = sys.stdout
    out.write(",".join(COLUMNS) + "\n")
    for row in report_rows(client, args.campaign_id, full_numbers=args.full_numbers):
        out.write(
            f"{row.line},{_csv_field(row.number)},{row.outcome},{_csv_field(row.code)},{row.message_id},"
            f"{row.delivery},{row.status_trace},{row.reported_at}\n"
        )
    return 0


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value
