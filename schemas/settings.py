"""One frozen settings object per process, built from the environment in one function."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec
import redis
from redis.connection import parse_url

from schemas.errors import SettingsError
from schemas.masking import redact_url

REGION_HOSTS = {
    "in": "https://api.in.kaleyra.io",
    "sg": "https://api.kaleyra.io",
    "eu": "https://api.eu.kaleyra.io",
    "na": "https://api.na.kaleyra.ai",
}
UNICODE_FLAGS = ("auto", "0", "1")
PREFIX_PATTERN = re.compile(r"^\+[1-9][0-9]{0,3}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = "redis://127.0.0.1:6379/0"
    # With Sentinel (`redis_model.connection`): the sentinels' addresses and the name of the master they
    # watch; REDIS_URL then gives only the database, the credentials and TLS. The sentinels' own
    # password (their `requirepass`) is never logged or printed.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = ""
    redis_sentinel_password: str = ""
    api_key: str = ""
    sid: str = ""
    region: str = "in"
    base_url: str = REGION_HOSTS["in"]
    default_prefix: str | None = None
    default_unicode: str = "auto"
    log_full_numbers: bool = False
    # The account is India-based: campaigns on the IN pod must carry DLT template and entity IDs.
    dlt_required: bool = False
    chunk_size: int = 1000
    # Recipients per queued job: each job costs about a millisecond of CPU over the producer, dramatiq and
    # the worker, whatever its size; smaller jobs spread a campaign over more worker threads.
    job_size: int = 5000
    # Bulk requests in flight per worker process; 0: as many as it has threads (see worker.gateway).
    max_in_flight: int = 0
    http_timeout_s: float = 30.0
    retry_attempts: int = 5
    retry_backoff_ms: int = 200
    retry_backoff_max_ms: int = 5000
    job_max_retries: int = 5
    job_min_backoff_ms: int = 2000
    heartbeat_timeout_ms: int = 15_000
    # While the account is held (its key refused, the gateway out of reach), how often one worker
    # probes the gateway and held jobs look again.
    hold_probe_ms: int = 30_000
    maintenance_chance: int = 50_000  # per million broker commands
    # The largest share of a list's rows that may be invalid numbers: past it, the list is refused.
    max_invalid: float = 0.05
    # A campaign whose failed recipients pass this share of those attempted, once at least
    # `failure_pause_least` were, pauses itself with the reason (0: never): a bad list or template
    # stops costing money and sender reputation at a thousand, not at ten million.
    failure_pause_share: float = 0.2
    failure_pause_least: int = 1000
    # How long a finished campaign and a settled single message stay in Redis.
    retention_s: float = 30 * 86400
    # How long a worker waits for more single messages to send with the first in one request.
    message_linger_ms: int = 5
    # How long after its submission a message with no final delivery report is asked for with Kaleyra's
    # status query (worker.reconcile); 0: never (no poller, no index of requests to reconcile).
    dlr_poll_after_s: float = 600.0
    # Numbers whose final delivery report says they opted out or are on a do-not-disturb register join
    # the account's suppression list (redis_model.opt_outs).
    dlr_suppress: bool = True
    # A worker group serves /metrics, /healthz and /readyz on this port (0: none), and its processes
    # write their metrics to `metrics_dir` (PROMETHEUS_MULTIPROC_DIR, set by the group for them).
    metrics_port: int = 0
    metrics_dir: str = ""
    # The metrics' campaign figures (by state, delivery) are walked from Redis at most this often, by one
    # exporter for all (`redis_model.census.shared_campaigns`); 0: at every scrape.
    metrics_census_s: float = 30.0
    # The key the callbacks to producers are signed with (`schemas.callback`); without one, callbacks
    # wait in Redis unsent. Never logged or printed.
    callback_secret: str = ""
    # Callbacks may go to private, loopback and link-local addresses (producers inside the network).
    callback_private: bool = False

    def __repr__(self) -> str:
        # The API key must never reach a log line or a traceback.
        hidden = ("api_key", "callback_secret")
        shown = {f: getattr(self, f) for f in self.__struct_fields__ if f not in hidden}
        shown["redis_url"] = redact_url(self.redis_url)
        shown["redis_sentinel_password"] = "***" if self.redis_sentinel_password else ""
        secret = "***" if self.callback_secret else ""
        return f"Settings(api_key={'***' if self.api_key else ''!r}, callback_secret={secret!r}, {shown})"

    __str__ = __repr__

    @property
    def lease_ms(self) -> int:
        """How long a claim lives: one attempt's timeout and a margin for clocks and a slow Redis.

        The claim is given back during a retry's back-off and taken again after it.
        """
        return int(self.http_timeout_s * 1000) + 10_000

    @property
    def sms_json_url(self) -> str:
        return f"{self.base_url}/v1/{self.sid}/sms/json"

    @property
    def sms_status_url(self) -> str:
        """Kaleyra's status query: `?message_ids=ID1,ID2,...`."""
        return f"{self.base_url}/v1/{self.sid}/sms/status"

    @property
    def sms_url(self) -> str:
        """Kaleyra's `/sms` endpoint, the one that sends flash SMS."""
        return f"{self.base_url}/v1/{self.sid}/sms"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        region = env.get("KALEYRA_REGION", "in").strip().lower() or "in"
        if region not in REGION_HOSTS:
            raise SettingsError(
                f"KALEYRA_REGION={region!r} is not a pod; use one of {', '.join(REGION_HOSTS)}"
            )
        prefix = env.get("CAMPAIGN_DEFAULT_PREFIX", "").strip() or None
        if prefix is not None and not PREFIX_PATTERN.match(prefix):
            raise SettingsError(f"CAMPAIGN_DEFAULT_PREFIX={prefix!r} is not a country prefix like +91")
        unicode = env.get("CAMPAIGN_DEFAULT_UNICODE", "auto").strip().lower() or "auto"
        if unicode not in UNICODE_FLAGS:
            raise SettingsError(f"CAMPAIGN_DEFAULT_UNICODE={unicode!r} must be auto, 0 or 1")
        log_numbers = env.get("CAMPAIGN_LOG_NUMBERS", "masked").strip().lower()
        if log_numbers not in ("masked", "full"):
            raise SettingsError(f"CAMPAIGN_LOG_NUMBERS={log_numbers!r} must be masked or full")
        chunk_size = _int(env, "CAMPAIGN_CHUNK_SIZE", 1000, low=1, high=1000)
        dlt_required = env.get("KALEYRA_DLT_REQUIRED", "0").strip().lower() or "0"
        if dlt_required not in ("0", "1"):
            raise SettingsError(f"KALEYRA_DLT_REQUIRED={dlt_required!r} must be 0 or 1")
        dlr_suppress = env.get("CAMPAIGN_DLR_SUPPRESS", "1").strip().lower() or "1"
        if dlr_suppress not in ("0", "1"):
            raise SettingsError(f"CAMPAIGN_DLR_SUPPRESS={dlr_suppress!r} must be 0 or 1")
        sentinels, sentinel_master = _sentinels(env)
        return cls(
            redis_url=_redis_url(env),
            redis_sentinels=sentinels,
            redis_sentinel_master=sentinel_master,
            redis_sentinel_password=env.get("REDIS_SENTINEL_PASSWORD", "") if sentinels else "",
            api_key=env.get("KALEYRA_API_KEY", ""),
            sid=env.get("KALEYRA_SID", ""),
            region=region,
            base_url=(env.get("KALEYRA_BASE_URL") or REGION_HOSTS[region]).rstrip("/"),
            default_prefix=prefix,
            default_unicode=unicode,
            log_full_numbers=log_numbers == "full",
            dlt_required=dlt_required == "1",
            chunk_size=chunk_size,
            job_size=_int(env, "CAMPAIGN_JOB_SIZE", 5000, low=chunk_size, high=100_000),
            max_in_flight=_int(env, "CAMPAIGN_MAX_IN_FLIGHT", 0, low=0, high=10_000),
            http_timeout_s=_int(env, "CAMPAIGN_HTTP_TIMEOUT_MS", 30_000, low=100, high=600_000) / 1000,
            retry_attempts=_int(env, "CAMPAIGN_RETRY_ATTEMPTS", 5, low=1, high=50),
            retry_backoff_ms=_int(env, "CAMPAIGN_RETRY_BACKOFF_MS", 200, low=0, high=600_000),
            retry_backoff_max_ms=_int(env, "CAMPAIGN_RETRY_BACKOFF_MAX_MS", 5000, low=0, high=3_600_000),
            job_max_retries=_int(env, "CAMPAIGN_JOB_MAX_RETRIES", 5, low=0, high=100),
            job_min_backoff_ms=_int(env, "CAMPAIGN_JOB_MIN_BACKOFF_MS", 2000, low=1, high=86_400_000),
            heartbeat_timeout_ms=_int(env, "CAMPAIGN_HEARTBEAT_TIMEOUT_MS", 15_000, low=1000, high=3_600_000),
            hold_probe_ms=_int(env, "CAMPAIGN_HOLD_PROBE_MS", 30_000, low=100, high=3_600_000),
            maintenance_chance=_int(env, "CAMPAIGN_MAINTENANCE_CHANCE", 50_000, low=1, high=1_000_000),
            max_invalid=_share(env, "CAMPAIGN_MAX_INVALID", 0.05),
            failure_pause_share=_failure_pause(env),
            failure_pause_least=_int(env, "CAMPAIGN_FAILURE_PAUSE_LEAST", 1000, low=1, high=10**9),
            retention_s=_retention(env),
            message_linger_ms=_int(env, "CAMPAIGN_MESSAGE_LINGER_MS", 5, low=0, high=1000),
            dlr_poll_after_s=_duration_or_off(env, "CAMPAIGN_DLR_POLL_AFTER", 600.0, "10m or 1h"),
            dlr_suppress=dlr_suppress == "1",
            metrics_port=_int(env, "CAMPAIGN_METRICS_PORT", 0, low=0, high=65_535),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", ""),
            metrics_census_s=_duration_or_off(env, "CAMPAIGN_METRICS_CENSUS", 30.0, "30s or 5m"),
            callback_secret=env.get("CAMPAIGN_CALLBACK_SECRET", ""),
            callback_private=_flag(env, "CAMPAIGN_CALLBACK_PRIVATE"),
        )

    def require_credentials(self) -> None:
        missing = [
            name
            for name, value in (("KALEYRA_API_KEY", self.api_key), ("KALEYRA_SID", self.sid))
            if not value
        ]
        if missing:
            raise SettingsError(f"{' and '.join(missing)} must be set to send")


