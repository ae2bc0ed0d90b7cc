"""The console's pages as HTML: Models, Version, Audit, the confirm forms and the validation index.

Each takes what the request already read (the registry, the champion version, the version's ``describe()``)
and reads the rest through :func:`turkey_airflow.console.console_access.read_registry`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from turkey_airflow.console import console_html as H
from turkey_airflow.console.console_access import (
    ANNOUNCE,
    DAG_ID,
    ConsoleError,
    check_name,
    confirm_token,
    read_registry,
)

log = logging.getLogger(__name__)


SORT_KEYS = {
    "version": lambda r: r["version"],
    "created": lambda r: r.get("created_at") or "",
    "accuracy": lambda r: r.get("val_accuracy") if r.get("val_accuracy") is not None else -1,
    "auc": lambda r: r.get("val_auc") if r.get("val_auc") is not None else -1,
    "baseline": lambda r: r.get("baseline_auc") if r.get("baseline_auc") is not None else -1,
    "decision": lambda r: r.get("gate") or "",
}


def _rows(reg, champ: str | None) -> list[dict]:
    """One row per version (:func:`ml.registry.views.version_rows`; ``champ``: the champion this request read)."""
    from ml.registry.views import version_rows

    return read_registry(version_rows, reg, champ)


def _lineage_html(reg) -> str:
    """The lineage's AUC over time (:mod:`ml.lineage`): every champion on one common record set."""
    from ml import lineage

    curve = read_registry(lineage.read, reg)
    if not curve or not curve.get("points"):
        return ""
    chart = H.line_chart([(p["version"], p["auc"]) for p in curve["points"]])
    return (f'<div class="card" id="lineage"><b>Lineage AUC</b> <span class="muted">every champion, in the order '
            f'they became champion, on the same {H.esc(curve["n"])} records none of them trained on '
            f'(computed {H.when(curve["computed_at"])})</span><br>{chart}</div>')


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
        "Models", f"<h1>Model versions ({len(rows)})</h1>{summary}{_lineage_html(reg)}{table}", active="models",
        user=user, status_note=note
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
    read by :func:`ml.registry.views.decision_of`). A rejection without a comment shows its reason."""
    from ml.registry.views import decision_of

    rows = []
    for e in entries:
        d = decision_of(e)
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
        verb = change_verb(reg, v, champ, audit)
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


def change_verb(reg, version: str, champ: str | None, audit: list | None = None) -> str:
    """'roll back' when the version is older than the champion or was champion before, else 'promote'.

    ``audit``: entries already read by the caller (any superset of this version's), to save a re-read.
    """
    if champ and version < champ:
        return "roll back"
    entries = audit if audit is not None else read_registry(reg.audit)
    was = any(e.get("version") == version and e.get("action") in ("promote", "rollback") for e in entries)
    return "roll back" if was else "promote"


def batches_page(reg, champ: str | None, user: str) -> str:
    """The Batches page: each scored batch, its size, the published scores (which version, when, the skew
    figure), every version that scored it and when, and downloads."""
    from ml.scoring.store import ScoreStore

    store = ScoreStore(reg)
    rows = []
    for b in read_registry(store.batches):
        latest, history = read_registry(store.latest, b), read_registry(store.history, b)
        skew = (latest or {}).get("skew") or {}
        figure = "—" if "excess" not in skew else (
            f'{H.badge("skewed", "reject") if latest.get("skew_over_threshold") else ""} '
            f'excess {H.fmt(skew["excess"])} <span class="muted">(mean PSI {H.fmt(skew["psi_mean"])})</span>')
        scorings = "<br>".join(
            f'<a class="mono" href="{H.url("/batches/" + H.seg(b) + "/" + H.seg(r["version"]) + ".csv")}">'
            f'{H.esc(r["version"])}</a> <span class="muted">{H.when(r["scored_at"])}'
            f'{"" if r.get("published", True) else " · not published"}</span>' for r in reversed(history))
        published = "—" if not latest else (
            f'<span class="mono">{H.esc(latest["version"])}</span>'
            f'{" " + H.badge("champion", "champ") if latest["version"] == champ else ""}'
            f'<br><a href="{H.url("/batches/" + H.seg(b) + "/latest.csv")}">latest.csv</a>')
        rows.append(f'<tr data-batch="{H.esc(b)}"><td class="mono">{H.esc(b)}</td>'
                    f'<td class="num">{H.esc((latest or {}).get("rows"))}</td><td>{published}</td>'
                    f'<td class="muted nowrap">{H.when((latest or {}).get("scored_at"))}</td><td>{figure}</td>'
                    f"<td>{scorings or '—'}</td></tr>")
    if rows:
        body = ('<div class="scroll"><table id="batches"><thead><tr><th>Batch</th><th>Records</th>'
                "<th>Published scores</th><th>Scored</th><th>Training-serving skew</th><th>Scored by</th></tr>"
                f"</thead><tbody>{''.join(rows)}</tbody></table></div>")
    else:
        body = ('<div class="card"><p>No scored batches yet.</p><p>Put one JSON file per batch into '
                "<code>landing/batches/</code>; the <code>turkey_scoring</code> DAG scores it with the champion."
                "</p></div>")
    return H.page("Batches", f"<h1>Scored batches ({len(rows)})</h1>{body}", active="batches", user=user)


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
    verb = change_verb(reg, v, champ)
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

    vdir = validation_dir(run_id)
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


def validation_dir(run_id: str) -> Path:
    """The validation report folder of ``run_id`` (404 for a malformed run id)."""
    from ml.settings import run_dir

    check_name(run_id, "run")
    return run_dir(run_id) / "validation"


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
