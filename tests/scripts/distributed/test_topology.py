"""The distributed deployment's set-up without starting it: loopback only, log servers off, our database only."""

from __future__ import annotations

import pytest

from scripts.distributed import infra
from scripts.distributed.topology import CeleryTopology


@pytest.fixture
def topo(tmp_path, monkeypatch):
    """A deployment that was never started (no database, no Redis index, no process)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    t = CeleryTopology(base_env={"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere"})
    t.airflow_home.mkdir(parents=True)
    t.redis_db = 9
    t.env = t._environment()
    yield t
    t.redis_db = None
    t.stop()


def test_every_listener_is_on_loopback_and_log_servers_are_off(topo):
    comps = topo._components()
    assert topo.env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert topo.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://127.0.0.1:")
    api = comps["api-server"][0]
    assert api[api.index("--host") + 1] == "127.0.0.1"
    for name in ("triggerer", "worker-default", "worker-gpu"):  # their log servers would bind all interfaces
        assert "--skip-serve-logs" in comps[name][0], name
    assert topo.env["AIRFLOW__CELERY__BROKER_URL"].endswith("/9")
    assert topo.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/" + topo.db)
    assert topo.db.startswith(infra.PREFIX)
    gpu_env = comps["worker-gpu"][1]
    assert '"worker_max_tasks_per_child": 1' in gpu_env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]
    assert gpu_env["TMPDIR"] != comps["worker-default"][1]["TMPDIR"]


def test_stop_removes_the_work_folder_unless_kept(topo, tmp_path):
    topo.stop(keep_work=True)
    assert topo.work.is_dir()
    topo.stop()
    assert not topo.work.exists()


@pytest.mark.parametrize("name", ["postgres", "airflow", "turkey_dist_x; DROP TABLE y"])
def test_never_drops_a_database_that_is_not_ours(name):
    with pytest.raises(infra.InfraError, match="refusing database name"):
        infra.pg_drop(name)  # refused before connecting: no server needed
