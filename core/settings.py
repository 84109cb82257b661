"""Typed settings, read once from ``FOREWARN_*`` environment variables (loopback defaults)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.localtime import DEFAULT_TIMEZONE, check_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOREWARN_", extra="ignore")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    kafka_url: str = "kafka://127.0.0.1:9092"
    """``kafka://[user:password@]host:port[,host:port][?mechanism=SCRAM-SHA-512]``: with a user,
    every Kafka client authenticates with SASL (PLAIN unless ``mechanism`` says otherwise) over
    plain TCP (SASL_PLAINTEXT: for a private network such as the compose stack's)."""
    database_url: str = "postgresql://postgres@127.0.0.1:5432/forewarn"
    partitions: int = Field(default=4, ge=1, le=1024)
    kafka_fetch_wait_ms: int = Field(default=25, ge=1, le=5000)
    """How long a worker's fetch may wait at the broker for new records. Kafka answers as soon as a
    record arrives; Tansu answers only when the wait is over, so a long wait (Faust's is 1.5 s) is
    added to every warning's way on a quiet partition."""
    retention_days: int = Field(default=30, ge=1)
    ingest_client_id: str = "forewarn-ingest-1"
    ingest_linger_ms: int = Field(default=0, ge=0, le=5000)
    worker_id: str = "forewarn-streams"
    worker_web_port: int = 6066
    state_dir: str = ".forewarn"
    log_level: str = "INFO"
    db_statement_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    """The services' statement timeout on PostgreSQL (migrations have none); see core/db.py."""
    public_url: str = "http://127.0.0.1:8000"
    """Where ``forewarn api`` is reached from outside: acknowledgement links start with it."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    ack_secret: str = ""
    """Signs acknowledgement links; when empty, a random one is kept in ``state_dir``/ack-secret."""
    ack_link_ttl_s: int = Field(default=7 * 86400, ge=60)
    secret_key: str = ""
    """Fernet key(s) sealing channel URLs at rest, comma-separated (the first seals, all open: rotation);
    when empty, one is kept in ``state_dir``/secret-key (core.secretbox)."""
    mqtt_health_password: str = ""
    """The broker health check's MQTT password (user ``healthcheck``); ``forewarn mqtt files``
    lists that user only when it is set."""
    delivery_retry_s: str = "5,30,120"
    """Waits before each retry of a failed message on one channel; then the next channel."""
    fleet_model_dir: str = ""
    """Where ``forewarn train`` writes fleet models and the worker loads the newest of each device
    kind from (:attr:`fleet_models_path`); empty: ``state_dir``/fleet-models. No model there:
    the worker runs no fleet model."""

    @property
    def fleet_models_path(self) -> Path:
        return Path(self.fleet_model_dir) if self.fleet_model_dir else Path(self.state_dir) / "fleet-models"

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.delivery_retry_s.split(",") if part.strip())

    @field_validator("delivery_retry_s")
    @classmethod
    def _delays(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("FOREWARN_DELIVERY_RETRY_S is a comma-separated list of seconds, e.g. 5,30,120") from None
        if any(not d >= 0 for d in delays):
            raise ValueError("FOREWARN_DELIVERY_RETRY_S: the waits must be 0 or more seconds")
        return value

    timezone: str = DEFAULT_TIMEZONE
    """Customers without a zone of their own see times on this clock (IANA name)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        check_zone(value)
        return value

    @property
    def kafka_bootstrap(self) -> str:
        return kafka_bootstrap(self.kafka_url)

    @property
    def mqtt_host_port(self) -> tuple[str, int]:
        return host_port(self.mqtt_url, 1883)

    @property
    def mqtt_credentials(self) -> tuple[str | None, str | None]:
        parts = urlsplit(self.mqtt_url)
        return parts.username, parts.password


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """``scheme://[user@]host[:port]/…`` (or a bare ``host:port``) → (host, port), loopback by default."""
    parts = urlsplit(url if "://" in url else f"x://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def kafka_bootstrap(url: str) -> str:
    """``kafka://[user:password@]h:p[,h:p][?…]`` (or a bare ``h:p``) → ``h:p[,h:p]`` for the Kafka clients."""
    rest = url.split("://", 1)[1] if "://" in url else url
    return rest.rpartition("@")[2].split("?", 1)[0].rstrip("/")


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """Where and how to reach Kafka: the bootstrap servers and, when the URL carries a user,
    the SASL credentials (``mechanism`` one of :data:`SASL_MECHANISMS`)."""

    bootstrap: str
    username: str | None = None
    password: str | None = None
    mechanism: str = "PLAIN"

    def __repr__(self) -> str:  # never a password in a log or a traceback
        return f"KafkaTarget({self.bootstrap!r}, username={self.username!r}, mechanism={self.mechanism!r})"


def kafka_target(url: str) -> KafkaTarget:
    """Parse ``FOREWARN_KAFKA_URL`` (or a bare bootstrap list); percent-decodes user and password."""
    rest = url.split("://", 1)[1] if "://" in url else url
    userinfo, at, hosts = rest.rpartition("@")
    query = parse_qs(hosts.partition("?")[2])
    mechanism = (query.get("mechanism") or ["PLAIN"])[0].upper()
    if mechanism not in SASL_MECHANISMS:
        raise ValueError(f"FOREWARN_KAFKA_URL: mechanism {mechanism!r} must be one of {', '.join(SASL_MECHANISMS)}")
    if not at:
        return KafkaTarget(kafka_bootstrap(url), mechanism=mechanism)
    user, _, password = userinfo.partition(":")
    if not user or not password:
        raise ValueError("FOREWARN_KAFKA_URL: give both the user and the password (kafka://user:password@host:port)")
    return KafkaTarget(kafka_bootstrap(url), unquote(user), unquote(password), mechanism)


def hide_password(url: str) -> str:
    """A URL with its password hidden, for logs."""
    scheme, sep, rest = url.partition("://") if "://" in url else ("", "", url)
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}{slash}{tail}"


def ack_secret(settings: Settings) -> bytes:
    """The key that signs acknowledgement links: ``FOREWARN_ACK_SECRET``, else one kept in the
    state folder (created once, readable by its owner only) so the worker and the API share it."""
    if settings.ack_secret:
        return settings.ack_secret.encode()
    path = Path(settings.state_dir) / "ack-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def ack_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/a/{token}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
