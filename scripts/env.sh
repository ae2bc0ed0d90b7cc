# Source me: the embedded default configuration (SQLite metadata DB and local folders, all in the repo).
# Every variable may be preset by the caller to point elsewhere.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TURKEY_REPO="$_repo"
# The environment: .venv, or the one `make VENV=...` names (e.g. .venv-mlflow, with the mlflow and lineage extras).
export PATH="$_repo/${TURKEY_VENV:-.venv}/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$_repo/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$_repo/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$_repo/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="${AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT:-120}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export TURKEY_DATA_ROOT="${TURKEY_DATA_ROOT:-$_repo/data}"
export TURKEY_ARTIFACTS_ROOT="${TURKEY_ARTIFACTS_ROOT:-$_repo/artifacts}"
export GX_ANALYTICS_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# OpenLineage, when the provider is installed (the lineage extra: make install-mlflow; inert otherwise): our
# tasks' datasets through our extractor, events appended to a file unless a transport or URL is configured.
export AIRFLOW__OPENLINEAGE__EXTRACTORS="${AIRFLOW__OPENLINEAGE__EXTRACTORS:-turkey_airflow.lineage_extractor.TaskLineageExtractor}"
export AIRFLOW__OPENLINEAGE__NAMESPACE="${AIRFLOW__OPENLINEAGE__NAMESPACE:-turkey}"
if [ -z "${AIRFLOW__OPENLINEAGE__TRANSPORT:-}${OPENLINEAGE_URL:-}${AIRFLOW__OPENLINEAGE__CONFIG_PATH:-}" ]; then
  export AIRFLOW__OPENLINEAGE__TRANSPORT="{\"type\": \"file\", \"log_file_path\": \"$AIRFLOW_HOME/openlineage-events.jsonl\", \"append\": true}"
fi
# Bytecode caching makes each TensorFlow import ~3x faster (this environment disables it by default).
unset PYTHONDONTWRITEBYTECODE
unset _repo
