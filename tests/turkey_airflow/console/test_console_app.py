"""API tests of every console endpoint: auth (401/403), happy paths, and each bad input.

The app is the plugin's real FastAPI app; requests carry real JWTs minted and verified by Airflow's simple
auth manager (roles: admin may edit DAGs, viewer may only read, a user without a role may do nothing).
Two things are replaced, both outside the console's logic: the revoked-token lookup (it needs Airflow's
metadata DB) and the asset-event writer, which records the events it is asked to emit instead (the
browser test, ``make test-ui``, checks real asset events on a running Airflow).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ml.registry.doctor import doctor
from ml.registry.views import describe

pytest.importorskip("airflow.api_fastapi")

VERSIONS = ("v20261101T030000-aaaaaaaa", "v20261108T030000-bbbbbbbb", "v20261115T030000-cccccccc")


def _candidate(root: Path, i: int) -> Path:
    """Version ``i``'s files: metrics rising with ``i``, a PNG header as curves, a one-row submission."""
    from tests.support.candidates import make_candidate

    metrics = {"val_accuracy": 0.9 + i / 100, "val_auc": 0.95 + i / 100}
    return make_candidate(
        root,
        f"c{i}",
        metrics={**metrics, "baseline_logreg": {"val_auc": 0.91, "val_accuracy": 0.86}},
        files={
            "history.json": "{}",
            "curves.png": b"\x89PNG\r\n\x1a\n" + bytes([i]) * 32,
            "submission.csv": f"vid_id,is_turkey\na,0.{i}\n",
        },
    )


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """Three versions (the first two promoted in turn), a validation report for the first run."""
    from ml.registry import Registry

    art = tmp_path / "artifacts"
    art.mkdir()
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(art))
    monkeypatch.delenv("TURKEY_REGISTRY_URL", raising=False)
    reg = Registry()
    for i, v in enumerate(VERSIONS):
        run_id = f"manual__2026-11-{i + 1:02d}T03:00:00+00:00"
        cand = _candidate(tmp_path, i)
        reg.register(
            v,
            cand,
            {
                "dag_id": "turkey_training",
                "run_id": run_id,
                "metrics": json.loads((cand / "metrics.json").read_text()),
                "gate": {
                    "decision": "promote" if i < 2 else "keep_champion",
                    "reason": f"reason {i}",
                    "promote": i < 2,
                },
                "params": {"epochs": 3, "require_approval": False},
                "inputs": {"train_sha256": "ab" * 32},
                "git_commit": "deadbeef",
                "packages": {"keras": "3"},
                "device": "cpu",
            },
        )
    reg.promote(VERSIONS[0], reason="no champion yet", run_id="r0")
    reg.promote(VERSIONS[1], reason="better", run_id="r1")
    vdir = art / "runs" / "manual__2026-11-01T03_00_00_00_00" / "validation" / "train"
    (vdir / "data-docs-train").mkdir(parents=True)
    (vdir / "data-docs-train" / "index.html").write_text("<html>data docs</html>")
    (vdir / "validation-train.json").write_text(
        json.dumps(
            {
                "split": "train",
                "ok": True,
                "n_records": 400,
                "file": "landing/train.json",
                "failures": [],
                "report_html": str(vdir / "data-docs-train" / "index.html"),
            }
        )
    )
    return reg


@pytest.fixture()
def events(monkeypatch):
    from turkey_airflow.console import console_app

    emitted = []
    monkeypatch.setattr(console_app, "assets_ready", lambda: None)
    def record(reg, version):  # what the real writer would send: the same announcement as the DAG's promote
        from turkey_airflow.assets import MODEL, SUBMISSION, champion_announcement

        extras = champion_announcement(reg, version)
        emitted.append({"version": version, "metrics": extras[MODEL]["metrics"], "model": extras[MODEL]["path"],
                        "latest": extras[SUBMISSION]["path"], "versioned": extras[SUBMISSION]["versioned_path"]})

    monkeypatch.setattr(console_app, "emit_champion_events", record)
    return emitted


