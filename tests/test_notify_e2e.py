"""Notifications and human decisions from actual DAG runs (`airflow dags test`), received by a real SMTP
server (aiosmtpd) and a real HTTP webhook receiver, both on loopback, configured as Airflow connections
through AIRFLOW_CONN_* variables. Also: a failing ``validate`` log fits on a screen and ends on its reason."""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import quote

import pytest

from ml.demo import generate
from ml.registry import Registry
from tests.airflow_harness import Env, enable_api_login, respond_hitl, start_run
from tests.receivers import SmtpSink, WebhookSink, airflow_connections

pytestmark = pytest.mark.slow

BASE_URL = "http://airflow.turkey.test:8080"
SMALL = {"min_records": 50, "epochs": 3, "min_val_accuracy": 0.0}
SCREEN = 50  # lines


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with SmtpSink() as smtp, WebhookSink() as hook:
        env = Env(tmp_path_factory.mktemp("notify"))
        env.env.update(airflow_connections(smtp, hook, to="ml-ops@example.com"))
        env.env["AIRFLOW__API__BASE_URL"] = BASE_URL
        user, password = enable_api_login(env, "reviewer")
        generate(env.data / "landing", train_size=200, test_size=40, seed=11)
        yield env, smtp, hook, (user, password)


def _mail(smtp: SmtpSink, subject_part: str):
    found = [(e, m) for e, m, _ in smtp.messages if subject_part in m["Subject"]]
    assert found, f"no e-mail with {subject_part!r}: {[m['Subject'] for _, m, _ in smtp.messages]}"
    return found[-1]


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


def test_failed_run_notifies_with_task_reason_and_link_and_a_short_log(world):
    env, smtp, hook, _ = world
    landing = env.data / "landing"
    good = env.root / "good-train.json"
    shutil.copy(landing / "train.json", good)
    records = json.loads(good.read_text())
    records[5]["audio_embedding"][0][3] = 300
    (landing / "train.json").write_text(json.dumps(records))
    try:
        res = env.trigger(SMALL)
    finally:
        shutil.copy(good, landing / "train.json")
    assert res["state"] == "failed" and res["tasks"]["validate"] == "failed"
    run_id = res["run_id"]

    body = hook.wait_for("run_failed", 10)
    assert body["dag_id"] == "turkey_training" and body["run_id"] == run_id and body["task_id"] == "validate"
    assert "embedding.value_range" in body["reason"] and "#5" in body["reason"] and "\n" not in body["reason"]
    assert body["link"] == _run_link(run_id)
    assert body["text"].splitlines()[0] == "turkey_training: run failed at task validate"

    envelope, mail = _mail(smtp, "run failed at task validate")
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
    before = len(hook.posts)
    proc = start_run(env, {**SMALL, "require_approval": True})
    try:
        waiting = hook.wait_for("approval", 420, alive=lambda: proc.poll() is None)
        run_id = waiting["run_id"]
        version = waiting["details"]["version"]
        assert waiting["task_id"] == "approve_promotion" and waiting["dag_id"] == "turkey_training"
        assert waiting["link"] == (f"{BASE_URL}/dags/turkey_training/runs/{run_id}"
                                   "/tasks/approve_promotion/required_actions?map_index=-1")
        assert waiting["details"]["challenger"]["val_auc"] is not None
        _, mail = _mail(smtp, f"model {version} waits for your approval")
        assert "required_actions" in SmtpSink.body(mail)
        assert reg.champion_version() is None  # nothing promoted while waiting

        answer = respond_hitl(env, run_id, "Approve", "good enough for the demo", user, password)
        assert answer["chosen_options"] == ["Approve"]
        proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
    res = env.result()
    assert res["state"] == "success", res["tasks"]
    assert res["tasks"]["approve_promotion"] == "success" and res["tasks"]["promote"] == "success"

    promoted = hook.wait_for("promoted", 10)
    assert promoted["details"]["version"] == version and promoted["details"]["approved_by"] == user
    assert promoted["link"] == _run_link(run_id)
    _mail(smtp, f"{version} is the new champion")
    assert [b["event"] for _, _, b, _ in hook.posts[before:]] == ["approval", "promoted"]

    champion = reg.champion()
    assert champion["version"] == version
    approval = champion["approval"]
    assert approval["decision"] == "approved" and approval["by"] == user
    assert approval["comment"] == "good enough for the demo" and approval["at"]
    entry = [e for e in reg.audit() if e["action"] == "promote"][-1]
    assert entry["version"] == version and entry["approval"] == approval
    row = [r for r in reg.list() if r["version"] == version][0]
    assert row["decision"]["by"] == user and row["gate"] == "promote"
    log = (env.root / "dags-test-0.log").read_text()
    assert f"decision: approved by {user}" in log and "good enough for the demo" in log
    train = _task_log_lines(log, "train")
    assert not [x for x in train if "[error" in x], "\n".join(x for x in train if "[error" in x)
    assert [x for x in train if "tensorflow start-up" in x and "[info" in x]  # TF's chatter, at INFO


def test_rejected_version_is_audited_and_not_promoted(world):
    env, smtp, hook, (user, password) = world
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    proc = start_run(env, {**SMALL, "require_approval": True, "force_promote": True, "seed": 4})
    started = time.monotonic()
    try:
        waiting = None
        while waiting is None and time.monotonic() - started < 420 and proc.poll() is None:
            got = [b for b in hook.events("approval") if b["details"]["version"] != champion]
            waiting = got[-1] if got else None
            time.sleep(0.5)
        assert waiting, "no approval request for the second run"
        respond_hitl(env, waiting["run_id"], "Reject", None, user, password)
        proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
    res = env.result()
    version = waiting["details"]["version"]
    assert res["state"] == "success", res["tasks"]
    # not a green success: the approval task ends skipped, and promote with it
    assert res["tasks"]["approve_promotion"] == "skipped" and res["tasks"]["promote"] == "skipped"
    assert reg.champion_version() == champion
    rejected = [e for e in reg.audit() if e["action"] == "rejected"]
    assert [e["version"] for e in rejected] == [version]
    assert rejected[0]["approval"]["by"] == user and rejected[0]["run_id"] == waiting["run_id"]
    row = [r for r in reg.list() if r["version"] == version][0]
    assert row["gate"] == "rejected" and row["decision"]["decision"] == "rejected"
    log = sorted(env.root.glob("dags-test-*.log"))[-1].read_text()
    assert f"decision: rejected by {user}" in log and f"promotion of {version} skipped" in log
