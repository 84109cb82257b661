"""The compose stack, checked without Docker: the Compose Specification's JSON schema, files that
exist, no default secret, the brokers' limits and logins as the issue requires.

Only static: nothing here starts a container (the integration test test_mqtt_auth.py runs the
same Mosquitto settings on a real broker through the launcher).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.mqttauth import AUTOSAVE_INTERVAL_S, MAX_PACKET_BYTES, broker_conf
from core.settings import kafka_target

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.schema.json"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<op>:?[-?+])?(?P<rest>[^}]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")


@pytest.fixture(scope="module")
def text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def conf(path: Path) -> dict[str, str]:
    lines = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#")
    return {key: value for key, value in lines}


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"].rstrip("#/").endswith("draft-07/schema")  # the spec's schema says draft 7
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_can_fail() -> None:
    schema = json.loads(SCHEMA.read_text())
    bad = {"services": {"x": {"image": "y", "depends_on": {"z": {"condition": "whenever"}}, "restart_policy": 1}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(bad))


def test_every_mounted_file_exists_or_is_written_by_the_init_service(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in named, f"{name} mounts the undeclared volume {source}"
    # Mosquitto's passwd and acl live in the volume the mqtt-auth service writes before it starts
    settings = conf(MOSQUITTO_CONF)
    mosquitto, init = compose["services"]["mosquitto"], compose["services"]["mqtt-auth"]
    auth_dir = str(Path(settings["password_file"]).parent)
    assert str(Path(settings["acl_file"]).parent) == auth_dir
    assert f"mosquitto-auth:{auth_dir}:ro" in mosquitto["volumes"]
    assert f"mosquitto-auth:{auth_dir}" in init["volumes"]
    assert init["command"][:3] == ["mqtt", "files", auth_dir]
    assert mosquitto["depends_on"]["mqtt-auth"] == {"condition": "service_completed_successfully"}
    assert init["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_no_secret_has_a_default_and_every_one_is_listed(text: str) -> None:
    secrets: set[str] = set()
    for found in VARIABLE.finditer(text):
        if SECRET_NAME.search(found["name"]):
            assert found["op"] == ":?", f"${{{found['name']}}} must be required (${{VAR:?message}}), not defaulted"
            assert found["rest"].strip(), f"${{{found['name']}:?}} should say what to set"
            secrets.add(found["name"])
    assert "change-me" not in text
    assert {"POSTGRES_PASSWORD", "KAFKA_PASSWORD", "MQTT_INGEST_PASSWORD", "MQTT_HEALTH_PASSWORD"} <= secrets
    example = ROOT / ".env.example"
    listed = {line.split("=", 1)[0] for line in example.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert secrets <= listed, f".env.example lacks {sorted(secrets - listed)}"
    assert all(not line.split("=", 1)[1] for line in example.read_text().splitlines() if line.split("=")[0] in secrets)


def test_every_url_password_is_a_required_secret(compose: dict[str, Any]) -> None:
    for name, value in compose["x-forewarn-env"].items():
        if isinstance(value, str) and "://" in value and "@" in value:
            password = value.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
            assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", password), f"{name}: the password is not a required secret"


def test_kafka_requires_sasl_and_the_clients_log_in(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    listeners = dict(item.split("://", 1) for item in kafka["KAFKA_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    client_listeners = [n for n in listeners if n not in kafka["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")]
    assert client_listeners and all(protocols[n].startswith("SASL_") for n in client_listeners)
    assert kafka["KAFKA_ADVERTISED_LISTENERS"].startswith("SASL_PLAINTEXT://")
    assert "9093" not in str(compose["services"]["kafka"].get("ports", ""))  # the controller is not published
    target = kafka_target(compose["x-forewarn-env"]["FOREWARN_KAFKA_URL"])
    assert target.username and target.password
    assert (
        f'user_{target.username}="{target.password}"'
        in kafka["KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG"]
    )
    assert "--command-config" in " ".join(compose["services"]["kafka"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", ["ingest", "worker"])
def test_health_means_progress(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    status = spec["environment"]["FOREWARN_STATUS_FILE"]
    assert spec["healthcheck"]["test"] == ["CMD", "forewarn", "health", status, "--stall-s", "60"]


def test_both_mosquitto_configs_cap_messages_and_persist() -> None:
    deployed = conf(MOSQUITTO_CONF)
    local = conf_text(broker_conf(1883, auth_dir="/a", data_dir="/d"))
    for settings in (deployed, local):
        assert int(settings["max_packet_size"]) == MAX_PACKET_BYTES
        assert settings["allow_anonymous"] == "false"
        assert settings["persistence"] == "true"
        assert int(settings["autosave_interval"]) == AUTOSAVE_INTERVAL_S == 1
        assert settings["autosave_on_changes"] == "false"
    assert conf_text(broker_conf(1883))["max_packet_size"] == str(MAX_PACKET_BYTES)  # the open local one too


def conf_text(text: str) -> dict[str, str]:
    return {key: value for key, value in (line.split(None, 1) for line in text.splitlines())}


def test_the_dockerfile_copies_only_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
