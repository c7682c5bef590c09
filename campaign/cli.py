"""The `campaign` console script: its commands, and the exit code each outcome maps to.

Exit codes: 0 done; 2 the input was refused (one line on stderr, nothing published); 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import redis

from campaign import control, keys_command, processes, reports, send, status, suppress
from campaign.service import serve
from schemas.errors import InputError
from schemas.masking import redact_url
from schemas.settings import Settings

EXIT_REFUSED = 2
EXIT_FAILED = 1
# The reader of stdout went away (`campaign report ID | head`): the status a shell gives a command
# killed by SIGPIPE, as `cat` would be. Not 0: the output was cut short, and `set -o pipefail`
# should see it as it sees any other tool's.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        code = command(args)
        sys.stdout.flush()  # a reader gone shows here rather than in Python's own flush at exit
        return code
    except BrokenPipeError:
        # Quietly, as the Python docs' note on SIGPIPE does: stdout goes to /dev/null so that the
        # flush at exit does not fail on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except InputError as e:
        print(f"campaign: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except redis.RedisError as e:
        print(f"campaign: Redis at {_redis_address()} failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign",
        description="Bulk SMS campaigns through Kaleyra's /sms/json API, queued on Redis, "
        "sent by dramatiq workers.",
        epilog="Environment: REDIS_URL, KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_REGION, KALEYRA_BASE_URL, "
        "CAMPAIGN_DEFAULT_PREFIX, CAMPAIGN_DEFAULT_UNICODE (see docs/operations.md).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    # `campaign --help` lists the commands in the order they are added here.
    send.add_parsers(commands)
    status.add_parsers(commands)
    control.add_parsers(commands)
    reports.add_parsers(commands)
    suppress.add_parser(commands)
    processes.add_parsers(commands)
    serve.add_parser(commands)
    keys_command.add_parsers(commands)
    return parser


def _redis_address() -> str:
    """REDIS_URL as messages show it: without its password."""
    try:
        return redact_url(Settings.from_environ().redis_url)
    except InputError:
        return "REDIS_URL"
