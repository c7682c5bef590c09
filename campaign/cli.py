"""The `campaign` console script: its commands, and the exit code each outcome maps to.

Exit codes: 0 done; 2 the input was refused (one line on stderr, nothing published); 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence

import redis
from redis.sentinel import MasterNotFoundError

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
    except MasterNotFoundError:
        # redis-py's message repeats every sentinel client's options: a line too long to read.
        reason = "no sentinel named it (are they up, and is that the name they monitor?)"
        print(f"campaign: Redis at {_redis_address()} failed: {reason}", file=sys.stderr)
        return EXIT_FAILED
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
        epilog="Environment: REDIS_URL (REDIS_SENTINELS, REDIS_SENTINEL_MASTER), KALEYRA_API_KEY, "
        "KALEYRA_SID, KALEYRA_REGION, KALEYRA_BASE_URL, "
        "CAMPAIGN_DEFAULT_PREFIX, CAMPAIGN_DEFAULT_UNICODE (see docs/operations.md).",
    )
    parser.add_argument("--version", action="version", version=f"campaign {_version()}")
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
    """REDIS_URL as messages show it, without its password; or the master the sentinels are asked for."""
    try:
        settings = Settings.from_environ()
    except InputError:
        return "REDIS_URL"
    if settings.redis_sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"{settings.redis_sentinel_master!r} (the master of the sentinels {sentinels})"
    return redact_url(settings.redis_url)


def _version() -> str:
    try:
        return importlib.metadata.version("kaleyra-campaigns")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"
