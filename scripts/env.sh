# Source me: the embedded default configuration (SQLite metadata DB and local folders, all in the repo).
# Every variable may be preset by the caller to point elsewhere.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TURKEY_REPO="$_repo"
export PATH="$_repo/.venv/bin:$PATH"
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
# Bytecode caching makes each TensorFlow import ~3x faster (this environment disables it by default).
unset PYTHONDONTWRITEBYTECODE
unset _repo
