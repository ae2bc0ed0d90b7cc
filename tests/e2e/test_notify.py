"""Notifications and human decisions from actual DAG runs (`airflow dags test`), received by a real SMTP
server (aiosmtpd) and a real HTTP webhook receiver, both on loopback, configured as Airflow connections
through AIRFLOW_CONN_* variables. Also: a failing ``validate`` quarantines the file, keeps the champion, and
its log fits on a screen and ends on its reason."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from ml.registry import Registry
from ml.registry.views import version_rows
from tests.e2e.conftest import FAST
from tests.support.airflow_harness import enable_api_login, respond_hitl, start_run
from tests.support.receivers import SmtpSink, WebhookSink, airflow_connections

pytestmark = pytest.mark.slow

BASE_URL = "http://airflow.turkey.test:8080"
SMALL = {**FAST, "epochs": 1, "min_val_accuracy": 0.0}
SCREEN = 50  # lines


@pytest.fixture(scope="module")
def receivers():
    with SmtpSink() as smtp, WebhookSink() as hook:
        yield smtp, hook


@pytest.fixture
def world(env, receivers):
    """A private copy of the champion environment whose notifications go to the loopback receivers, with an
    API login for answering approvals."""
    smtp, hook = receivers
    env.env.update(airflow_connections(smtp, hook, to="ml-ops@example.com"))
    env.env["AIRFLOW__API__BASE_URL"] = BASE_URL
    user, password = enable_api_login(env, "reviewer")
    return env, smtp, hook, (user, password)


def _wait(hook: WebhookSink, event: str, after: int, proc, timeout: float = 420) -> dict:
    """The first ``event`` webhook posted after the first ``after`` posts, while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [b for _, _, b, _ in hook.posts[after:] if isinstance(b, dict) and b.get("event") == event]
        if got:
            return got[0]
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"no {event!r} webhook; got {[b for _, _, b, _ in hook.posts[after:]]}")


def _mail(smtp: SmtpSink, subject_part: str, run_id: str):
    """The last e-mail whose subject holds ``subject_part`` and whose body names the run."""
    found = [(e, m) for e, m, _ in smtp.messages if subject_part in m["Subject"] and run_id in SmtpSink.body(m)]
    assert found, f"no e-mail with {subject_part!r}: {[m['Subject'] for _, m, _ in smtp.messages]}"
    return found[-1]


def _answer(world, seed: int, option: str, comment: str | None = None, check_waiting=lambda waiting: None):
    """A forced run (the gate has no say) that waits for approval, answered with ``option`` through the REST
    API after ``check_waiting(approval webhook)``. Returns the approval webhook, the run's result and how
    many webhooks came before the run."""
    env, _, hook, (user, password) = world
    before = len(hook.posts)
    proc = start_run(env, {**SMALL, "require_approval": True, "force_promote": True, "seed": seed})
    try:
        waiting = _wait(hook, "approval", before, proc)
        check_waiting(waiting)
        respond_hitl(env, waiting["run_id"], option, comment, user, password)
        proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
    return waiting, env.result(), before


def _run_link(run_id: str) -> str:
    return f"{BASE_URL}/dags/turkey_training/runs/{quote(run_id, safe='')}"


def _task_log_lines(log: str, task_id: str) -> list[str]:
    """The lines the task itself logged, from `dags test` output (without the in-process API's and the
    test driver's own lines, which a real task log does not have)."""
    start = log.index(f"[DAG TEST] starting task_id={task_id} ")
    end = log.rindex("\n", 0, log.index(f"[DAG TEST] end task task_id={task_id} ", start))
    lines = log[start:end].splitlines()[1:]
    noise = ("[DAG TEST]", "[airflow.api_fastapi", "[py.warnings]", "::endgroup::")
    return [x for x in lines if x.strip() and not any(n in x for n in noise)]