@pytest.fixture(scope="module")
def tokens():
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    am = create_auth_manager()
    roles = {"admin": "admin", "viewer": "viewer", "nobody": None}  # a user without a role may do nothing
    return {
        key: am.generate_jwt(SimpleAuthManagerUser(username=f"{key}-user", role=role)) for key, role in roles.items()
    }


@pytest.fixture()
def client(monkeypatch, tokens):
    from airflow.models.revoked_token import RevokedToken
    from fastapi.testclient import TestClient

    from turkey_airflow.console.console_app import create_app

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, session=None: False))
    c = TestClient(create_app(), raise_server_exceptions=False)
    c.as_role = lambda role: {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    return c


def _confirm_form(client, version, role="admin"):
    page = client.get(f"/models/{version}/promote", headers=client.as_role(role))
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(token|expected_champion)" value="([^"]*)"', page.text))
    return {**fields, "reason": "bad model in production"}


READ_ENDPOINTS = [
    "/models",
    "/batches",
    f"/models/{VERSIONS[0]}",
    f"/models/{VERSIONS[0]}/curves.png",
    f"/models/{VERSIONS[0]}/submission.csv",
    "/audit",
    "/runs/manual__2026-11-01T03:00:00+00:00/validation",
    "/runs/manual__2026-11-01T03:00:00+00:00/validation/train/data-docs-train/index.html",
]


@pytest.mark.parametrize("path", [*READ_ENDPOINTS, f"/models/{VERSIONS[0]}/promote", f"/models/{VERSIONS[1]}/announce"])
def test_every_endpoint_needs_a_login(client, registry, path):
    r = client.get(path)
    assert r.status_code == 401
    assert "Sign in" in r.text and "Traceback" not in r.text


def test_a_garbage_token_is_refused(client, registry):
    r = client.get("/models", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code in (401, 403)


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_a_user_without_dag_access_is_refused(client, registry, path):
    assert client.get(path, headers=client.as_role("nobody")).status_code == 403


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_a_viewer_can_read_every_page(client, registry, path):
    r = client.get(path, headers=client.as_role("viewer"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "path", [*READ_ENDPOINTS[:5], f"/models/{VERSIONS[0]}/promote", f"/models/{VERSIONS[1]}/announce"]
)
def test_each_page_reads_the_champion_pointer_once(client, registry, monkeypatch, path):
    from ml.registry import Registry

    reads = []
    real = Registry.champion
    monkeypatch.setattr(Registry, "champion", lambda self: reads.append(1) or real(self))
    r = client.get(path, headers=client.as_role("admin"))
    assert r.status_code == 200, r.text
    assert len(reads) == 1


def test_models_page_lists_versions_with_run_links_metrics_and_champion(client, registry):
    r = client.get("/models", headers=client.as_role("viewer"))
    html = r.text
    for v in VERSIONS:
        assert f'data-version="{v}"' in html
    champion_row = re.search(rf'<tr class="champion" data-version="{VERSIONS[1]}">(.*?)</tr>', html).group(1)
    assert "champion" in champion_row
    assert "/dags/turkey_training/runs/manual__2026-11-02T03%3A00%3A00%2B00%3A00" in champion_row
    assert "0.9600" in champion_row and "0.9100" in champion_row  # val AUC and logistic baseline
    assert "keep champion" in html and ">rollback<" not in html
    # newest first by default; sortable by AUC ascending
    assert html.index(VERSIONS[2]) < html.index(VERSIONS[0])
    asc = client.get("/models?sort=auc&order=asc", headers=client.as_role("viewer")).text
    assert asc.index(f'data-version="{VERSIONS[0]}"') < asc.index(f'data-version="{VERSIONS[2]}"')


def test_version_page_shows_curves_metrics_lineage_and_downloads(client, registry):
    v = VERSIONS[0]
    r = client.get(f"/models/{v}", headers=client.as_role("viewer"))
    assert r.status_code == 200
    for text in (
        f"/turkey/models/{v}/curves.png",
        f"/turkey/models/{v}/submission.csv",
        "deadbeef",
        "ab" * 32,
        "validation report of the run",
        "No approval was required",
        "no champion yet",
    ):
        assert text in r.text, text
    assert 'id="promote"' not in r.text  # a viewer gets no promote button
    admin = client.get(f"/models/{v}", headers=client.as_role("admin")).text
    assert "Roll back to this version" in admin
    png = client.get(f"/models/{v}/curves.png", headers=client.as_role("viewer"))
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    csv = client.get(f"/models/{v}/submission.csv", headers=client.as_role("viewer"))
    assert csv.text == "vid_id,is_turkey\na,0.0\n" and "attachment" in csv.headers["content-disposition"]


def test_version_page_shows_the_human_decision(client, registry):
    registry.record_rejection(
        VERSIONS[2],
        user="reviewer",
        reason="promotion rejected by reviewer",
        approval={
            "by": "reviewer",
            "decision": "rejected",
            "at": "2026-11-16T10:00:00Z",
            "comment": "numbers look too good",
        },
    )
    registry.promote(
        VERSIONS[2],
        reason="approved",
        approval={"by": "boss", "decision": "approved", "at": "2026-11-17T10:00:00Z", "comment": "ok"},
    )
    html = client.get(f"/models/{VERSIONS[2]}", headers=client.as_role("viewer")).text
    approval = re.search(r'<ul id="approval">(.*?)</ul>', html).group(1)
    assert "rejected" in approval and "reviewer" in approval and "numbers look too good" in approval
    assert "approved" in approval and "boss" in approval


RUN0 = "manual__2026-11-01T03:00:00+00:00"


def test_validation_report_is_served_in_a_sandbox(client, registry):
    index = client.get(f"/runs/{RUN0}/validation", headers=client.as_role("viewer"))
    assert "passed" in index.text and "train/data-docs-train/index.html" in index.text
    r = client.get(f"/runs/{RUN0}/validation/train/data-docs-train/index.html", headers=client.as_role("viewer"))
    assert r.status_code == 200 and r.text == "<html>data docs</html>"
    # third-party HTML gets an opaque origin: its scripts cannot call the Airflow API with the operator's session
    assert r.headers["content-security-policy"] == "sandbox" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/runs/manual__unknown/validation", headers=client.as_role("viewer")).status_code == 404


@pytest.mark.parametrize("case", ["dot segments", "absolute path", "symlink"])
def test_validation_files_outside_the_report_are_not_served(client, registry, case):
    """Each request reaches the handler (its own 404 text) and names a file that exists outside the folder."""
    champion = Path(registry.base) / "champion.json"
    vdir = Path(registry.base) / "runs" / "manual__2026-11-01T03_00_00_00_00" / "validation"
    if case == "dot segments":  # encoded, so the client does not remove them: validation/../../.. = artifacts/
        path, target = "%2E%2E/%2E%2E/%2E%2E/champion.json", champion
        assert (vdir / "../../../champion.json").resolve() == champion.resolve()
    elif case == "absolute path":
        path, target = "/" + str(champion).lstrip("/"), champion
    else:
        (vdir / "train" / "linked.json").symlink_to(champion)
        path, target = "train/linked.json", champion
    assert target.is_file()
    r = client.get(f"/runs/{RUN0}/validation/{path}", headers=client.as_role("viewer"))
    assert r.status_code == 404 and "in the validation report of run" in r.text, (r.status_code, r.text[:300])
    assert target.read_text() not in r.text and '"promotion_id"' not in r.text


def test_rollback_by_an_editor_is_recorded_and_announced(client, registry, events):
    form = _confirm_form(client, VERSIONS[0])
    assert form["expected_champion"] == VERSIONS[1]
    r = client.post(
        f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("admin"), follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/turkey/audit")
    assert registry.champion_version() == VERSIONS[0]
    last = registry.audit()[-1]
    assert (last["action"], last["version"], last["previous"], last["user"]) == (
        "rollback",
        VERSIONS[0],
        VERSIONS[1],
        "admin-user",
    )
    assert last["reason"] == "bad model in production"
    assert Path(registry.submission_path()).read_text() == "vid_id,is_turkey\na,0.0\n"
    assert events == [
        {
            "version": VERSIONS[0],
            "metrics": {"val_accuracy": 0.9, "val_auc": 0.95},
            "model": describe(registry, VERSIONS[0])["model"],
            "latest": registry.submission_path(),
            "versioned": registry.submission_path(VERSIONS[0]),
        }
    ]
    audit = client.get(r.headers["location"].removeprefix("/turkey"), headers=client.as_role("viewer")).text
    assert "admin-user" in audit and "bad model in production" in audit and 'id="done"' in audit


def _state(registry):
    root = Path(registry.base)
    return sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file())


def test_a_viewer_cannot_promote_and_nothing_is_written(client, registry, events, tokens):
    before = _state(registry)
    assert client.get(f"/models/{VERSIONS[0]}/promote", headers=client.as_role("viewer")).status_code == 403
    form = _confirm_form(client, VERSIONS[0])  # even with a valid admin token in the form
    r = client.post(f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("viewer"))
    assert r.status_code == 403 and "may not edit" in r.text
    assert client.post(f"/models/{VERSIONS[0]}/promote", data=form).status_code == 401
    assert _state(registry) == before and events == []


@pytest.mark.parametrize(
    "case", ["no token", "forged token", "other version's token", "cross-site", "stale champion", "already champion"]
)
def test_a_post_without_a_valid_confirmation_changes_nothing(client, registry, events, case):
    before = _state(registry)
    version = VERSIONS[0]
    form = _confirm_form(client, version)
    headers = client.as_role("admin")
    expected = 403
    if case == "no token":
        form.pop("token")
    elif case == "forged token":
        form["token"] = form["token"].split(".")[0] + "." + "0" * 64
    elif case == "other version's token":
        form["token"] = _confirm_form(client, VERSIONS[2])["token"]
    elif case == "cross-site":
        headers = {**headers, "Origin": "http://127.0.0.1:9999"}
    elif case == "stale champion":
        form["expected_champion"] = VERSIONS[2]
        expected = 409
    elif case == "already champion":
        version = VERSIONS[1]
        form = {
            **_confirm_form(client, VERSIONS[0]),
            "token": __import__("turkey_airflow.console.console_access", fromlist=["x"]).confirm_token(
                "admin-user", version
            ),
        }
        expected = 409
    r = client.post(f"/models/{version}/promote", data=form, headers=headers)
    assert r.status_code == expected, r.text
    assert "Traceback" not in r.text and "nothing was changed" in r.text
    assert _state(registry) == before and events == []


@pytest.mark.parametrize(
    "path",
    [
        f"/models/{VERSIONS[0][:-1]}x",
        "/models/..",
        "/models/..%2Fx",
        "/models/%2E%2E",
        "/models/v1%00",
        "/models/.hidden",
    ],
)
def test_unknown_or_path_like_versions_are_404(client, registry, path):
    for suffix in ("", "/curves.png", "/submission.csv", "/promote"):
        r = client.get(path + suffix, headers=client.as_role("admin"))
        assert r.status_code in (400, 404), (path + suffix, r.status_code)
        assert "Traceback" not in r.text


def test_a_version_with_deleted_files_is_409_and_cannot_be_promoted(client, registry, events):
    v = VERSIONS[0]
    form = _confirm_form(client, v)
    vdir = Path(registry.version_dir(v))
    vdir.chmod(0o755)
    (vdir / "model.keras").unlink()
    before = _state(registry)
    for path in (f"/models/{v}", f"/models/{v}/curves.png", f"/models/{v}/promote"):
        r = client.get(path, headers=client.as_role("admin"))
        assert r.status_code == 409 and "model.keras" in r.text
    r = client.post(f"/models/{v}/promote", data=form, headers=client.as_role("admin"))
    assert r.status_code == 409 and _state(registry) == before and events == []


def test_a_missing_registry_is_503(client, tmp_path, monkeypatch):
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.delenv("TURKEY_REGISTRY_URL", raising=False)
    for path in ("/models", "/audit", f"/models/{VERSIONS[0]}"):
        r = client.get(path, headers=client.as_role("viewer"))
        assert r.status_code == 503 and "does not exist" in r.text
    assert not (tmp_path / "nowhere").exists()


def test_an_unreadable_registry_is_503(client, registry, events):
    champion = Path(registry.base) / "champion.json"
    champion.chmod(0o644)
    champion.write_text("{not json")
    for path in ("/models", "/audit", f"/models/{VERSIONS[0]}"):
        r = client.get(path, headers=client.as_role("viewer"))
        assert r.status_code == 503 and "Traceback" not in r.text, (path, r.status_code, r.text[:300])
    before = _state(registry)
    from turkey_airflow.console.console_access import confirm_token

    form = {"token": confirm_token("admin-user", VERSIONS[0]), "expected_champion": VERSIONS[1], "reason": "x"}
    r = client.post(f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("admin"))
    assert r.status_code == 503 and "champion.json" in r.text and _state(registry) == before and events == []


def test_an_empty_registry_explains_what_to_do(client, tmp_path, monkeypatch):
    (tmp_path / "art").mkdir()
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    r = client.get("/models", headers=client.as_role("viewer"))
    assert r.status_code == 200 and "No model versions yet" in r.text and "Trigger" in r.text


def test_plugin_registers_app_nav_entry_and_links():
    from importlib.metadata import entry_points

    from turkey_airflow import plugins

    found = {e.name: e.value for e in entry_points(group="airflow.plugins")}
    assert found["turkey_console"] == "turkey_airflow.plugins:TurkeyConsolePlugin"  # how Airflow finds it
    plugin = plugins.TurkeyConsolePlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/turkey"
    assert plugin.external_views[0]["destination"] == "nav" and plugin.external_views[0]["name"] == "Models"
    assert {link.name for link in plugin.operator_extra_links} == {"Model version", "Validation report"}


def test_extra_links_point_at_the_console(monkeypatch):
    from types import SimpleNamespace

    from turkey_airflow.console.console_links import ModelVersionLink, ValidationReportLink

    ti = SimpleNamespace(
        task_id="register",
        run_id="manual__x+1",
        xcom_pull=lambda task_ids: {"version": "v20261101T030000-aaaaaaaa"} if task_ids == "register" else None,
    )
    assert ModelVersionLink().get_link(None, ti_key=ti).endswith("/turkey/models/v20261101T030000-aaaaaaaa")
    assert ValidationReportLink().get_link(None, ti_key=ti).endswith("/turkey/runs/manual__x%2B1/validation")
    failed = SimpleNamespace(task_id="register", run_id="r", xcom_pull=lambda task_ids: None)
    assert ModelVersionLink().get_link(None, ti_key=failed) == ""


def _fail_writing(monkeypatch, name):
    """Disk full when the registry writes a file called ``name`` (only that file)."""
    from ml.errors import EnvironmentFault
    from ml.registry.storage import Storage

    for method in ("copy", "write_bytes"):
        real = getattr(Storage, method)

        def failing(self, *args, _real=real):
            target = args[-1 if _real.__name__ == "copy" else 0]
            if target.endswith(name):
                raise EnvironmentFault(target, "disk full", "free space on that filesystem")
            return _real(self, *args)

        monkeypatch.setattr(Storage, method, failing)


def test_a_rollback_failing_after_it_was_decided_says_so_and_names_the_repair(client, registry, events, monkeypatch):
    form = _confirm_form(client, VERSIONS[0])
    with monkeypatch.context() as m:
        _fail_writing(m, "latest.csv")
        r = client.post(f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("admin"))
        assert r.status_code == 503, r.text
        assert "decided but not finished" in r.text and "turkey models doctor --repair" in r.text
        assert "NOT sent" in r.text and "/api/v2/assets/events" in r.text and "Not changed" not in r.text
        assert registry.champion_version() == VERSIONS[0] and events == []  # readers report the decided champion
    assert doctor(registry, repair=True)["checked"]["champion"] == VERSIONS[0]
    last = registry.audit()[-1]
    assert (last["action"], last["version"], last["user"]) == ("rollback", VERSIONS[0], "admin-user")
    page = client.get(f"/models/{VERSIONS[0]}/announce", headers=client.as_role("admin"))  # then announce it
    token = re.search(r'name="token" value="([^"]*)"', page.text).group(1)
    r = client.post(
        f"/models/{VERSIONS[0]}/announce",
        data={"token": token},
        headers=client.as_role("admin"),
        follow_redirects=False,
    )
    assert r.status_code == 303 and [e["version"] for e in events] == [VERSIONS[0]]


def test_a_rollback_failing_before_it_was_decided_changes_nothing(client, registry, events, monkeypatch):
    form = _confirm_form(client, VERSIONS[0])
    before = _state(registry)
    _fail_writing(monkeypatch, ".promotion-intent.json")
    r = client.post(f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("admin"))
    assert r.status_code == 503 and "nothing was changed" in r.text and "disk full" in r.text
    assert _state(registry) == before and events == []


def test_failed_asset_events_are_reported_with_how_to_send_them(client, registry, monkeypatch):
    from turkey_airflow.console import console_app

    def broken(*args):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(console_app, "assets_ready", lambda: None)
    monkeypatch.setattr(console_app, "emit_champion_events", broken)
    r = client.post(
        f"/models/{VERSIONS[0]}/promote",
        data=_confirm_form(client, VERSIONS[0]),
        headers=client.as_role("admin"),
        follow_redirects=False,
    )
    assert r.status_code == 500 and "Traceback" not in r.text
    assert f"{VERSIONS[0]} is now the champion" in r.text and "NOT sent" in r.text and "database is locked" in r.text
    assert "POST /api/v2/assets/events" in r.text and registry.champion_version() == VERSIONS[0]
    assert f"/turkey/models/{VERSIONS[0]}/announce" in r.text


def test_the_champion_can_be_announced_again(client, registry, events):
    v = VERSIONS[1]  # the champion
    assert 'id="announce"' in client.get(f"/models/{v}", headers=client.as_role("admin")).text
    assert client.get(f"/models/{v}/announce", headers=client.as_role("viewer")).status_code == 403
    page = client.get(f"/models/{v}/announce", headers=client.as_role("admin"))
    assert page.status_code == 200
    token = re.search(r'name="token" value="([^"]*)"', page.text).group(1)
    promote_token = _confirm_form(client, VERSIONS[0])["token"]  # a promote token does not announce
    bad = client.post(f"/models/{VERSIONS[0]}/announce", data={"token": promote_token}, headers=client.as_role("admin"))
    assert bad.status_code in (403, 409) and events == []
    before = _state(registry)
    r = client.post(
        f"/models/{v}/announce", data={"token": token}, headers=client.as_role("admin"), follow_redirects=False
    )
    assert r.status_code == 303 and [e["version"] for e in events] == [v]
    assert _state(registry) == before  # the registry is not touched


def test_only_the_champion_can_be_announced(client, registry, events):
    from turkey_airflow.console.console_access import ANNOUNCE, confirm_token

    v = VERSIONS[0]
    assert client.get(f"/models/{v}/announce", headers=client.as_role("admin")).status_code == 409
    r = client.post(
        f"/models/{v}/announce",
        data={"token": confirm_token("admin-user", ANNOUNCE + v)},
        headers=client.as_role("admin"),
    )
    assert r.status_code == 409 and "nothing was sent" in r.text and events == []


def test_promoting_a_never_promoted_newer_version_is_recorded_as_promote(client, registry, events):
    r = client.post(
        f"/models/{VERSIONS[2]}/promote",
        data=_confirm_form(client, VERSIONS[2]),
        headers=client.as_role("admin"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    last = registry.audit()[-1]
    assert (last["action"], last["version"], last["user"], last["via"]) == (
        "promote",
        VERSIONS[2],
        "admin-user",
        "console",
    )


def test_without_an_api_secret_nothing_can_be_confirmed(client, registry, events, monkeypatch):
    from airflow.configuration import conf

    form = _confirm_form(client, VERSIONS[0])
    real_get = conf.get
    monkeypatch.setattr(
        conf,
        "get",
        lambda section, key, *a, **kw: (
            ""
            if (section, key) in {("api", "secret_key"), ("api_auth", "jwt_secret")}
            else real_get(section, key, *a, **kw)
        ),
    )
    before = _state(registry)
    page = client.get(f"/models/{VERSIONS[0]}/promote", headers=client.as_role("admin"))
    assert page.status_code == 503 and "No API secret configured" in page.text
    r = client.post(f"/models/{VERSIONS[0]}/promote", data=form, headers=client.as_role("admin"))
    assert r.status_code == 503 and "nothing was changed" in r.text
    assert _state(registry) == before and events == []


def test_the_audit_banner_only_announces_the_real_champion(client, registry):
    spoofed = client.get(f"/audit?done={VERSIONS[2]}", headers=client.as_role("viewer"))
    assert spoofed.status_code == 200 and 'id="done"' not in spoofed.text
    real = client.get(f"/audit?done={VERSIONS[1]}", headers=client.as_role("viewer"))
    assert 'id="done"' in real.text


def test_console_pages_may_only_be_framed_by_airflow(client, registry):
    r = client.get("/models", headers=client.as_role("viewer"))
    assert r.headers["content-security-policy"] == "frame-ancestors 'self'"


def test_batches_page_lists_each_batch_its_scorings_skew_and_downloads(client, registry, tmp_path):
    from ml.scoring.store import ScoreStore

    store = ScoreStore(registry)
    csv = tmp_path / "s.csv"
    csv.write_text("vid_id,is_turkey\na,0.9\nb,0.1\n")
    skew = {"psi_mean": 0.031, "noise": 0.03, "excess": 0.001, "shifted_dims": 0, "n": 2, "n_train": 9}
    old = store.keep("week-49", VERSIONS[0], csv, {"rows": 2, "input_sha256": "s", "scored_at": "2026-11-02T00:00:00Z",
                                                     "skew": skew, "published": False})
    new = store.keep("week-49", VERSIONS[1], csv, {"rows": 2, "input_sha256": "s", "scored_at": "2026-11-09T00:00:00Z",
                                                     "skew": skew, "skew_over_threshold": False})
    assert old["version"] == VERSIONS[0] and store.publish(new, "r1")  # VERSIONS[1] is the champion
    page = client.get("/batches", headers=client.as_role("viewer"))
    assert page.status_code == 200
    row = re.search(r'<tr data-batch="week-49">.*?</tr>', page.text, re.S).group(0)
    assert VERSIONS[0] in row and VERSIONS[1] in row and "not published" in row and "champion" in row
    assert "excess 0.0010" in row and 'href="/turkey/batches/week-49/latest.csv"' in row
    download = client.get("/batches/week-49/latest.csv", headers=client.as_role("viewer"))
    assert download.status_code == 200 and download.text == csv.read_text()
    assert client.get("/batches/week-49/../../champion.json", headers=client.as_role("viewer")).status_code == 404
    assert client.get("/batches/nope/latest.csv", headers=client.as_role("viewer")).status_code == 404
    assert client.get("/batches", headers={}).status_code == 401
