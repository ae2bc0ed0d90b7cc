#!/usr/bin/env bash
# make test-distributed: turkey_training runs on the CeleryExecutor, every Airflow component a process.
#
# Needs PostgreSQL and Redis (defaults 127.0.0.1:5432, user postgres with trust auth or PGPASSWORD;
# 127.0.0.1:6379). Creates its own database (turkey_dist_<random>) and claims an empty Redis db index
# (from 5 up); starts api-server, scheduler, dag-processor, triggerer, a Celery worker on the default
# queue and one on the gpu queue (concurrency 1, one task per child, like the compose gpu worker),
# all sharing one data root and one artifacts root (the "shared volumes"); triggers the DAG through the
# REST API and asserts where each task ran (scripts/distributed/check_run.py); then approves one run and
# rejects another through the HITL REST API, receiving the notifications on a loopback webhook. On exit,
# also on failure or Ctrl-C, it stops every process it started, flushes its Redis index and drops its database.
#
# Settings (environment): TURKEY_DIST_PG_HOST/PORT/USER, TURKEY_DIST_REDIS_HOST/PORT,
# TURKEY_DIST_REDIS_DB (first index to try; exact when set), TURKEY_DIST_CONF (run conf JSON),
# TURKEY_DIST_TRAIN_SIZE/TEST_SIZE (demo data), TURKEY_DIST_TIMEOUT (seconds for the run, default 480),
# TURKEY_DIST_KEEP=1 (keep the temp folder with logs even on success).
set -uo pipefail
{ # the whole script is one block, so bash reads all of it before running (safe to edit while it runs)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helpers="$repo/scripts/distributed"
py="$repo/.venv/bin/python"
[[ -x "$py" ]] || py="$(command -v python3)"
t0=$(date +%s)

pg_host="${TURKEY_DIST_PG_HOST:-127.0.0.1}"
pg_port="${TURKEY_DIST_PG_PORT:-5432}"
pg_user="${TURKEY_DIST_PG_USER:-postgres}"
redis_host="${TURKEY_DIST_REDIS_HOST:-127.0.0.1}"
redis_port="${TURKEY_DIST_REDIS_PORT:-6379}"
conf="${TURKEY_DIST_CONF:-{\"epochs\": 5, \"min_val_accuracy\": 0.5, \"min_records\": 50\}}"
run_timeout="${TURKEY_DIST_TIMEOUT:-480}"

work="$(mktemp -d "${TMPDIR:-/tmp}/turkey-dist.XXXXXX")"
logs="$work/logs"
mkdir -p "$logs"
suffix="$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z' | tail -c 7)$$"
db="turkey_dist_${suffix}"
token="turkey-dist-$$-$RANDOM$RANDOM"
redis_db=""
db_created=0
declare -A pids=()
status=1
cleaned=0
checker=""

say() { printf '[dist %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n "$s" && "$s" != Z* ]]; }

descendants() {  # every descendant PID of $1 (depth-first), read before signalling anything
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

stop_all() {
  ((${#pids[@]})) || return 0
  local name pid p all=()
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    all+=("$pid" $(descendants "$pid"))
  done
  say "stopping ${#pids[@]} components (${#all[@]} processes): SIGTERM"
  for name in "${!pids[@]}"; do kill -TERM -- "-${pids[$name]}" 2>/dev/null; done  # each started in its own group
  for p in "${all[@]}"; do kill -TERM "$p" 2>/dev/null; done                      # task runners use own groups
  local deadline=$(($(date +%s) + ${TURKEY_DIST_GRACE:-15})) left
  while :; do
    left=()
    for p in "${all[@]}"; do alive "$p" && left+=("$p"); done
    ((${#left[@]} == 0)) && break
    if (($(date +%s) >= deadline)); then
      say "still running after the grace period: ${left[*]}: SIGKILL"
      for name in "${!pids[@]}"; do kill -KILL -- "-${pids[$name]}" 2>/dev/null; done
      for p in "${left[@]}"; do kill -KILL "$p" 2>/dev/null; done
      break
    fi
    sleep 0.5
  done
  for name in "${!pids[@]}"; do wait "${pids[$name]}" 2>/dev/null; done
  pids=()
}

cleanup() {
  ((cleaned)) && return
  cleaned=1
  trap '' INT TERM
  [[ -n "$checker" ]] && kill -TERM "$checker" 2>/dev/null
  stop_all
  if [[ -n "$redis_db" ]]; then
    "$py" "$helpers/infra.py" redis-flush "$redis_db" "$token" && say "flushed Redis db $redis_db" \
      || say "WARNING: could not flush Redis db $redis_db"
  fi
  if ((db_created)); then
    "$py" "$helpers/infra.py" pg-drop "$db" && say "dropped database $db" || say "WARNING: could not drop database $db"
  fi
  if ((status == 0)) && [[ "${TURKEY_DIST_KEEP:-0}" != 1 ]]; then
    rm -rf "$work"
  else
    say "logs kept in $logs"
  fi
  say "total wall time $(($(date +%s) - t0))s"
  if ((status == 0)); then echo "distributed: 1 passed, 0 failed"; else echo "distributed: 0 passed, 1 failed"; fi
}

on_signal() { say "interrupted"; status=1; cleanup; exit 130; }
trap 'cleanup; exit $status' EXIT
trap on_signal INT TERM

dump_logs() {
  local f
  for f in "$logs"/*.log; do
    [[ -s "$f" ]] || continue
    echo "----- last lines of $(basename "$f")"
    grep -v '^\s*$' "$f" | tail -n "${1:-15}" | cut -c1-300
  done
  # the task logs of anything that did not succeed
  grep -rlE "Task failed|ERROR|Traceback" "$AIRFLOW_HOME/logs/dag_id=turkey_training" 2>/dev/null | head -3 | while read -r f; do
    echo "----- task log $f"
    grep -E "ERROR|Error|error|Traceback|raise" "$f" | tail -n 20 | cut -c1-400
  done
}

# ------------------------------------------------------------------ the environment every process shares
export AIRFLOW_HOME="$work/airflow_home"
export TURKEY_DATA_ROOT="$work/shared/data"
export TURKEY_ARTIFACTS_ROOT="$work/shared/artifacts"
mkdir -p "$AIRFLOW_HOME" "$TURKEY_DATA_ROOT/landing" "$TURKEY_ARTIFACTS_ROOT"
# shellcheck source=scripts/env.sh
source "$repo/scripts/env.sh"

say "work folder $work"
if ! "$py" - <<PY
import socket, sys
for host, port, what in (("$pg_host", $pg_port, "PostgreSQL"), ("$redis_host", $redis_port, "Redis")):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        sys.exit(f"{what} is not reachable at {host}:{port} ({exc}); make test-distributed needs both running")
PY
then exit 1; fi

"$py" "$helpers/infra.py" pg-create "$db" || exit 1
db_created=1
say "created database $db"
if [[ -n "${TURKEY_DIST_REDIS_DB:-}" ]]; then
  redis_db=$("$py" "$helpers/infra.py" redis-claim "$TURKEY_DIST_REDIS_DB" --exact "$token") || exit 1
else
  redis_db=$("$py" "$helpers/infra.py" redis-claim 5 "$token") || exit 1
fi
say "claimed Redis db $redis_db"

api_port=$("$py" "$helpers/infra.py" free-port)
password="dist-$RANDOM$RANDOM$RANDOM"
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$pg_user@$pg_host:$pg_port/$db"
export AIRFLOW__CELERY__BROKER_URL="redis://$redis_host:$redis_port/$redis_db"
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg2://$pg_user@$pg_host:$pg_port/$db"
export AIRFLOW__CELERY__WORKER_CONCURRENCY=2
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$api_port/execution/"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$api_port"
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$api_port"
export AIRFLOW__API__SECRET_KEY="$token-api"
export AIRFLOW__API_AUTH__JWT_SECRET="$token-jwt-$RANDOM$RANDOM"
export AIRFLOW__API_AUTH__JWT_ISSUER="turkey-dist"
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2
# No timetable/asset-triggered runs: with catchup=False, unpausing would first start a run for the latest
# weekly slot (default params) and, with max_active_runs=1, the test's run would queue behind it.
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
export AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=300
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$("$py" "$helpers/infra.py" free-port)
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$("$py" "$helpers/infra.py" free-port)
export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-2}" TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}"
# Notifications go to check_run.py's loopback webhook receiver (the turkey_webhook connection, every process).
webhook_port=$("$py" "$helpers/infra.py" free-port)
export AIRFLOW_CONN_TURKEY_WEBHOOK="{\"conn_type\": \"http\", \"host\": \"http://127.0.0.1:$webhook_port/turkey\"}"
printf '{"admin": "%s"}\n' "$password" >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

# ------------------------------------------------------------------ demo data on the shared data root
train_size="${TURKEY_DIST_TRAIN_SIZE:-400}"
test_size="${TURKEY_DIST_TEST_SIZE:-100}"
turkey demo-data --out "$TURKEY_DATA_ROOT/landing" --train-size "$train_size" --test-size "$test_size" \
  >"$logs/demo-data.log" 2>&1 || { cat "$logs/demo-data.log"; exit 1; }
say "demo data: $train_size train / $test_size test records in $TURKEY_DATA_ROOT/landing"

say "airflow db migrate ($AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
airflow db migrate >"$logs/db-migrate.log" 2>&1 || { tail -n 40 "$logs/db-migrate.log"; exit 1; }
say "migrated in $(($(date +%s) - t0))s since start"

# ------------------------------------------------------------------ the components, each in its own process group
start() {  # start NAME CMD...: background, own session (PID = process group id), log in $logs/NAME.log
  local name=$1
  shift
  setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
  pids[$name]=$!
}
gpu_host="turkey-gpu-worker"
default_host="turkey-default-worker"
mkdir -p "$work/tmp-default" "$work/tmp-gpu"
start api-server airflow api-server --host 127.0.0.1 --port "$api_port" --workers 1
start scheduler airflow scheduler
start dag-processor airflow dag-processor
start triggerer airflow triggerer --skip-serve-logs
# Each worker gets its own scratch TMPDIR: a task that handed a local temp path to the next task would
# show up in the XCom check. The hostname callable makes the task instances record the worker's name.
worker_env=(env "PYTHONPATH=$helpers:$PYTHONPATH" "AIRFLOW__CORE__HOSTNAME_CALLABLE=turkey_dist_hostname.worker_hostname")
start worker-default "${worker_env[@]}" TURKEY_WORKER_HOSTNAME="$default_host" TMPDIR="$work/tmp-default" \
  airflow celery worker --celery-hostname "$default_host" --queues default --concurrency 2 --skip-serve-logs
start worker-gpu "${worker_env[@]}" TURKEY_WORKER_HOSTNAME="$gpu_host" TMPDIR="$work/tmp-gpu" \
  AIRFLOW__CELERY__EXTRA_CELERY_CONFIG='{"worker_max_tasks_per_child": 1}' \
  airflow celery worker --celery-hostname "$gpu_host" --queues gpu --concurrency 1 --skip-serve-logs
say "started ${!pids[*]} (API on http://127.0.0.1:$api_port)"

watchdog() {  # fail fast when a component dies
  local name
  for name in "${!pids[@]}"; do
    alive "${pids[$name]}" || { say "component $name exited early"; return 1; }
  done
}

"$py" "$helpers/check_run.py" --api "http://127.0.0.1:$api_port" --password "$password" --conf "$conf" \
  --gpu-host "$gpu_host" --default-host "$default_host" --timeout "$run_timeout" \
  --summary "$work/summary.json" --webhook-port "$webhook_port" &
checker=$!
while alive "$checker"; do
  if ! watchdog; then kill -TERM "$checker" 2>/dev/null; break; fi
  sleep 2
done
wait "$checker"
rc=$?
watchdog || rc=1
"$py" "$helpers/infra.py" celery-check "celery@$gpu_host" "celery@$default_host" || rc=1
if ((rc == 0)); then
  status=0
else
  say "FAILED (check_run exit $rc)"
  dump_logs 15
fi
exit "$status"
}
