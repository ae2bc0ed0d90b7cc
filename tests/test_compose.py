"""Static checks of the docker compose deployment (no docker needed): docker-compose.yaml, .env.example,
Dockerfile. The running stack is exercised by ``make test-distributed`` (same topology, as processes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yaml"
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
]
LONG_RUNNING = [s for s in AIRFLOW_SERVICES if s != "airflow-init"] + ["postgres", "redis"]
# ${VAR}, ${VAR:-default}, ${VAR:?error}; not $${VAR} (escaped: expanded by the container's shell).
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _argv(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _queues(argv: list[str]) -> list[str]:
    for i, arg in enumerate(argv):
        if arg in ("-q", "--queues"):
            return argv[i + 1].split(",")
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1].split(",")
    return ["default"]  # airflow celery worker's default: [operators] default_queue


def _env(service: dict) -> dict:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _interpolate(text: str) -> str:
    """Compose-style ${VAR:-default} -> default, ${VAR} / ${VAR:?err} -> VAR (values do not matter here)."""
    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*)|:?\?[^}]*)?\}",
                  lambda m: m.group(2) if m.group(2) is not None else m.group(1), text)


def _mount_targets(service: dict) -> set[str]:
    out = set()
    for v in service.get("volumes", []):
        out.add(v["target"] if isinstance(v, dict) else _interpolate(v).split(":")[1])
    return out


def test_compose_parses_and_has_the_official_topology(services):
    for name in ["postgres", "redis", *AIRFLOW_SERVICES]:
        assert name in services, f"service {name} is missing"
    assert "CeleryExecutor" in _env(services["airflow-scheduler"]).values()


def test_gpu_worker_consumes_only_the_gpu_queue_with_one_nvidia_gpu(services):
    gpu = services["airflow-worker-gpu"]
    argv = _argv(gpu)
    assert argv[:2] == ["celery", "worker"]
    assert _queues(argv) == ["gpu"]
    concurrency = argv[argv.index("--concurrency") + 1] if "--concurrency" in argv else argv[argv.index("-c") + 1]
    assert concurrency == "1"
    env = _env(gpu)
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"
    assert '"worker_max_tasks_per_child": 1' in env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and d.get("count") == 1
               for d in devices), devices
    assert gpu["build"]["target"] == "gpu"


def test_default_worker_consumes_the_default_queue(services):
    argv = _argv(services["airflow-worker"])
    assert argv[:2] == ["celery", "worker"]
    assert _queues(argv) == ["default"]
    assert "deploy" not in services["airflow-worker"]


def test_workers_and_scheduler_share_image_build_and_environment(compose, services):
    sched, worker, gpu = (services[s] for s in ("airflow-scheduler", "airflow-worker", "airflow-worker-gpu"))
    common = compose["x-airflow-common"]
    # same image and build as the scheduler; the gpu worker: same Dockerfile and context, gpu target
    assert worker["image"] == sched["image"] == common["image"]
    assert worker["build"] == sched["build"] == common["build"]
    assert {k: v for k, v in gpu["build"].items() if k != "target"} == \
           {k: v for k, v in sched["build"].items() if k != "target"}
    # every setting of the common environment, unchanged (the gpu worker only adds its own)
    common_env = common["environment"]
    for svc in (sched, worker, gpu):
        env = _env(svc)
        assert {k: env.get(k) for k in common_env if k != "AIRFLOW__CELERY__WORKER_CONCURRENCY"} == \
               {k: v for k, v in common_env.items() if k != "AIRFLOW__CELERY__WORKER_CONCURRENCY"}
    # ...through the anchor, not a copy that could drift
    text = COMPOSE.read_text()
    for name in ("airflow-scheduler", "airflow-worker", "airflow-worker-gpu"):
        block = text.split(f"\n  {name}:\n", 1)[1].split("\n  airflow-", 1)[0]
        assert "<<: *airflow-common" in block, name


def test_shared_volumes_are_mounted_where_the_pipeline_looks(services):
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = _env(svc)
        data, artifacts = env["TURKEY_DATA_ROOT"], env["TURKEY_ARTIFACTS_ROOT"]
        targets = _mount_targets(svc)
        assert data in targets and artifacts in targets, (name, targets)
    # one data root and one artifacts root for every service
    roots = {(_env(services[n])["TURKEY_DATA_ROOT"], _env(services[n])["TURKEY_ARTIFACTS_ROOT"]) for n in AIRFLOW_SERVICES}
    assert len(roots) == 1
    # the landing folder is inside the mounted data root (ml.config.landing_dir)
    assert roots == {("/opt/turkey/data", "/opt/turkey/artifacts")}


def test_healthchecks(services):
    for name in LONG_RUNNING:
        hc = services[name].get("healthcheck")
        assert hc and hc.get("test"), f"{name} has no healthcheck"
    gpu_hc = " ".join(services["airflow-worker-gpu"]["healthcheck"]["test"])
    assert "inspect ping" in gpu_hc
    for name in LONG_RUNNING:
        if name.startswith("airflow-"):
            dep = services[name]["depends_on"]
            assert dep["airflow-init"]["condition"] == "service_completed_successfully", name
            assert dep["postgres"]["condition"] == dep["redis"]["condition"] == "service_healthy", name


def test_execution_api_and_jwt_secret_are_shared(compose):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    # without one shared secret the workers' task tokens fail verification (apache/airflow#59373)
    assert "AIRFLOW_JWT_SECRET" in env["AIRFLOW__API_AUTH__JWT_SECRET"]
    # SQLAlchemy 2.x maps plain postgresql:// to psycopg 3, which the image does not ship
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")


def test_env_example_defines_every_variable_the_compose_file_uses():
    used = set(VAR_RE.findall(COMPOSE.read_text()))
    defined = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            defined[key.strip()] = value
    assert used, "no variables found: regex broken?"
    missing = sorted(used - set(defined))
    assert not missing, f".env.example lacks {missing}"
    # placeholders only, no real secrets
    for key in ("POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD"):
        assert defined[key].startswith("change-me"), key


def test_dockerfile_has_cpu_and_gpu_targets_on_the_official_image():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, flags=re.M | re.I)
    names = [s[1] for s in stages]
    assert {"cpu", "gpu"} <= set(names)
    assert names[-1] == "cpu", "the default (last) stage should be the CPU image"
    assert stages[0][0].startswith("apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}")
    assert re.search(r"^ARG AIRFLOW_VERSION=3\.3\.2$", text, flags=re.M)
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", text, flags=re.M)
    gpu = text.split("AS gpu", 1)[1].split("\nFROM ", 1)[0]
    assert "tensorflow[and-cuda]==${TENSORFLOW_VERSION}" in gpu and "tensorflow-cpu" in gpu
    assert re.search(r"^ARG TENSORFLOW_VERSION=2\.21\.0$", text, flags=re.M)
    assert "requirements.lock" in text
