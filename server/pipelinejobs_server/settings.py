"""Server settings, read from an injectable mapping (the process environment by default).

Every setting has a flag in the CLI too; README.md lists them in one table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from .domain.naming import DEFAULT_ARCHIVE_TEMPLATE, validate_template
from .domain.tokens import MIN_KEY_LENGTH


class SettingsError(ValueError):
    """A setting has a value the server cannot use."""


def read_int(
    environ: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer setting; ``default`` when unset or empty. Shared by every settings object here."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def read_seconds(environ: Mapping[str, str], name: str, default: float, maximum: float = 600.0) -> float:
    """A duration in seconds, above 0 and at most ``maximum``; ``default`` when unset or empty."""
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value <= maximum:
        raise SettingsError(f"{name} must be between 0 and {maximum:g} seconds, got {value}")
    return value


def _keys(raw: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in raw.split(",") if key.strip())


# A list reply always holds at least one item (api/replies.py), so one job, pipeline or entry must fit in
# a message: protobuf's Struct takes up to 5.5 times the bytes of the canonical JSON it carries (a list of
# small numbers: "0," is 11 bytes of protobuf), and a job's links and other fields up to ~300 KiB more.
STRUCT_EXPANSION = 6
ITEM_ROOM_BYTES = 512 * 1024

# The log's summary row of dropped rejections takes one place of the bound; the stand-in for a truncated
# payload needs about 110 bytes of its own (domain/truncation.py).
MIN_REJECTED_PER_JOB = 2
MIN_REJECTED_DATA_BYTES = 256


@dataclass(frozen=True)
class Limits:
    max_event_data_bytes: int = 64 * 1024
    max_job_data_bytes: int = 256 * 1024
    max_data_depth: int = 32
    max_message_bytes: int = 4 * 1024 * 1024
    # Each CreateJob of an existing job by its creator adds a token; expired ones are dropped, and past
    # this many live ones CreateJob is refused: a live token is never pushed out (README, "Tokens").
    max_tokens_per_job: int = 64
    default_page_size: int = 100
    max_page_size: int = 1000
    # The rejected-events log of one job keeps its newest rows and counts the ones it drops; of a
    # rejection's data it keeps this many bytes (ADR 011). Any token holder can add rejections.
    max_rejected_per_job: int = 100
    max_rejected_data_bytes: int = 4 * 1024
    # Group commit (DESIGN section 6a): at most this many events in one batch write, and at most this
    # many waiting for theirs in one process; past that, SendEvent answers RESOURCE_EXHAUSTED.
    max_event_batch: int = 64
    max_queued_events: int = 4096
    # Batches written at once, never two with events of the same job (ADR 013).
    event_batches_in_flight: int = 1
    # Under load, how long a batch may wait for the callers the last one answered to send again (ADR
    # 017); never longer than the last write took, and never at low load. 0 takes the queue at once.
    event_batch_gather_ms: int = 10

    @property
    def largest_data_bytes(self) -> int:
        """The most data (canonical JSON) one item may carry and still fit in one reply."""
        return (self.max_message_bytes - ITEM_ROOM_BYTES) // STRUCT_EXPANSION


@dataclass(frozen=True)
class Streams:
    """Bounds on long-lived calls (ADR 009). Watches of every feed (WatchJob, later WatchEvents) count
    against the same two caps; past either, a new watch is refused with RESOURCE_EXHAUSTED."""

    max_watches_per_key: int = 100  # one API key's open watches: a dashboard's tabs share its key
    max_watches: int = 1000  # the whole process's
    # A watch then ends with UNAVAILABLE / WATCH_RESUME and its last seq; the clients resume there.
    max_watch_s: float = 1800.0
    # Every call of every kind in flight at once (grpc.aio.server's maximum_concurrent_rpcs). Above
    # max_watches, so that watches alone can never take every slot from unary calls and health checks.
    max_concurrent_rpcs: int = 2000


@dataclass(frozen=True)
class Feed:
    """The event feed (ADR 015): how long it keeps entries, how soon it sees new ones."""

    retention: timedelta = timedelta(days=30)
    # The relay looks for new history entries, and each process for new feed entries, this often:
    # the bulk of a live watch's lag. An idle server makes two indexed reads per poll.
    poll_s: float = 0.05
    bookmark_s: float = 5.0  # a watch sends its cursor at least this often, even when nothing matched
    # Off: this process never relays (another replica must, or the feed stands still); for measuring
    # what the relay costs, and for replicas that should leave the database's work to the others.
    relay: bool = True
    # On for a replica set (ADR 015): the feed reads only what a majority holds. Off for one node.
    majority_reads: bool = False


@dataclass(frozen=True)
class Tls:
    """Server-side TLS. Without a certificate the server speaks plaintext (loopback, trusted networks)."""

    cert_file: str = ""
    key_file: str = ""
    # Client certificates: verified against this CA when presented; required if require_client_cert.
    client_ca_file: str = ""
    require_client_cert: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str = ""
    database: str = "pipelinejobs"
    db_timeout_ms: int = 2000
    host: str = "127.0.0.1"
    port: int = 50051
    admin_keys: tuple[str, ...] = ()
    client_keys: tuple[str, ...] = ()
    token_ttl: timedelta = timedelta(hours=72)
    archive_template: str = DEFAULT_ARCHIVE_TEMPLATE
    public_url: str = "http://127.0.0.1:8080"
    health_interval_s: float = 2.0
    limits: Limits = field(default_factory=Limits)
    tls: Tls = field(default_factory=Tls)
    streams: Streams = field(default_factory=Streams)
    feed: Feed = field(default_factory=Feed)
    # None: no metrics endpoint; 0 picks a free port.
    metrics_port: int | None = None
    log_format: str = "text"
    # None: rejected events are kept until their job is cancelled; else the database deletes them this
    # long after they were refused (a TTL index).
    rejected_retention: timedelta | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        limits = Limits(
            max_event_data_bytes=read_int(
                env, "PIPELINEJOBS_MAX_EVENT_DATA_BYTES", Limits.max_event_data_bytes, 1
            ),
            max_job_data_bytes=read_int(env, "PIPELINEJOBS_MAX_JOB_DATA_BYTES", Limits.max_job_data_bytes, 1),
            max_data_depth=read_int(env, "PIPELINEJOBS_MAX_DATA_DEPTH", Limits.max_data_depth, 1),
            max_rejected_per_job=read_int(
                env, "PIPELINEJOBS_MAX_REJECTED_PER_JOB", Limits.max_rejected_per_job, MIN_REJECTED_PER_JOB
            ),
            max_rejected_data_bytes=read_int(
                env,
                "PIPELINEJOBS_MAX_REJECTED_DATA_BYTES",
                Limits.max_rejected_data_bytes,
                MIN_REJECTED_DATA_BYTES,
            ),
            max_event_batch=read_int(env, "PIPELINEJOBS_MAX_EVENT_BATCH", Limits.max_event_batch, 1, 1000),
            max_queued_events=read_int(env, "PIPELINEJOBS_MAX_QUEUED_EVENTS", Limits.max_queued_events, 1),
            event_batches_in_flight=read_int(
                env, "PIPELINEJOBS_EVENT_BATCHES_IN_FLIGHT", Limits.event_batches_in_flight, 1, 64
            ),
            event_batch_gather_ms=read_int(
                env, "PIPELINEJOBS_EVENT_BATCH_GATHER_MS", Limits.event_batch_gather_ms, 0, 1000
            ),
        )
        retention_days = read_int(env, "PIPELINEJOBS_REJECTED_RETENTION_DAYS", 0, maximum=36500)
        settings = cls(
            mongodb_uri=env.get("MONGODB_URI", ""),
            database=env.get("PIPELINEJOBS_DATABASE", defaults.database) or defaults.database,
            db_timeout_ms=read_int(env, "PIPELINEJOBS_DB_TIMEOUT_MS", defaults.db_timeout_ms, 100),
            host=env.get("PIPELINEJOBS_GRPC_HOST", defaults.host) or defaults.host,
            port=read_int(env, "PIPELINEJOBS_GRPC_PORT", defaults.port, maximum=65535),
            admin_keys=_keys(env.get("PIPELINEJOBS_ADMIN_KEY", "")),
            client_keys=_keys(env.get("PIPELINEJOBS_CLIENT_KEYS", "")),
            token_ttl=timedelta(hours=read_int(env, "PIPELINEJOBS_TOKEN_TTL_HOURS", 72, 1)),
            archive_template=env.get("PIPELINEJOBS_ARCHIVE_TEMPLATE", defaults.archive_template)
            or defaults.archive_template,
            public_url=(
                env.get("PIPELINEJOBS_PUBLIC_URL", defaults.public_url) or defaults.public_url
            ).rstrip("/"),
            limits=limits,
            streams=Streams(
                max_watches_per_key=read_int(
                    env, "PIPELINEJOBS_MAX_WATCHES_PER_KEY", Streams.max_watches_per_key, 1
                ),
                max_watches=read_int(env, "PIPELINEJOBS_MAX_WATCHES", Streams.max_watches, 1),
                max_watch_s=read_seconds(
                    env, "PIPELINEJOBS_MAX_WATCH_SECONDS", Streams.max_watch_s, maximum=86400.0
                ),
                max_concurrent_rpcs=read_int(
                    env, "PIPELINEJOBS_MAX_CONCURRENT_RPCS", Streams.max_concurrent_rpcs, 1
                ),
            ),
            feed=Feed(
                retention=timedelta(
                    days=read_int(
                        env, "PIPELINEJOBS_FEED_RETENTION_DAYS", Feed.retention.days, 1, maximum=36500
                    )
                ),
                poll_s=read_int(env, "PIPELINEJOBS_FEED_POLL_MS", int(Feed.poll_s * 1000), 5, maximum=5000)
                / 1000,
                relay=env.get("PIPELINEJOBS_FEED_RELAY", "on") not in ("off", "0", "false", "no"),
                majority_reads=env.get("PIPELINEJOBS_FEED_MAJORITY_READS", "") in ("on", "1", "true", "yes"),
                bookmark_s=read_seconds(
                    env, "PIPELINEJOBS_FEED_BOOKMARK_SECONDS", Feed.bookmark_s, maximum=600.0
                ),
            ),
            tls=Tls(
                cert_file=env.get("PIPELINEJOBS_TLS_CERT_FILE", ""),
                key_file=env.get("PIPELINEJOBS_TLS_KEY_FILE", ""),
                client_ca_file=env.get("PIPELINEJOBS_TLS_CLIENT_CA_FILE", ""),
                require_client_cert=env.get("PIPELINEJOBS_TLS_REQUIRE_CLIENT_CERT", "")
                in ("1", "true", "yes"),
            ),
            metrics_port=(
                read_int(env, "PIPELINEJOBS_METRICS_PORT", 0, maximum=65535)
                if env.get("PIPELINEJOBS_METRICS_PORT")
                else None
            ),
            log_format=env.get("PIPELINEJOBS_LOG_FORMAT", "text") or "text",
            rejected_retention=timedelta(days=retention_days) if retention_days else None,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        for variable, keys in (
            ("PIPELINEJOBS_ADMIN_KEY", self.admin_keys),
            ("PIPELINEJOBS_CLIENT_KEYS", self.client_keys),
        ):
            for position, key in enumerate(keys, start=1):
                if len(key) < MIN_KEY_LENGTH:
                    # The position, never the key: a short key is still a secret.
                    raise SettingsError(
                        f"{variable}: key {position} has {len(key)} characters; API keys need at least "
                        f"{MIN_KEY_LENGTH} (128 bits as base64url), e.g. "
                        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                    )
        try:
            validate_template(self.archive_template)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        for name, value in (
            ("PIPELINEJOBS_MAX_JOB_DATA_BYTES", self.limits.max_job_data_bytes),
            ("PIPELINEJOBS_MAX_EVENT_DATA_BYTES", self.limits.max_event_data_bytes),
        ):
            if value > self.limits.largest_data_bytes:
                raise SettingsError(
                    f"{name} must be at most {self.limits.largest_data_bytes}, got {value}: one job or "
                    f"event must fit in a reply of {self.limits.max_message_bytes} bytes"
                )
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"PIPELINEJOBS_LOG_FORMAT must be text or json, got {self.log_format!r}")
        if bool(self.tls.cert_file) != bool(self.tls.key_file):
            raise SettingsError("TLS needs both PIPELINEJOBS_TLS_CERT_FILE and PIPELINEJOBS_TLS_KEY_FILE")
        if (self.tls.client_ca_file or self.tls.require_client_cert) and not self.tls.enabled:
            raise SettingsError(
                "client certificates need server TLS (PIPELINEJOBS_TLS_CERT_FILE and _KEY_FILE)"
            )
        if self.tls.require_client_cert and not self.tls.client_ca_file:
            raise SettingsError("PIPELINEJOBS_TLS_REQUIRE_CLIENT_CERT needs PIPELINEJOBS_TLS_CLIENT_CA_FILE")
        for path in (self.tls.cert_file, self.tls.key_file, self.tls.client_ca_file):
            if path and not os.path.isfile(path):
                raise SettingsError(f"TLS file not found: {path}")
        if self.streams.max_concurrent_rpcs <= self.streams.max_watches:
            raise SettingsError(
                "PIPELINEJOBS_MAX_CONCURRENT_RPCS must be above PIPELINEJOBS_MAX_WATCHES "
                f"({self.streams.max_concurrent_rpcs} <= {self.streams.max_watches}): "
                "watches alone would take every call slot"
            )
        if not self.public_url.startswith(("http://", "https://")):
            raise SettingsError(f"PIPELINEJOBS_PUBLIC_URL must be an http(s) URL, got {self.public_url!r}")
