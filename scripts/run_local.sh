#!/usr/bin/env bash
# make run: one whole turkey_training run through Airflow on the embedded default (SQLite, local files).
# The run and its summary are scripts/run_local.py; this only sets the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TURKEY_REPO"
exec python -m scripts.run_local "$@"
