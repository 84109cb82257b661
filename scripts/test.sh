#!/usr/bin/env bash
# Run every test: unit tests, then integration and end-to-end tests on real Mosquitto,
# Tansu (Kafka protocol) and PostgreSQL, which the test session reuses or starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
