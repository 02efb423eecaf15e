"""Settings (settings.py): defaults, every environment variable, and the values refused at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipelinejobs_server.domain.naming import DEFAULT_ARCHIVE_TEMPLATE
from pipelinejobs_server.settings import Limits, Settings, SettingsError, Streams

TEMPLATE = "/data/{pipeline_uuid}/{job_uuid}"


def test_defaults() -> None:
    settings = Settings.from_environ({})
    assert settings.mongodb_uri == ""
    assert settings.database == "pipelinejobs"
    assert settings.db_timeout_ms == 2000
    assert settings.host == "127.0.0.1"
    assert settings.port == 50051
    assert settings.admin_keys == ()
    assert settings.client_keys == ()
    assert settings.token_ttl == timedelta(hours=72)
    assert settings.archive_template == DEFAULT_ARCHIVE_TEMPLATE
    assert settings.public_url == "http://127.0.0.1:8080"


def test_default_limits() -> None:
    limits = Settings.from_environ({}).limits
    assert limits == Limits()
    assert limits.max_event_data_bytes == 64 * 1024
    assert limits.max_job_data_bytes == 256 * 1024
    assert limits.max_data_depth == 32


def test_defaults_match_the_dataclass_defaults() -> None:
    assert Settings.from_environ({}) == Settings()


def test_empty_values_mean_the_default() -> None:
    environ = {
        "PIPELINEJOBS_DATABASE": "",
        "PIPELINEJOBS_DB_TIMEOUT_MS": "",
        "PIPELINEJOBS_GRPC_HOST": "",
        "PIPELINEJOBS_GRPC_PORT": "",
        "PIPELINEJOBS_TOKEN_TTL_HOURS": "",
        "PIPELINEJOBS_ARCHIVE_TEMPLATE": "",
        "PIPELINEJOBS_PUBLIC_URL": "",
        "PIPELINEJOBS_MAX_EVENT_DATA_BYTES": "",
    }
    assert Settings.from_environ(environ) == Settings()


def test_every_variable_is_read() -> None:
    environ = {
        "MONGODB_URI": "mongodb://db.example.org:27017/?replicaSet=rs0",
        "PIPELINEJOBS_DATABASE": "jobs_prod",
        "PIPELINEJOBS_DB_TIMEOUT_MS": "5000",
        "PIPELINEJOBS_GRPC_HOST": "0.0.0.0",  # noqa: S104 - a value under test, nothing binds it
        "PIPELINEJOBS_GRPC_PORT": "6000",
        "PIPELINEJOBS_ADMIN_KEY": "admin-one-0123456789abcdef",
        "PIPELINEJOBS_CLIENT_KEYS": "client-one-0123456789abcdef",
        "PIPELINEJOBS_TOKEN_TTL_HOURS": "5",
        "PIPELINEJOBS_ARCHIVE_TEMPLATE": TEMPLATE,
        "PIPELINEJOBS_PUBLIC_URL": "https://jobs.example.org",
        "PIPELINEJOBS_MAX_EVENT_DATA_BYTES": "1000",
        "PIPELINEJOBS_MAX_JOB_DATA_BYTES": "2000",
        "PIPELINEJOBS_MAX_DATA_DEPTH": "3",
        "PIPELINEJOBS_EVENT_BATCHES_IN_FLIGHT": "2",
        "PIPELINEJOBS_EVENT_BATCH_GATHER_MS": "0",
    }
    settings = Settings.from_environ(environ)
    assert settings.mongodb_uri == "mongodb://db.example.org:27017/?replicaSet=rs0"
    assert settings.database == "jobs_prod"
    assert settings.db_timeout_ms == 5000
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 6000
    assert settings.admin_keys == ("admin-one-0123456789abcdef",)
    assert settings.client_keys == ("client-one-0123456789abcdef",)
    assert settings.token_ttl == timedelta(hours=5)
    assert settings.archive_template == TEMPLATE
    assert settings.public_url == "https://jobs.example.org"
    assert settings.limits.max_event_data_bytes == 1000
    assert settings.limits.max_job_data_bytes == 2000
    assert settings.limits.max_data_depth == 3
    assert settings.limits.event_batches_in_flight == 2
    assert settings.limits.event_batch_gather_ms == 0


# Keys of at least 22 characters (128 bits as base64url): shorter ones are refused (tests/security).
FIRST, SECOND, THIRD = ("first" + "-" * 17, "second" + "-" * 16, "third" + "-" * 17)


def test_admin_keys_are_comma_separated() -> None:
    settings = Settings.from_environ({"PIPELINEJOBS_ADMIN_KEY": f" {FIRST} , {SECOND},,{THIRD} ,"})
    assert settings.admin_keys == (FIRST, SECOND, THIRD)


def test_client_keys_are_comma_separated() -> None:
    settings = Settings.from_environ({"PIPELINEJOBS_CLIENT_KEYS": f"{FIRST},{SECOND} , {THIRD}"})
    assert settings.client_keys == (FIRST, SECOND, THIRD)


def test_blank_key_lists_hold_no_keys() -> None:
    settings = Settings.from_environ({"PIPELINEJOBS_ADMIN_KEY": " , ", "PIPELINEJOBS_CLIENT_KEYS": ","})
    assert settings.admin_keys == ()
    assert settings.client_keys == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://jobs.example.org/", "https://jobs.example.org"),
        ("https://jobs.example.org/shim//", "https://jobs.example.org/shim"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_public_url_loses_its_trailing_slash(raw: str, expected: str) -> None:
    assert Settings.from_environ({"PIPELINEJOBS_PUBLIC_URL": raw}).public_url == expected


def test_port_zero_is_allowed() -> None:
    # Port 0 lets tests bind a free port.
    assert Settings.from_environ({"PIPELINEJOBS_GRPC_PORT": "0"}).port == 0


@pytest.mark.parametrize(
    "name",
    [
        "PIPELINEJOBS_DB_TIMEOUT_MS",
        "PIPELINEJOBS_GRPC_PORT",
        "PIPELINEJOBS_TOKEN_TTL_HOURS",
        "PIPELINEJOBS_MAX_EVENT_DATA_BYTES",
        "PIPELINEJOBS_MAX_JOB_DATA_BYTES",
        "PIPELINEJOBS_MAX_DATA_DEPTH",
    ],
)
@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10", "12h"])
def test_non_integers_are_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_environ({name: raw})


@pytest.mark.parametrize("name", ["PIPELINEJOBS_MAX_JOB_DATA_BYTES", "PIPELINEJOBS_MAX_EVENT_DATA_BYTES"])
def test_data_limits_are_kept_small_enough_for_one_item_to_fit_in_a_reply(name: str) -> None:
    # A list reply holds at least one item (api/replies.py): a job with more data than a reply can
    # carry would stop every listing it is on, for everyone.
    largest = Limits().largest_data_bytes
    assert largest > Limits().max_job_data_bytes  # the defaults leave room
    assert Settings.from_environ({name: str(largest)}).limits is not None
    with pytest.raises(SettingsError, match=f"{name} must be at most {largest}"):
        Settings.from_environ({name: str(largest + 1)})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PIPELINEJOBS_DB_TIMEOUT_MS", "99"),
        ("PIPELINEJOBS_GRPC_PORT", "-1"),
        ("PIPELINEJOBS_TOKEN_TTL_HOURS", "0"),
        ("PIPELINEJOBS_MAX_EVENT_DATA_BYTES", "0"),
        ("PIPELINEJOBS_MAX_JOB_DATA_BYTES", "0"),
        ("PIPELINEJOBS_MAX_DATA_DEPTH", "0"),
    ],
)
def test_values_below_the_minimum_are_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match="at least"):
        Settings.from_environ({name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PIPELINEJOBS_DB_TIMEOUT_MS", "100"),
        ("PIPELINEJOBS_TOKEN_TTL_HOURS", "1"),
        ("PIPELINEJOBS_MAX_EVENT_DATA_BYTES", "1"),
        ("PIPELINEJOBS_MAX_JOB_DATA_BYTES", "1"),
        ("PIPELINEJOBS_MAX_DATA_DEPTH", "1"),
    ],
)
def test_values_at_the_minimum_are_accepted(name: str, raw: str) -> None:
    Settings.from_environ({name: raw})


@pytest.mark.parametrize(
    "template",
    [
        "/data/{unknown}/{job_uuid}",  # a field the server does not offer
        "/data/{session}",  # neither job_uuid nor timestamp: two jobs could share a directory
        "/data/{session.__class__}/{job_uuid}",  # attribute access
        "/data/{session[0]}/{job_uuid}",  # index access
        "/data/{}/{job_uuid}",  # positional field
        "/data/{job_uuid",  # unbalanced brace
    ],
)
def test_bad_archive_templates_are_refused(template: str) -> None:
    with pytest.raises(SettingsError, match="template"):
        Settings.from_environ({"PIPELINEJOBS_ARCHIVE_TEMPLATE": template})


@pytest.mark.parametrize(
    "url", ["ftp://jobs.example.org", "jobs.example.org", "//jobs.example.org", "http:/x", "/"]
)
def test_non_http_public_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="PIPELINEJOBS_PUBLIC_URL"):
        Settings.from_environ({"PIPELINEJOBS_PUBLIC_URL": url})


def test_tls_metrics_and_log_format_settings(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("-----BEGIN-----\n")
    settings = Settings.from_environ(
        {
            "PIPELINEJOBS_TLS_CERT_FILE": str(cert),
            "PIPELINEJOBS_TLS_KEY_FILE": str(key),
            "PIPELINEJOBS_TLS_CLIENT_CA_FILE": str(ca),
            "PIPELINEJOBS_TLS_REQUIRE_CLIENT_CERT": "true",
            "PIPELINEJOBS_METRICS_PORT": "9464",
            "PIPELINEJOBS_LOG_FORMAT": "json",
        }
    )
    assert settings.tls.enabled
    assert settings.tls.require_client_cert
    assert settings.metrics_port == 9464
    assert settings.log_format == "json"
    assert Settings.from_environ({}).metrics_port is None
    assert not Settings.from_environ({}).tls.enabled


@pytest.mark.parametrize(
    ("environ", "mentioned"),
    [
        ({"PIPELINEJOBS_TLS_CERT_FILE": "/nonexistent/cert.pem"}, "PIPELINEJOBS_TLS_KEY_FILE"),
        (
            {
                "PIPELINEJOBS_TLS_CERT_FILE": "/nonexistent/c.pem",
                "PIPELINEJOBS_TLS_KEY_FILE": "/nonexistent/k.pem",
            },
            "not found",
        ),
        ({"PIPELINEJOBS_TLS_REQUIRE_CLIENT_CERT": "1"}, "server TLS"),
        ({"PIPELINEJOBS_LOG_FORMAT": "xml"}, "PIPELINEJOBS_LOG_FORMAT"),
        ({"PIPELINEJOBS_METRICS_PORT": "70000"}, "PIPELINEJOBS_METRICS_PORT"),
    ],
)
def test_bad_tls_metrics_and_log_settings_are_refused(environ: dict[str, str], mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_environ(environ)


def test_the_rejected_log_settings() -> None:
    defaults = Settings.from_environ({})
    assert (defaults.limits.max_rejected_per_job, defaults.limits.max_rejected_data_bytes) == (100, 4096)
    assert defaults.rejected_retention is None
    settings = Settings.from_environ(
        {
            "PIPELINEJOBS_MAX_REJECTED_PER_JOB": "2",
            "PIPELINEJOBS_MAX_REJECTED_DATA_BYTES": "256",
            "PIPELINEJOBS_REJECTED_RETENTION_DAYS": "30",
        }
    )
    assert (settings.limits.max_rejected_per_job, settings.limits.max_rejected_data_bytes) == (2, 256)
    assert settings.rejected_retention == timedelta(days=30)
    assert Settings.from_environ({"PIPELINEJOBS_REJECTED_RETENTION_DAYS": "0"}).rejected_retention is None


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("PIPELINEJOBS_MAX_REJECTED_PER_JOB", "1", "at least 2"),
        ("PIPELINEJOBS_MAX_REJECTED_DATA_BYTES", "255", "at least 256"),
        ("PIPELINEJOBS_REJECTED_RETENTION_DAYS", "-1", "at least 0"),
        ("PIPELINEJOBS_REJECTED_RETENTION_DAYS", "36501", "at most 36500"),
        ("PIPELINEJOBS_REJECTED_RETENTION_DAYS", "a month", "integer"),
    ],
)
def test_bad_rejected_log_settings_are_refused(name: str, raw: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}.*{says}"):
        Settings.from_environ({name: raw})


def test_stream_settings_default_and_are_read() -> None:
    assert Settings.from_environ({}).streams == Streams(
        max_watches_per_key=100, max_watches=1000, max_watch_s=1800.0, max_concurrent_rpcs=2000
    )
    environ = {
        "PIPELINEJOBS_MAX_WATCHES_PER_KEY": "5",
        "PIPELINEJOBS_MAX_WATCHES": "50",
        "PIPELINEJOBS_MAX_WATCH_SECONDS": "90.5",
        "PIPELINEJOBS_MAX_CONCURRENT_RPCS": "51",
    }
    assert Settings.from_environ(environ).streams == Streams(5, 50, 90.5, 51)
    assert Settings.from_environ(dict.fromkeys(environ, "")).streams == Streams()


@pytest.mark.parametrize(
    ("environ", "mentioned"),
    [
        ({"PIPELINEJOBS_MAX_WATCHES_PER_KEY": "0"}, "at least 1"),
        ({"PIPELINEJOBS_MAX_WATCHES": "many"}, "PIPELINEJOBS_MAX_WATCHES must be an integer"),
        ({"PIPELINEJOBS_MAX_WATCH_SECONDS": "0"}, "PIPELINEJOBS_MAX_WATCH_SECONDS"),
        ({"PIPELINEJOBS_MAX_WATCH_SECONDS": "86401"}, "PIPELINEJOBS_MAX_WATCH_SECONDS"),
        ({"PIPELINEJOBS_MAX_CONCURRENT_RPCS": "0"}, "at least 1"),
        # Watches alone must never take every call slot from unary calls and health checks.
        ({"PIPELINEJOBS_MAX_CONCURRENT_RPCS": "1000"}, "must be above PIPELINEJOBS_MAX_WATCHES"),
        (
            {"PIPELINEJOBS_MAX_WATCHES": "3000", "PIPELINEJOBS_MAX_CONCURRENT_RPCS": "2000"},
            "must be above PIPELINEJOBS_MAX_WATCHES",
        ),
    ],
)
def test_bad_stream_settings_are_refused(environ: dict[str, str], mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_environ(environ)
