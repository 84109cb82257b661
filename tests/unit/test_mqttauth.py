"""Mosquitto's files as core.mqttauth writes them, and the Kafka login as core.bus passes it on."""

from __future__ import annotations

import doctest
import shutil
import subprocess
from pathlib import Path

import pytest

from core import bus, mqttauth
from core.mqttauth import (
    CredentialError,
    Login,
    acl_text,
    device_username,
    hash_password,
    new_password,
    passwd_text,
    verify,
)
from core.settings import hide_password, kafka_bootstrap, kafka_target


def test_doctests_pass() -> None:
    assert doctest.testmod(mqttauth).failed == 0


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_our_hashes_and_mosquitto_passwds_are_the_same_format(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "acme/d00", "s3cret"], check=True, timeout=10)
    user, encoded = path.read_text().strip().split(":", 1)
    assert user == "acme/d00" and verify("s3cret", encoded) and not verify("s3cre", encoded)
    ours = hash_password("s3cret")
    assert [len(part) for part in ours.split("$")] == [len(part) for part in encoded.split("$")]
    assert ours.split("$")[:3] == encoded.split("$")[:3]  # same scheme ($7$) and iteration count


def test_every_hash_has_its_own_salt() -> None:
    password = new_password()
    assert len(password) >= 43
    first, second = hash_password(password), hash_password(password)
    assert first != second and verify(password, first) and verify(password, second)
    assert not verify(password, "$6$abc$def") and not verify(password, "garbage")


def test_a_device_may_write_its_own_two_topics_and_nothing_else() -> None:
    text = acl_text([("acme", "d00"), ("beta", "d00")], ingest_user="forewarn-ingest", health_user="healthcheck")
    blocks = {
        block.splitlines()[0]: block.splitlines()[1:] for block in text.split("\n\n") if block.startswith("user ")
    }
    assert blocks["user acme/d00"] == [
        "topic write forewarn/v1/acme/d00/telemetry",
        "topic write forewarn/v1/acme/d00/status",
    ]
    assert blocks["user beta/d00"] == [
        "topic write forewarn/v1/beta/d00/telemetry",
        "topic write forewarn/v1/beta/d00/status",
    ]
    assert all(line.startswith("topic read ") for line in blocks["user forewarn-ingest"])
    assert blocks["user healthcheck"] == ["topic read $SYS/#"]
    assert "pattern" not in text  # no %u substitution: nothing depends on how a version treats '/'
    before_first_user = text.split("\nuser ", 1)[0]
    assert "topic" not in before_first_user.replace("# No topic lines", ""), "anonymous clients got a topic"


def test_the_passwd_file_refuses_what_mosquitto_would_misread() -> None:
    good = hash_password("x")
    assert passwd_text([Login("b/d", good), Login("a/d", good)]) == f"a/d:{good}\nb/d:{good}\n"
    for username in ("", "a:b", "a\nb", "a/+", "a/#"):
        with pytest.raises(CredentialError):
            Login(username, good)
    with pytest.raises(CredentialError):
        Login("a/d", "plain-text")
    with pytest.raises(CredentialError, match="twice"):
        passwd_text([Login("a/d", good), Login("a/d", good)])
    for tenant, device in (("Acme", "d0"), ("acme", "d/0"), ("acme", "")):
        with pytest.raises(CredentialError):
            device_username(tenant, device)


def test_the_kafka_url_carries_the_login_and_never_shows_it() -> None:
    url = "kafka://forewarn:p%40ss@kafka:9092,kafka2:9092?mechanism=scram-sha-512"
    target = kafka_target(url)
    assert (target.bootstrap, target.username, target.password, target.mechanism) == (
        "kafka:9092,kafka2:9092",
        "forewarn",
        "p@ss",
        "SCRAM-SHA-512",
    )
    assert kafka_bootstrap(url) == "kafka:9092,kafka2:9092"
    assert "p@ss" not in repr(target) and "p%40ss" not in hide_password(url)
    assert kafka_target("127.0.0.1:9092").username is None
    with pytest.raises(ValueError, match="mechanism"):
        kafka_target("kafka://u:p@h:1?mechanism=GSSAPI")
    with pytest.raises(ValueError, match="password"):
        kafka_target("kafka://u@h:1")


def test_kafka_clients_log_in_when_the_url_has_a_user_and_give_up_within_seconds() -> None:
    plain = bus.client_config("kafka://127.0.0.1:9092")
    assert plain["bootstrap_servers"] == "127.0.0.1:9092" and "sasl_mechanism" not in plain
    sasl = bus.client_config("kafka://forewarn:pw@kafka:9092")
    assert sasl["security_protocol"] == "SASL_PLAINTEXT"
    assert (sasl["sasl_mechanism"], sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == (
        "PLAIN",
        "forewarn",
        "pw",
    )
    assert sasl["request_timeout_ms"] <= 15_000
    assert bus.MAX_REQUEST_BYTES <= 1 << 20
