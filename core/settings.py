"""Typed settings, read once from ``FOREWARN_*`` environment variables (loopback defaults)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.localtime import DEFAULT_TIMEZONE, check_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOREWARN_", extra="ignore")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    kafka_url: str = "kafka://127.0.0.1:9092"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/forewarn"
    partitions: int = Field(default=4, ge=1, le=1024)
    retention_days: int = Field(default=30, ge=1)
    ingest_client_id: str = "forewarn-ingest-1"
    ingest_linger_ms: int = Field(default=0, ge=0, le=5000)
    worker_id: str = "forewarn-streams"
    worker_web_port: int = 6066
    state_dir: str = ".forewarn"
    log_level: str = "INFO"
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
    """``kafka://h:p[,h:p]`` (or a bare ``h:p``) → ``h:p[,h:p]`` for the Kafka clients."""
    return url.split("://", 1)[1] if "://" in url else url


def hide_password(url: str) -> str:
    """A URL with its password hidden, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
