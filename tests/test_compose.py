"""Static checks of the docker compose deployment (no docker needed): docker-compose.yaml, .env.example,
Dockerfile. The running stack is exercised by ``make test-distributed`` (same topology, as processes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

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
    return re.sub(
        r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*)|:?\?[^}]*)?\}",
        lambda m: m.group(2) if m.group(2) is not None else m.group(1),
        text,
    )


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
    assert any(
        d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and d.get("count") == 1 for d in devices
    ), devices
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
    assert {k: v for k, v in gpu["build"].items() if k != "target"} == {
        k: v for k, v in sched["build"].items() if k != "target"
    }
    # every setting of the common environment, unchanged (the gpu worker only adds its own)
    common_env = common["environment"]
    for svc in (sched, worker, gpu):
        env = _env(svc)
        assert {k: env.get(k) for k in common_env if k != "AIRFLOW__CELERY__WORKER_CONCURRENCY"} == {
            k: v for k, v in common_env.items() if k != "AIRFLOW__CELERY__WORKER_CONCURRENCY"
        }
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
    roots = {
        (_env(services[n])["TURKEY_DATA_ROOT"], _env(services[n])["TURKEY_ARTIFACTS_ROOT"]) for n in AIRFLOW_SERVICES
    }
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


def test_scheduler_idle_sleep_is_the_value_the_sweep_chose(compose):
    """docker-compose.yaml runs the scheduler as the measured deployment does (bench/scheduler_sweep.py)."""
    from scripts.distributed.topology import SCHEDULER_IDLE_SLEEP_S

    env = compose["x-airflow-common"]["environment"]
    assert str(env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"]) == SCHEDULER_IDLE_SLEEP_S


def test_workers_notice_finished_tasks_as_soon_as_the_measured_deployment(compose):
    from scripts.distributed.topology import MIN_HEARTBEAT_INTERVAL_S

    env = compose["x-airflow-common"]["environment"]
    assert str(env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"]) == MIN_HEARTBEAT_INTERVAL_S


def test_workers_warm_their_imports_as_the_measured_deployment_does(compose):
    from scripts.distributed.topology import CELERY_CONFIG_OPTIONS

    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_CONFIG_OPTIONS


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


# ---------------------------------------------------------------- secure defaults (issue 10)
def _env_file(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def _service_env_from(dotenv: dict, service: dict) -> dict:
    """The service's environment as compose would set it from ``dotenv`` (${VAR:-default} / ${VAR:?err})."""

    def sub(value):
        return re.sub(
            r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*)|:?\?[^}]*)?\}",
            lambda m: dotenv.get(m.group(1)) or (m.group(2) or ""),
            str(value),
        )

    return {k: sub(v) for k, v in _env(service).items()}


def _script(service: dict, stop_at: str, then: str = "exit 0") -> str:
    """The service's bash script (compose's $$ unescaped) cut after ``stop_at``, ending with ``then``."""
    text = [c for c in service["command"] if "\n" in c][0].replace("$$", "$")
    return text.split(stop_at, 1)[0] + stop_at + "\n" + then + "\n"


def _run_script(script: str, env: dict):
    import subprocess
    import sys

    env = {**env, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)


def _generated_dotenv() -> dict:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compose_env.py")], capture_output=True, text=True, check=True
    ).stdout
    return _env_file(out)


def test_ports_are_published_on_loopback_unless_told_otherwise(services):
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert set(published) >= {"airflow-apiserver", "flower"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("${TURKEY_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
            assert _interpolate(str(port)).startswith("127.0.0.1:"), (name, port)
    assert _env_file((REPO / ".env.example").read_text())["TURKEY_BIND_ADDRESS"] == "127.0.0.1"


@pytest.mark.parametrize(
    "placeholder", ["AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "POSTGRES_PASSWORD"]
)
def test_airflow_init_refuses_each_placeholder_secret(services, placeholder):
    good = _generated_dotenv()
    dotenv = {**good, placeholder: _env_file((REPO / ".env.example").read_text())[placeholder]}
    assert "change-me" in dotenv[placeholder]
    init = services["airflow-init"]
    r = _run_script(_script(init, "if (( bad )); then exit 1; fi"), _service_env_from(dotenv, init))
    assert r.returncode == 1 and "change-me placeholder" in r.stderr, r.stderr


def test_airflow_init_refuses_an_empty_or_invalid_fernet_key_and_accepts_generated_secrets(services):
    init = services["airflow-init"]
    script = _script(init, "if (( bad )); then exit 1; fi")
    good = _generated_dotenv()
    assert "change-me" not in "".join(good.values())
    r = _run_script(script, _service_env_from(good, init))
    assert r.returncode == 0, r.stderr
    example = _env_file((REPO / ".env.example").read_text())
    assert example["AIRFLOW_FERNET_KEY"] == ""  # the example's default is refused:
    r = _run_script(script, _service_env_from({**good, "AIRFLOW_FERNET_KEY": ""}, init))
    assert r.returncode == 1 and "AIRFLOW_FERNET_KEY is empty" in r.stderr
    r = _run_script(script, _service_env_from({**good, "AIRFLOW_FERNET_KEY": "not-a-key"}, init))
    assert r.returncode == 1 and "not a valid Fernet key" in r.stderr
    r = _run_script(script, _service_env_from({**good, "AIRFLOW_JWT_SECRET": "short"}, init))
    assert r.returncode == 1 and "at least 32 characters" in r.stderr


def test_flower_requires_a_login(services):
    flower = services["flower"]
    script = _script(flower, "fi", then="exit 0")  # stop before exec-ing flower itself
    assert "exec airflow celery flower" in flower["command"][-1]
    example = _env_file((REPO / ".env.example").read_text())
    for value in ("", example["FLOWER_BASIC_AUTH"], "nopassword"):
        r = _run_script(script, {"AIRFLOW__CELERY__FLOWER_BASIC_AUTH": value})
        assert r.returncode == 1 and "FLOWER_BASIC_AUTH" in r.stderr, value
    r = _run_script(script, {"AIRFLOW__CELERY__FLOWER_BASIC_AUTH": _generated_dotenv()["FLOWER_BASIC_AUTH"]})
    assert r.returncode == 0, r.stderr
    assert _env(flower)["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    assert "--user" in " ".join(flower["healthcheck"]["test"])
    assert flower["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_compose_env_output_is_private_from_the_start(tmp_path):
    import stat
    import subprocess
    import sys

    env_file = tmp_path / ".env"
    env_file.write_text("OLD=1\n")
    env_file.chmod(0o644)  # an earlier .env made with `> .env` under the usual umask
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compose_env.py"), "--output", str(env_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = _env_file(env_file.read_text())
    assert values["AIRFLOW_FERNET_KEY"] and not [k for k, v in values.items() if "change-me" in v]