def test_bad_data_fails_validate_quarantines_the_file_and_notifies_with_a_short_log(world):
    env, smtp, hook, _ = world
    reg = Registry(env.artifacts)
    state = (reg.champion(), reg.versions())
    landing = env.data / "landing"
    records = json.loads((landing / "train.json").read_text())
    records[5]["audio_embedding"][0][3] = 300
    (landing / "train.json").write_text(json.dumps(records))
    res = env.trigger(SMALL)
    assert res["state"] == "failed" and res["tasks"]["validate"] == "failed"
    assert all(s in ("upstream_failed", "None", "skipped") for t, s in res["tasks"].items() if t != "validate")
    assert not (landing / "train.json").exists() and list((env.data / "rejected").rglob("*train.json"))
    assert (reg.champion(), reg.versions()) == state
    run_id = res["run_id"]

    body = [b for b in hook.events("run_failed") if b["run_id"] == run_id][-1]
    assert body["dag_id"] == "turkey_training" and body["run_id"] == run_id and body["task_id"] == "validate"
    assert "embedding.value_range" in body["reason"] and "#5" in body["reason"] and "\n" not in body["reason"]
    assert body["link"] == _run_link(run_id)
    assert body["text"].splitlines()[0] == "turkey_training: run failed at task validate"

    envelope, mail = _mail(smtp, "run failed at task validate", run_id)
    assert envelope["to"] == ["ml-ops@example.com"] and mail["From"] == "turkey-pipeline@example.com"
    html = SmtpSink.body(mail)
    for part in ("DAG: turkey_training", f"Run: {run_id}", "Task: validate", "embedding.value_range",
                 _run_link(run_id)):
        assert part in html

    lines = _task_log_lines(res["log"], "validate")
    assert len(lines) <= SCREEN, "\n".join(lines)
    assert not [x for x in lines if "closure" in x]  # no Great Expectations INFO flood
    tail = "\n".join(lines[-6:])
    assert "validate failed:" in lines[-1] and "embedding.value_range" in lines[-1], tail  # the reason comes last


def test_approval_waits_notifies_and_the_approver_is_on_record(world):
    env, smtp, hook, (user, password) = world
    reg = Registry(env.artifacts)
    champion = reg.champion_version()

    def while_waiting(waiting):
        run_id, version = waiting["run_id"], waiting["details"]["version"]
        assert waiting["task_id"] == "approve_promotion" and waiting["dag_id"] == "turkey_training"
        assert waiting["link"] == (f"{BASE_URL}/dags/turkey_training/runs/{run_id}"
                                   "/tasks/approve_promotion/required_actions?map_index=-1")
        assert waiting["details"]["champion_version"] == champion and waiting["details"]["challenger_val_auc"]
        _, mail = _mail(smtp, f"model {version} waits for your approval", run_id)
        assert "required_actions" in SmtpSink.body(mail)
        assert reg.champion_version() == champion  # nothing promoted while waiting

    waiting, res, before = _answer(world, 4, "Approve", "good enough for the demo", while_waiting)
    run_id, version = waiting["run_id"], waiting["details"]["version"]
    assert res["state"] == "success", res["tasks"]
    assert res["tasks"]["approve_promotion"] == "success" and res["tasks"]["promote"] == "success"
    promoted = [b for _, _, b, _ in hook.posts[before:] if b.get("event") == "promoted"][0]
    assert promoted["details"]["version"] == version and promoted["details"]["approved_by"] == user
    assert promoted["link"] == _run_link(run_id)
    _mail(smtp, f"{version} is the new champion", run_id)
    assert [b["event"] for _, _, b, _ in hook.posts[before:]] == ["approval", "promoted"]

    approval = reg.champion()["approval"]
    assert reg.champion_version() == version
    assert approval["decision"] == "approved" and approval["by"] == user
    assert approval["comment"] == "good enough for the demo" and approval["at"]
    entry = [e for e in reg.audit() if e["action"] == "promote"][-1]
    assert entry["version"] == version and entry["approval"] == approval
    row = [r for r in version_rows(reg) if r["version"] == version][0]
    assert row["decision"]["by"] == user and row["gate"] == "promote"
    log = sorted(env.root.glob("dags-test-*.log"))[-1].read_text()
    assert f"decision: approved by {user}" in log and "good enough for the demo" in log
    train = _task_log_lines(log, "train")
    assert not [x for x in train if "[error" in x], "\n".join(x for x in train if "[error" in x)  # nothing at ERROR


def test_rejected_version_is_audited_and_not_promoted(world):
    env, _, hook, (user, _) = world
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    waiting, res, before = _answer(world, 5, "Reject")
    version = waiting["details"]["version"]
    assert res["state"] == "success", res["tasks"]
    # not a green success: the approval task ends skipped, and promote with it
    assert res["tasks"]["approve_promotion"] == "skipped" and res["tasks"]["promote"] == "skipped"
    assert reg.champion_version() == champion
    rejected = [e for e in reg.audit() if e["action"] == "rejected"]
    assert [e["version"] for e in rejected] == [version]
    assert rejected[0]["approval"]["by"] == user and rejected[0]["run_id"] == waiting["run_id"]
    row = [r for r in version_rows(reg) if r["version"] == version][0]
    assert row["gate"] == "rejected" and row["decision"]["decision"] == "rejected"
    log = sorted(env.root.glob("dags-test-*.log"))[-1].read_text()
    assert f"decision: rejected by {user}" in log and f"promotion of {version} skipped" in log
    assert [b["event"] for _, _, b, _ in hook.posts[before:]] == ["approval"]  # nothing announced