def _redis_url(env: Mapping[str, str]) -> str:
    """REDIS_URL, refused in one line (the password hidden) rather than a traceback when redis-py
    cannot read it (a bad port, an unknown scheme), or when it names a database that is not a
    number (redis-py would quietly use database 0)."""
    url = env.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0"
    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"REDIS_URL={redact_url(url)!r} must start with redis://, rediss:// or unix://")
    try:
        options = parse_url(url)
    except ValueError as e:
        # redis-py's reason may quote a piece of the URL (a "port" that is the start of a password
        # holding a /): given only for a URL without a password.
        shown = redact_url(url)
        reason = (
            f": {e}" if shown == url else " (is its port a number? / ? # @ in a password must be %-encoded)"
        )
        raise SettingsError(f"REDIS_URL={shown!r} is not a Redis URL{reason}") from e
    try:
        redis.ConnectionPool.from_url(url).make_connection()  # builds one with its options, connects nothing
    except (TypeError, ValueError, redis.RedisError) as e:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        reason = f"unknown option {unknown[1]!r}" if unknown else str(e)
        raise SettingsError(f"REDIS_URL={redact_url(url)!r}: redis-py cannot use it: {reason}") from e
    database = urlsplit(url).path.strip("/")
    if "path" not in options and "db" not in options and database and not database.isdecimal():
        raise SettingsError(
            f"REDIS_URL={redact_url(url)!r}: the database {database!r} is not a number, as in "
            "redis://127.0.0.1:6379/0"
        )
    return url


