#!/usr/bin/env bash
# The two-minute demo on local services: reuses or starts Mosquitto, Tansu and PostgreSQL,
# runs ingest and worker, publishes a simulated fleet and shows the warnings as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/forewarn demo "$@"
