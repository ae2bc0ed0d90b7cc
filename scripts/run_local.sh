#!/usr/bin/env bash
# make run: one whole turkey_training run through Airflow on the embedded default (SQLite, local files).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$TURKEY_REPO"
landing="$TURKEY_DATA_ROOT/landing"
if [[ ! -f "$landing/train.json" || ! -f "$landing/test.json" ]]; then
  echo "==> no train.json/test.json in $landing: generating demo data"
  turkey demo-data --out "$landing"
fi
mkdir -p "$AIRFLOW_HOME"
echo "==> Airflow metadata DB: $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
conf="${TURKEY_CONF:-{\}}"
echo "==> airflow dags test turkey_training (conf: $conf)"
log="$AIRFLOW_HOME/last-run.log"
export TURKEY_RUN_STARTED="$(date -u +%Y-%m-%dT%H:%M:%S)"
set +e
# In-process `airflow dags test` that exits as soon as the run is recorded (skips ~3 s of interpreter teardown).
python "$TURKEY_REPO/scripts/airflow_fast_exit.py" dags test turkey_training --conf "$conf" 2>&1 | tee "$log" \
  | grep -E --line-buffered '\[ml\.|DagRun Finished|new_state=(failed|up_for_retry)|Traceback|AirflowFailException' \
  | sed -E -u 's/ +loc=[^ ]+.*$//; s/^[0-9TZ:.-]+ //; s/^\[(info|warning|error) *\] /\1: /' | cut -c1-300
status=${PIPESTATUS[0]}
set -e
echo "==> full log: $log"
python - <<'PY'
import os
import sys
from ml.registry import Registry
reg = Registry()
champ = reg.champion()
if champ is None:
    print("==> no champion model published (see the log above)")
    sys.exit(1)
info = reg.describe("champion")
m = info["metrics"]
latest = reg.manifest(reg.versions()[-1])
started = os.environ["TURKEY_RUN_STARTED"]
if latest["version"] != info["version"] and latest.get("created_at", "") >= started:  # this run's version lost
    gate = latest.get("gate") or {}
    print(f"==> this run's version {latest['version']} was registered, not promoted: {gate.get('decision')}")
print(f"==> champion model: {info['model']}")
print(f"    version {info['version']}: validation accuracy {m['val_accuracy']:.4f}, ROC AUC {m['val_auc']:.4f} "
      f"(logistic baseline AUC {m['baseline_logreg']['val_auc']:.4f})")
print(f"==> submission:     {reg.submission_path()}")
print(f"    all versions:   turkey models list")
PY
exit $status