def _sentinels(env: Mapping[str, str]) -> tuple[tuple[tuple[str, int], ...], str]:
    """REDIS_SENTINELS (`host:port,...`) and REDIS_SENTINEL_MASTER, both or neither."""
    raw = env.get("REDIS_SENTINELS", "").strip()
    master = env.get("REDIS_SENTINEL_MASTER", "").strip()
    if not raw:
        if master:
            raise SettingsError(f"REDIS_SENTINEL_MASTER={master!r} needs REDIS_SENTINELS=host:port,...")
        return (), ""
    if not master:
        raise SettingsError(
            "REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER must name the master the sentinels watch"
        )
    if env.get("REDIS_URL", "").strip().lower().startswith("unix://"):
        raise SettingsError("REDIS_SENTINELS needs a redis:// or rediss:// REDIS_URL, not unix://")
    return tuple(_sentinel_address(raw, item.strip()) for item in raw.split(",")), master


def _sentinel_address(raw: str, item: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, colon, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdecimal() or not 0 < int(port) < 65_536:
        raise SettingsError(
            f"REDIS_SENTINELS={raw!r}: {item!r} is not host:port (a port from 1 to 65535), "
            "as in 10.0.0.1:26379,10.0.0.2:26379"
        )
    return host, int(port)


def parse_duration(raw: str) -> float | None:
    """Seconds in a duration like `90`, `30m`, `2h` or `30d`; None if it is no positive duration."""
    match = _DURATION.match(raw.strip().lower())
    if not match or float(match[1]) <= 0:
        return None
    return float(match[1]) * _SECONDS_PER_UNIT[match[2]]


def _retention(env: Mapping[str, str]) -> float:
    raw = env.get("CAMPAIGN_RETENTION", "30d")
    seconds = parse_duration(raw)
    if seconds is None:
        raise SettingsError(f"CAMPAIGN_RETENTION={raw!r} is not a duration like 12h or 30d")
    return seconds


def _duration_or_off(env: Mapping[str, str], name: str, default: float, like: str) -> float:
    """A duration setting that `0` or `off` turns off (0.0); `default` when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in ("0", "off"):
        return 0.0
    seconds = parse_duration(raw)
    if seconds is None:
        raise SettingsError(f"{name}={raw!r} is not a duration like {like}, nor 0 or off")
    return seconds


def parse_share(raw: str) -> float | None:
    """A share of 0 to 1 written as a percentage ("5%") or a fraction ("0.05"); None if it is neither."""
    text = raw.strip()
    percent = text.endswith("%")
    try:
        value = float(text.removesuffix("%").strip())
    except ValueError:
        return None
    value = value / 100 if percent else value
    return value if 0.0 <= value <= 1.0 else None  # also refuses nan and "5" (500%, or a typo for 5%?)


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A 0/1 setting, 0 when unset."""
    raw = env.get(name, "0").strip() or "0"
    if raw not in ("0", "1"):
        raise SettingsError(f"{name}={raw!r} must be 0 or 1")
    return raw == "1"


def _failure_pause(env: Mapping[str, str]) -> float:
    """CAMPAIGN_FAILURE_PAUSE: a share, or `off` (0: never pause)."""
    off = env.get("CAMPAIGN_FAILURE_PAUSE", "").strip().lower() == "off"
    return 0.0 if off else _share(env, "CAMPAIGN_FAILURE_PAUSE", 0.2)


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = parse_share(raw)
    if value is None:
        raise SettingsError(f"{name}={raw!r} is neither a percentage like 5% nor a fraction like 0.05")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}")
    return value
