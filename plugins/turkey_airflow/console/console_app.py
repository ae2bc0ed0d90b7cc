"""The console's FastAPI app: Models, Version, Audit and validation-report pages, and promote/rollback.

Mounted by the plugin at ``/turkey`` inside the Airflow API server, so it shares Airflow's login: every
request is authenticated by Airflow's own auth manager (the JWT cookie the UI sets, or a bearer token)
and authorised against the ``turkey_training`` DAG -- read access to see a page, edit access to promote or
roll back. Data comes from ``ml.registry.Registry()`` (the local artifacts root or ``TURKEY_REGISTRY_URL``);
validation reports from the run folders under the artifacts root.

Errors are pages, never tracebacks: unknown or malformed version 404, a version whose files were deleted
409, a missing or unreadable registry 503, no login 401, no edit right 403. A refused request writes
nothing.

Each request reads the champion pointer once (:func:`open_registry`) and passes the version down to
whatever needs it; compare-and-set in the registry still guards a promotion against a change meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import re
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from turkey_airflow.console import console_html as H

log = logging.getLogger(__name__)

DAG_ID = "turkey_training"
#: A version as the registry names them, and a run id as Airflow makes them: one harmless path component.
NAME_RE = {
    "version": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$"),
    "run": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,249}$"),
}
#: How long a confirm page's token stays valid.
CONFIRM_TTL_S = 15 * 60


class ConsoleError(Exception):
    """A request the console refuses, with the HTTP status and a one-line reason for the page."""

    def __init__(self, status: int, title: str, detail: str, hint: str = ""):
        super().__init__(detail)
        self.status, self.title, self.detail, self.hint = status, title, detail, hint


# ----------------------------------------------------------------------------------------------- auth
async def current_user(request: Request):
    """The Airflow user of this request (Airflow's ``get_user``: bearer token or the UI's cookie)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    creds = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        creds = HTTPAuthorizationCredentials(scheme="Bearer", credentials=header[7:].strip())
    return await get_user(request, None, creds)


