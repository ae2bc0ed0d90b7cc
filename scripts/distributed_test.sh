#!/usr/bin/env bash
# make test-distributed: turkey_training on the CeleryExecutor (PostgreSQL + Redis), every Airflow component a
# process. The driver and its settings (TURKEY_DIST_* environment variables, e.g. TURKEY_DIST_KEEP=1 keeps
# the logs) are described in scripts/distributed/driver.py; this only sets the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$TURKEY_REPO"
exec python -m scripts.distributed.driver "$@"