def _allowed(user, method: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf

    team = None
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        team = DagModel.get_team_name(DAG_ID)
    return get_auth_manager().is_authorized_dag(method=method, details=DagDetails(id=DAG_ID, team_name=team), user=user)


def reader(user: Annotated[Any, Depends(current_user)]):
    """Dependency: an authenticated user who may read the ``turkey_training`` DAG (plain ``def``: the
    authorisation check may query the metadata DB, so FastAPI runs it in its threadpool)."""
    if not _allowed(user, "GET"):
        raise ConsoleError(403, "Not allowed", f"user {user.get_name()!r} may not read the {DAG_ID} DAG")
    return user


def editor(user: Annotated[Any, Depends(current_user)]):
    """Dependency: an authenticated user who may edit the ``turkey_training`` DAG (promote / roll back);
    plain ``def`` like :func:`reader`."""
    if not _allowed(user, "PUT"):
        raise ConsoleError(
            403,
            "Not allowed",
            f"user {user.get_name()!r} may not edit the {DAG_ID} DAG, so cannot promote or roll back",
            "Ask an Airflow admin for a role with edit rights on DAGs (e.g. User or Op).",
        )
    return user


def _secret() -> bytes:
    """The key of the confirm tokens: the API secret key, else the JWT secret. With neither, tokens could be
    forged by anyone, so confirming is refused (503) instead."""
    from airflow.configuration import conf

    key = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    if not key:
        raise ConsoleError(
            503,
            "No API secret configured",
            "neither [api] secret_key nor [api_auth] jwt_secret is "
            "set, so a promotion cannot be confirmed safely; nothing was changed",
            "Set AIRFLOW__API__SECRET_KEY on the API server and restart it.",
        )
    return key.encode()


def confirm_token(user: str, version: str, issued: int | None = None) -> str:
    """A token binding the confirm page to this user, version and time (HMAC with the API secret key)."""
    issued = int(time.time()) if issued is None else issued
    mac = hmac.new(_secret(), f"{user}\n{version}\n{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def _check_confirm(token: str, user: str, version: str) -> None:
    issued, _, _mac = (token or "").partition(".")
    if not issued.isdigit() or not hmac.compare_digest(confirm_token(user, version, int(issued)), token):
        raise ConsoleError(
            403,
            "Not confirmed",
            "the confirmation token is missing or invalid; nothing was changed",
            "Open the version page and press the button again.",
        )
    if time.time() - int(issued) > CONFIRM_TTL_S:
        raise ConsoleError(
            403,
            "Confirmation expired",
            "the confirmation page is older than 15 minutes; nothing was changed",
            "Open the version page and confirm again.",
        )


def _check_same_origin(request: Request) -> None:
    """Refuse a cross-site form post (the browser's Origin/Referer must name this server)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return  # not a browser form post (API clients send no Origin); the token still binds the request
    host = request.headers.get("host", "")
    from urllib.parse import urlsplit

    if urlsplit(origin).netloc != host:
        raise ConsoleError(
            403, "Cross-site request refused", f"the request came from {origin}, not from {host}; nothing was changed"
        )


# ----------------------------------------------------------------------------------------------- registry
def check_name(name: str, what: str = "version") -> str:
    """Refuse anything that is not a plain version/run name (``../x``, slashes, empty): 404."""
    if not NAME_RE[what].match(name or "") or ".." in name:
        raise ConsoleError(404, f"No such {what}", f"{name!r} is not a valid {what} name")
    return name


def open_registry():
    """``(registry, champion version or None)``, the registry checked to be reachable: 503 when its root is
    missing or unreadable, or its champion pointer is damaged. The one read of the pointer per request."""
    from ml.registry import Registry

    try:
        reg = Registry()
        ok = reg.fs.isdir(reg.base)
    except Exception as exc:  # noqa: BLE001 - any backend failure is an unavailable registry
        raise ConsoleError(
            503,
            "Registry unavailable",
            f"cannot open the model registry: {type(exc).__name__}: {exc}",
            "Check TURKEY_REGISTRY_URL / TURKEY_ARTIFACTS_ROOT and the backend's credentials.",
        ) from None
    if not ok:
        raise ConsoleError(
            503,
            "Registry unavailable",
            f"the model registry root {reg.root} does not exist or is not a folder",
            "Check TURKEY_REGISTRY_URL / TURKEY_ARTIFACTS_ROOT, or run the pipeline once.",
        )
    # an unreadable champion pointer makes every page 503, with the repair named
    return reg, read_registry(reg.champion_version)


def read_registry(fn, *args):
    """Call a registry reader; a damaged or unreadable registry becomes 503 (never a traceback)."""
    from ml.errors import RegistryDamaged, TurkeyError

    try:
        return fn(*args)
    except RegistryDamaged as exc:
        raise ConsoleError(503, "Registry damaged", str(exc)) from None
    except TurkeyError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsoleError(
            503,
            "Registry unreadable",
            f"{type(exc).__name__}: {exc}",
            "Run `turkey models doctor` to check the registry.",
        ) from None


def load_version(reg, version: str, champ: str | None) -> dict:
    """``describe()`` of ``version`` (``champ``: the champion version this request read): 404 unknown or
    malformed, 409 when files listed in its manifest are gone."""
    from ml.errors import RegistryDamaged, TurkeyError

    check_name(version)
    if not read_registry(reg.fs.isdir, reg.version_path(version)):
        raise ConsoleError(404, "No such version", f"there is no model version {version!r} in {reg.models}")
    try:
        has_manifest = read_registry(reg.fs.isfile, reg.version_path(version, "manifest.json"))
        missing = [] if has_manifest else ["manifest.json"]
        missing = missing or read_registry(reg.missing_files, version)
        if not missing:
            return read_registry(reg.describe, version, champ)
    except RegistryDamaged as exc:
        raise ConsoleError(503, "Registry damaged", str(exc)) from None
    except TurkeyError as exc:
        raise ConsoleError(404, "No such version", str(exc)) from None
    raise ConsoleError(
        409,
        "Version incomplete",
        f"model version {version!r} has lost files: {', '.join(missing)}",
        "Its folder was changed after it was registered, so it cannot be shown or promoted; "
        "`turkey models doctor` lists the damage.",
    )


def _file_response(reg, path: str, media_type: str, download_name: str | None = None) -> Response:
    data = read_registry(reg.fs.cat_file, path)
    headers = {"Content-Disposition": f'attachment; filename="{download_name}"'} if download_name else {}
    return Response(content=data, media_type=media_type, headers=headers)


# ----------------------------------------------------------------------------------------------- asset events
def _asset_models(session) -> dict:
    """The two champion assets' DB rows; 503 (before anything is written) when Airflow does not know them."""
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    from turkey_airflow.assets import MODEL, SUBMISSION

    rows = {}
    for asset in (MODEL, SUBMISSION):
        row = session.scalar(select(AssetModel).where(AssetModel.name == asset.name, AssetModel.uri == asset.uri))
        if row is None or row.active is None:
            raise ConsoleError(
                503,
                "Assets not registered",
                f"asset {asset.name} is not known to Airflow yet, so "
                "downstream DAGs would miss this change; nothing was changed",
                "Let the DAG processor parse dags/turkey_training.py, then try again.",
            )
        rows[asset] = row
    return rows


def assets_ready() -> None:
    """Check, before touching the registry, that the asset events can be recorded."""
    from airflow.utils.session import create_session

    with create_session() as session:
        _asset_models(session)


def emit_champion_events(version: str, metrics: dict, model_path: str, submission: str, versioned: str) -> None:
    """Record the ``turkey_champion_model`` and ``turkey_submission`` events, with the same ``extra`` as the
    DAG's ``promote`` task, through Airflow's asset manager (which also queues the downstream DAG runs) --
    what the core API's ``POST /api/v2/assets/events`` does."""
    from airflow._shared.timezones import timezone
    from airflow.assets.manager import asset_manager
    from airflow.utils.session import create_session

    from turkey_airflow.assets import MODEL, SUBMISSION

    extras = {
        MODEL: {"version": version, "metrics": metrics, "path": model_path},
        SUBMISSION: {"version": version, "metrics": metrics, "path": submission, "versioned_path": versioned},
    }
    with create_session() as session:
        rows = _asset_models(session)
        for asset, extra in extras.items():
            asset_manager.register_asset_change(
                asset=rows[asset], timestamp=timezone.utcnow(), extra=extra, source_is_api=True, session=session
            )


# ----------------------------------------------------------------------------------------------- pages
SORT_KEYS = {
    "version": lambda r: r["version"],
    "created": lambda r: r.get("created_at") or "",
    "accuracy": lambda r: r.get("val_accuracy") if r.get("val_accuracy") is not None else -1,
    "auc": lambda r: r.get("val_auc") if r.get("val_auc") is not None else -1,
    "baseline": lambda r: r.get("baseline_auc") if r.get("baseline_auc") is not None else -1,
    "decision": lambda r: r.get("gate") or "",
}


def _rows(reg, champ: str | None) -> list[dict]:
    """One row per version for the Models page (``champ``: the champion version this request read)."""
    audit = read_registry(reg.audit)
    rows = []
    for v in read_registry(reg.versions):
        man = read_registry(reg.manifest, v)
        m = man.get("metrics") or {}
        gate = man.get("gate") or {}
        rows.append(
            {
                "version": v,
                "created_at": man.get("created_at"),
                "dag_id": man.get("dag_id"),
                "run_id": man.get("run_id"),
                "val_accuracy": m.get("val_accuracy"),
                "val_auc": m.get("val_auc"),
                "baseline_auc": (m.get("baseline_logreg") or {}).get("val_auc"),
                "gate": gate.get("decision"),
                "gate_reason": gate.get("reason"),
                "champion": v == champ,
                "history": [e for e in audit if e.get("version") == v],
            }
        )
    return rows


def models_page(reg, champ: str | None, user: str, sort: str, order: str, note: str = "") -> str:
    """The Models page: every version with its run, metrics, gate decision, champion marker (``champ``) and
    history, sorted by ``sort`` (a ``SORT_KEYS`` key) in ``order`` (``asc``/``desc``)."""
    rows = _rows(reg, champ)
    key = sort if sort in SORT_KEYS else "created"
    desc = order != "asc"
    rows.sort(key=SORT_KEYS[key], reverse=desc)

    def th(k: str, label: str) -> str:
        nxt = "asc" if (k == key and desc) else "desc"
        arrow = (" ▼" if desc else " ▲") if k == key else ""
        return f'<th><a href="{H.url("/models", sort=k, order=nxt)}">{label}{arrow}</a></th>'

    head = (
        th("version", "Version")
        + th("created", "Created")
        + "<th>Airflow run</th>"
        + th("accuracy", "Val acc.")
        + th("auc", "Val AUC")
        + th("baseline", "Baseline AUC")
        + th("decision", "Gate")
        + "<th>Champion</th><th>Promotions / rollbacks</th>"
    )
    body_rows = []
    for r in rows:
        run = H.run_url(r["dag_id"], r["run_id"])
        run_cell = f'<a href="{H.esc(run)}" target="_top">{H.esc(r["run_id"])}</a>' if run else "—"
        hist = "<br>".join(
            f'{H.action_badge(e.get("action"))} <span class="muted">{H.when(e.get("at"))}'
            f"{' by ' + H.esc(e.get('user')) if e.get('user') else ''}</span>"
            for e in r["history"]
        )
        body_rows.append(
            f'<tr class="{"champion" if r["champion"] else ""}" data-version="{H.esc(r["version"])}">'
            f'<td class="nowrap"><a class="mono" href="{H.url("/models/" + H.seg(r["version"]))}">{H.esc(r["version"])}</a></td>'
            f'<td class="muted nowrap">{H.when(r["created_at"])}</td>'
            f"<td>{run_cell}</td>"
            f'<td class="num">{H.fmt(r["val_accuracy"])}</td><td class="num">{H.fmt(r["val_auc"])}</td>'
            f'<td class="num">{H.fmt(r["baseline_auc"])}</td>'
            f'<td title="{H.esc(r["gate_reason"])}">{H.gate_badge(r["gate"])}</td>'
            f"<td>{H.badge('champion', 'champ') if r['champion'] else ''}</td><td>{hist or '—'}</td></tr>"
        )
    if rows:
        table = (
            f'<div class="scroll"><table id="models"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body_rows)}</tbody></table></div>"
        )
    else:
        table = (
            '<div class="card"><p>No model versions yet.</p><p>In Airflow, open <a href="/dags/turkey_training" '
            'target="_top">turkey_training</a>, unpause it and press <b>Trigger</b>; each finished run adds a '
            "version here.</p></div>"
        )
    champ = next((r for r in rows if r["champion"]), None)
    summary = (
        f'<p>Champion: <a class="mono" href="{H.url("/models/" + H.seg(champ["version"]))}">'
        f'{H.esc(champ["version"])}</a> · registry <span class="mono">{H.esc(reg.root)}</span></p>'
        if champ
        else f'<p class="muted">No champion yet · registry <span class="mono">{H.esc(reg.root)}</span></p>'
    )
    return H.page(
        "Models", f"<h1>Model versions ({len(rows)})</h1>{summary}{table}", active="models", user=user, status_note=note
    )


def _history_html(entries: list[dict]) -> str:
    if not entries:
        return '<p class="muted">Never promoted.</p>'
    items = "".join(
        f"<li>{H.action_badge(e.get('action'))} <b>{H.esc(e.get('at'))}</b>"
        f"{' by ' + H.esc(e.get('user')) if e.get('user') else ''}"
        f"{' in run ' + H.esc(e.get('run_id')) if e.get('run_id') else ''} — {H.esc(e.get('reason'))}"
        f"{' (previous: ' + H.esc(e.get('previous')) + ')' if e.get('previous') else ''}</li>"
        for e in entries
    )
    return f'<ol class="timeline">{items}</ol>'


def _approval_html(man: dict, entries: list[dict]) -> str:
    """The human-in-the-loop decision, where one was recorded (``approval`` on a promotion, or a rejection;
    read by :meth:`ml.registry.Registry.decision_of`). A rejection without a comment shows its reason."""
    from ml.registry import Registry

    rows = []
    for e in entries:
        d = Registry.decision_of(e)
        if d is None:
            continue
        comment = d["comment"] or (e.get("reason") if e.get("action") == "rejected" else None)
        rows.append(
            f"<li>{H.badge(d['decision'], 'promote' if d['decision'] == 'approved' else 'reject')} by "
            f"<b>{H.esc(d['by'])}</b> at {H.esc(d['at'])}{' — ' + H.esc(comment) if comment else ''}</li>"
        )
    if rows:
        return f'<ul id="approval">{"".join(rows)}</ul>'
    needed = (man.get("params") or {}).get("require_approval")
    text = "Approval was required; no decision is recorded yet." if needed else "No approval was required for this run."
    return f'<p class="muted">{text}</p>'


def version_page(reg, info: dict, champ: str | None, user: str, can_edit: bool) -> str:
    """One version's page (``info`` from :func:`load_version`; ``champ`` the champion version): curves,
    metrics, lineage, gate reason, human decisions, history, downloads; the promote/roll-back button only
    when ``can_edit``."""
    man, m, v = info["manifest"], info["metrics"], info["version"]
    gate = man.get("gate") or {}
    audit = [e for e in read_registry(reg.audit) if e.get("version") == v]
    run = H.run_url(man.get("dag_id"), man.get("run_id"))
    base = m.get("baseline_logreg") or {}
    metrics_rows = "".join(
        f"<tr><td>{label}</td><td class=num>{H.fmt(val, digits)}</td></tr>"
        for label, val, digits in (
            ("validation accuracy", m.get("val_accuracy"), 4),
            ("validation ROC AUC", m.get("val_auc"), 4),
            ("logistic baseline accuracy", base.get("val_accuracy"), 4),
            ("logistic baseline ROC AUC", base.get("val_auc"), 4),
            ("validation loss", m.get("val_loss"), 4),
            ("epochs run", m.get("epochs_run"), 0),
            ("train seconds", m.get("train_seconds"), 1),
        )
        if val is not None
    )
    inputs = man.get("inputs") or {}
    lineage = "".join(
        f"<div>{H.esc(k)}</div><div class=mono>{val}</div>"
        for k, val in (
            ("created", H.esc(man.get("created_at"))),
            (
                "Airflow run",
                f'<a href="{H.esc(run)}" target=_top>{H.esc(man.get("dag_id"))} / {H.esc(man.get("run_id"))}</a>'
                if run
                else "—",
            ),
            ("train file", f"{H.esc(inputs.get('train_file'))} sha256 {H.esc(inputs.get('train_sha256'))}"),
            ("test file", f"{H.esc(inputs.get('test_file'))} sha256 {H.esc(inputs.get('test_sha256'))}"),
            ("git commit", H.esc(man.get("git_commit"))),
            ("device", H.esc(man.get("device"))),
            ("compared with", H.esc(man.get("compared_with"))),
        )
    )
    report_link = (
        f'<a href="{H.url("/runs/" + H.seg(man["run_id"]) + "/validation")}">validation report of the run</a>'
        if man.get("run_id")
        else '<span class="muted">no validation report recorded</span>'
    )
    if v == champ:
        action = f"<p>{H.badge('champion', 'champ')} This version is the live champion.</p>"
        if can_edit:
            action += (
                f'<p class="muted">If its asset events were not sent (the console said so), '
                f'<a id="announce" href="{H.url("/models/" + H.seg(v) + "/announce")}">announce it again</a>.</p>'
            )
    elif can_edit:
        verb = _verb(reg, v, champ, audit)
        action = (
            f'<p><a class="btn" id="promote" href="{H.url("/models/" + H.seg(v) + "/promote")}">'
            f'{verb.capitalize()} to this version…</a> <span class="muted">asks for confirmation first</span></p>'
        )
    else:
        action = '<p class="muted">You may view this version; promoting or rolling back needs edit rights on turkey_training.</p>'
    body = (
        f'<h1>Version <span class="mono">{H.esc(v)}</span></h1>{action}'
        f'<div class="card"><b>Gate decision:</b> {H.gate_badge(gate.get("decision"))} {H.esc(gate.get("reason"))}</div>'
        f'<h2>Training curves</h2><img class="curves" alt="training curves" src="{H.url("/models/" + H.seg(v) + "/curves.png")}">'
        f'<h2>Metrics</h2><table style="width:auto">{metrics_rows}</table>'
        f'<h2>Files</h2><p><a id="submission" href="{H.url("/models/" + H.seg(v) + "/submission.csv")}">submission.csv</a>'
        f" (download) · {report_link}</p>"
        f'<h2>Lineage</h2><div class="grid">{lineage}</div>'
        f"<h2>Params</h2>{H.json_block(man.get('params'))}"
        f"<h2>Packages</h2>{H.json_block(man.get('packages'))}"
        f"<h2>Human approval</h2>{_approval_html(man, audit)}"
        f"<h2>Promotion history</h2>{_history_html(audit)}"
    )
    return H.page(f"Version {v}", body, active="models", user=user)


def _verb(reg, version: str, champ: str | None, audit: list | None = None) -> str:
    """'roll back' when the version is older than the champion or was champion before, else 'promote'.

    ``audit``: entries already read by the caller (any superset of this version's), to save a re-read.
    """
    if champ and version < champ:
        return "roll back"
    entries = audit if audit is not None else read_registry(reg.audit)
    was = any(e.get("version") == version and e.get("action") in ("promote", "rollback") for e in entries)
    return "roll back" if was else "promote"


def audit_page(reg, user: str, note: str = "") -> str:
    """The audit timeline, newest first: who changed the champion (or rejected a version), when and why."""
    entries = list(reversed(read_registry(reg.audit)))
    if entries:
        items = "".join(
            f'<li data-action="{H.esc(e.get("action"))}" data-version="{H.esc(e.get("version"))}">'
            f"{H.action_badge(e.get('action'))} <b>{H.esc(e.get('at'))}</b> — "
            f'<a class=mono href="{H.url("/models/" + H.seg(str(e.get("version"))))}">{H.esc(e.get("version"))}</a>'
            f" (previous {H.esc(e.get('previous'))})<br><span class=muted>who:</span> "
            f"{H.esc(e.get('user') or ('pipeline run ' + str(e.get('run_id')) if e.get('run_id') else None))}"
            f" · <span class=muted>why:</span> {H.esc(e.get('reason'))}</li>"
            for e in entries
        )
        body = f'<ol class="timeline" id="audit">{items}</ol>'
    else:
        body = '<p class="muted">No promotions or rollbacks yet.</p>'
    return H.page(
        "Audit", f"<h1>Promotion and rollback timeline</h1>{body}", active="audit", user=user, status_note=note
    )


def confirm_page(reg, info: dict, champ: str | None, user: str) -> str:
    """The confirmation form for making ``info``'s version the champion: carries the confirm token and the
    champion shown (``champ``; compare-and-set on POST) and asks for the reason recorded in the audit."""
    v = info["version"]
    verb = _verb(reg, v, champ)
    m = info["metrics"]
    body = (
        f'<h1>Confirm: {H.esc(verb)} to <span class="mono">{H.esc(v)}</span></h1>'
        f'<div class="card"><p>The champion changes from <span class="mono">{H.esc(champ)}</span> to '
        f'<span class="mono">{H.esc(v)}</span> (validation AUC {H.fmt(m.get("val_auc"))}, accuracy '
        f"{H.fmt(m.get('val_accuracy'))}). <code>submissions/latest.csv</code> becomes this version's submission, "
        "the audit log records your name, and the <code>turkey_champion_model</code> and "
        "<code>turkey_submission</code> asset events are emitted so downstream DAGs pick up the change.</p>"
        f'<form method="post" action="{H.url("/models/" + H.seg(v) + "/promote")}">'
        f'<input type="hidden" name="token" value="{H.esc(confirm_token(user, v))}">'
        f'<input type="hidden" name="expected_champion" value="{H.esc(champ or "")}">'
        "<p><label>Reason (recorded in the audit log)<br>"
        f'<input type="text" name="reason" id="reason" value="manual {H.esc(verb)} via the console"></label></p>'
        f'<p><button class="btn danger" type="submit" id="confirm">Yes, {H.esc(verb)}</button> '
        f'<a class="btn secondary" href="{H.url("/models/" + H.seg(v))}">Cancel</a></p></form></div>'
    )
    return H.page("Confirm", body, active="models", user=user)


def validation_index(run_id: str, user: str) -> str:
    """The validation result of ``run_id`` (train and test): passed/failed, broken rules, report links."""
    import json

    vdir = _validation_dir(run_id)
    rows = []
    for f in sorted(vdir.glob("*/validation-*.json"), key=lambda f: (f.parent.name != "train", f.parent.name)):
        try:
            rep = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            rows.append(f"<tr><td>{H.esc(f.name)}</td><td colspan=3>unreadable: {H.esc(exc)}</td></tr>")
            continue
        html_rel = None
        if rep.get("report_html"):
            try:
                html_rel = Path(rep["report_html"]).resolve().relative_to(vdir.resolve()).as_posix()
            except ValueError:
                html_rel = None
        fails = "".join(
            f"<li><b>{H.esc(x.get('rule'))}</b>: {H.esc(x.get('message'))}</li>" for x in rep.get("failures") or []
        )
        link = (
            f'<a href="{H.url("/runs/" + H.seg(run_id) + "/validation/" + html_rel)}">Data Docs page</a>'
            if html_rel
            else "—"
        )
        rows.append(
            f"<tr><td>{H.esc(rep.get('split'))}</td><td>{H.badge('passed', 'promote') if rep.get('ok') else H.badge('failed', 'reject')}</td>"
            f"<td>{H.esc(rep.get('n_records'))} records · {H.esc(rep.get('file'))}"
            f"{'<ul>' + fails + '</ul>' if fails else ''}</td><td>{link} · "
            f'<a href="{H.url("/runs/" + H.seg(run_id) + "/validation/" + f.relative_to(vdir).as_posix())}">JSON</a></td></tr>'
        )
    if not rows:
        raise ConsoleError(
            404,
            "No validation report",
            f"run {run_id!r} has no validation report under {vdir}",
            "The run may not have reached validation yet, or its folder was removed.",
        )
    body = (
        f'<h1>Validation of run <span class="mono">{H.esc(run_id)}</span></h1>'
        f'<p><a href="{H.esc(H.run_url(DAG_ID, run_id))}" target=_top>Airflow run</a></p>'
        f'<table style="width:auto"><thead><tr><th>File</th><th>Result</th><th>Details</th><th>Report</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return H.page("Validation", body, user=user)


def _validation_dir(run_id: str) -> Path:
    from ml.config import run_dir

    check_name(run_id, "run")
    return run_dir(run_id) / "validation"


# ----------------------------------------------------------------------------------------------- app
Reader = Annotated[Any, Depends(reader)]
Editor = Annotated[Any, Depends(editor)]


#: Validation reports are third-party HTML (GE Data Docs load scripts from CDNs): served in a sandbox, i.e. an
#: opaque origin, so no script in them can call the Airflow API with the operator's session.
REPORT_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        content,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "frame-ancestors 'self'",
            "X-Content-Type-Options": "nosniff",
        },
    )


def create_app() -> FastAPI:
    """The console app (mounted by the plugin at ``/turkey``)."""
    app = FastAPI(title="turkey model console", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError):
        return _html(H.error_page(exc.status, exc.title, exc.detail, hint=H.esc(exc.hint)), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 401:
            nxt = str(request.url.path)
            hint = f'<a href="/auth/login?next={H.esc(nxt)}" target="_top">Sign in to Airflow</a> and come back.'
            return _html(H.error_page(401, "Sign in required", str(exc.detail), hint=hint), 401)
        title = {403: "Not allowed", 404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return _html(H.error_page(exc.status_code, title, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("console: unexpected error on %s", request.url.path)
        return _html(
            H.error_page(
                500, "Internal error", f"{type(exc).__name__}: {exc}", hint="The API server log has the details."
            ),
            500,
        )

    @app.get("/", include_in_schema=False)
    async def index(user: Reader):
        return RedirectResponse(H.url("/models"), status_code=303)

    @app.get("/models", response_class=HTMLResponse)
    def models(user: Reader, sort: str = "created", order: str = "desc"):
        reg, champ = open_registry()
        return _html(models_page(reg, champ, user.get_name(), sort, order))

    @app.get("/models/{version}", response_class=HTMLResponse)
    def version(version: str, user: Reader):
        reg, champ = open_registry()
        info = load_version(reg, version, champ)
        return _html(version_page(reg, info, champ, user.get_name(), _allowed(user, "PUT")))

    @app.get("/models/{version}/curves.png")
    def curves(version: str, user: Reader):
        reg, champ = open_registry()
        load_version(reg, version, champ)
        return _file_response(reg, reg.version_path(version, "curves.png"), "image/png")

    @app.get("/models/{version}/submission.csv")
    def submission(version: str, user: Reader):
        reg, champ = open_registry()
        load_version(reg, version, champ)
        return _file_response(
            reg,
            reg.version_path(version, "submission.csv"),
            "text/csv",
            download_name=f"submission-{version}.csv",
        )

    @app.get("/models/{version}/promote", response_class=HTMLResponse)
    def promote_confirm(version: str, user: Editor):
        reg, champ = open_registry()
        info = load_version(reg, version, champ)
        if champ == version:
            raise ConsoleError(409, "Already the champion", f"{version} is already the champion; nothing to do")
        return _html(confirm_page(reg, info, champ, user.get_name()))

    @app.post("/models/{version}/promote")
    def promote(
        request: Request,
        version: str,
        user: Editor,
        token: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
        expected_champion: Annotated[str, Form()] = "",
    ):
        name = user.get_name()
        _check_same_origin(request)
        _check_confirm(token, name, version)
        reg, champ = open_registry()
        info = load_version(reg, version, champ)
        if champ == version:
            raise ConsoleError(409, "Already the champion", f"{version} is already the champion; nothing was changed")
        if (champ or "") != expected_champion:
            raise ConsoleError(
                409,
                "Champion changed",
                f"the champion changed to {champ} since the confirmation page "
                f"was opened (it was {expected_champion or 'none'}); nothing was changed",
                "Open the version page again and re-confirm.",
            )
        assets_ready()
        verb = _verb(reg, version, champ)
        why = " ".join(reason.split())[:300] or f"manual {verb} by {name} via the console"
        action = "rollback" if verb == "roll back" else "promote"
        pointer = change_champion(reg, version, name, why, champ, action)
        metrics = {k: info["metrics"].get(k) for k in ("val_accuracy", "val_auc")}
        announce(version, metrics, info["model"], reg.submission_path(), reg.submission_path(version))
        log.info(
            "console: %s made %s the champion (%s, previous %s): %s",
            name,
            version,
            action,
            pointer.get("previous"),
            why,
        )
        return RedirectResponse(H.url("/audit", done=version), status_code=303)

    @app.get("/models/{version}/announce", response_class=HTMLResponse)
    def announce_confirm(version: str, user: Editor):
        reg, champ = open_registry()
        load_version(reg, version, champ)
        _require_champion(champ, version)
        return _html(announce_page(version, user.get_name()))

    @app.post("/models/{version}/announce")
    def announce_again(request: Request, version: str, user: Editor, token: Annotated[str, Form()] = ""):
        name = user.get_name()
        _check_same_origin(request)
        _check_confirm(token, name, ANNOUNCE + version)
        reg, champ = open_registry()
        info = load_version(reg, version, champ)
        _require_champion(champ, version)
        assets_ready()
        metrics = {k: info["metrics"].get(k) for k in ("val_accuracy", "val_auc")}
        announce(version, metrics, info["model"], reg.submission_path(), reg.submission_path(version))
        log.info("console: %s announced champion %s again", name, version)
        return RedirectResponse(H.url("/audit", done=version), status_code=303)

    @app.get("/audit", response_class=HTMLResponse)
    def audit(user: Reader, done: str | None = None):
        reg, champ = open_registry()
        # the banner only repeats what the registry says (a crafted ?done= link announces nothing)
        note = (
            f'<div class="card ok" id="done">Champion is now <span class="mono">{H.esc(done)}</span>; '
            "recorded below and announced to downstream DAGs.</div>"
            if done and done == champ
            else ""
        )
        return _html(audit_page(reg, user.get_name(), note))

    @app.get("/runs/{run_id}/validation", response_class=HTMLResponse)
    def validation(run_id: str, user: Reader):
        return _html(validation_index(run_id, user.get_name()))

    @app.get("/runs/{run_id}/validation/{path:path}")
    def validation_file(run_id: str, path: str, user: Reader):
        vdir = _validation_dir(run_id).resolve()
        target = (vdir / path).resolve()
        if vdir not in target.parents or not target.is_file():
            raise ConsoleError(404, "Not found", f"no file {path!r} in the validation report of run {run_id!r}")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(target.read_bytes(), media_type=media, headers=REPORT_HEADERS)

    return app


def _events_hint(version: str) -> str:
    return (
        f"Send them from the console ({H.url('/models/' + H.seg(version) + '/announce')}, once {version} is the "
        "champion) or by hand: POST /api/v2/assets/events for the assets turkey_champion_model and "
        f'turkey_submission, with extra {{"version": "{version}"}} (the DAG\'s promote task sends the same).'
    )


#: Confirm tokens for re-announcing are bound to this prefix + version (not usable as a promote token).
ANNOUNCE = "announce "


def _require_champion(champ: str | None, version: str) -> None:
    """409 unless ``version`` is the champion (``champ``, as this request read it)."""
    if champ != version:
        raise ConsoleError(
            409,
            "Not the champion",
            f"{version} is not the champion (the champion is {champ or 'none'}); only the champion is announced; "
            "nothing was sent",
        )


def announce_page(version: str, user: str) -> str:
    """The confirmation form for sending the champion's asset events again (after the console reported that
    they were not sent); the same events as a promotion, so downstream DAGs run once more."""
    body = (
        f'<h1>Announce <span class="mono">{H.esc(version)}</span> again</h1>'
        '<div class="card"><p>This sends the <code>turkey_champion_model</code> and <code>turkey_submission</code> '
        f'asset events for the champion <span class="mono">{H.esc(version)}</span> again, so downstream DAGs '
        "run on it. Use it when the console reported that the events of a promotion or rollback were not sent."
        "</p>"
        f'<form method="post" action="{H.url("/models/" + H.seg(version) + "/announce")}">'
        f'<input type="hidden" name="token" value="{H.esc(confirm_token(user, ANNOUNCE + version))}">'
        '<p><button class="btn" type="submit" id="confirm">Send the asset events</button> '
        f'<a class="btn secondary" href="{H.url("/models/" + H.seg(version))}">Cancel</a></p></form></div>'
    )
    return H.page("Announce", body, active="models", user=user)


def change_champion(reg, version: str, user: str, reason: str, expected: str | None, action: str) -> dict:
    """Make ``version`` the champion through the registry's public API (compare-and-set on ``expected``),
    audited as ``action`` with the user's name. Refusals are 409 with nothing changed; a failure after the
    promotion was decided (e.g. disk full while writing ``latest.csv``) is 503 saying so and naming the repair."""
    from ml.errors import EnvironmentFault, RegistryDamaged, RegistryError, TurkeyError

    try:
        return reg.promote(version, reason=reason, action=action, user=user, via="console", expect_previous=expected)
    except RegistryDamaged as exc:
        raise ConsoleError(503, "Registry damaged", str(exc)) from None
    except (EnvironmentFault, OSError) as exc:
        problem = str(exc) if isinstance(exc, EnvironmentFault) else f"{type(exc).__name__}: {exc}"
        try:
            decided = reg.champion_version() == version
        except Exception:  # noqa: BLE001 - cannot tell: say so rather than guess
            decided = None
        if decided is False:
            raise ConsoleError(
                503,
                "Registry not writable",
                f"{problem}; nothing was changed",
                "Free space or fix the mount, then try again.",
            ) from None
        state = "decided but not finished" if decided else "may have been decided but not finished"
        raise ConsoleError(
            503,
            f"{action.capitalize()} {state}",
            f"the {action} to {version} was {state}: {problem}. Readers already report {version} "
            "as the champion; the asset events were NOT sent",
            "Free space, run `turkey models doctor --repair` to finish it, then announce it. " + _events_hint(version),
        ) from None
    except (RegistryError, TurkeyError) as exc:
        raise ConsoleError(409, "Not changed", str(exc)) from None


def announce(version: str, metrics: dict, model_path: str, submission: str, versioned: str) -> None:
    """:func:`emit_champion_events` after the champion changed; a failure is a page saying plainly that the
    champion changed but downstream DAGs were not told, and how to send the events."""
    try:
        emit_champion_events(version, metrics, model_path, submission, versioned)
    except Exception as exc:  # noqa: BLE001 - the change is done; say exactly what is missing
        log.exception("console: %s is the champion but its asset events were not sent", version)
        raise ConsoleError(
            500,
            "Champion changed, events not sent",
            f"{version} is now the champion (recorded in the audit log), but the asset events were "
            f"NOT sent, so downstream DAGs have not been told: {type(exc).__name__}: {exc}",
            _events_hint(version),
        ) from None
