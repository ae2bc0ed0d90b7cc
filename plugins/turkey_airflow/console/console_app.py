"""The console's FastAPI app: the routes of the Models, Version, Audit and validation-report pages
(:mod:`~turkey_airflow.console.console_pages`), promote/rollback and the asset events they send.

Mounted by the plugin at ``/turkey`` inside the Airflow API server, so it shares Airflow's login: every
request is authenticated by Airflow's own auth manager (the JWT cookie the UI sets, or a bearer token)
and authorised against the ``turkey_training`` DAG -- read access to see a page, edit access to promote or
roll back. Data comes from ``ml.registry.Registry()`` (the local artifacts root or ``TURKEY_REGISTRY_URL``);
validation reports from the run folders under the artifacts root.

Errors are pages, never tracebacks: unknown or malformed version 404, a version whose files were deleted
409, a missing or unreadable registry 503, no login 401, no edit right 403. A refused request writes
nothing.

Each request reads the champion pointer once (:func:`~turkey_airflow.console.console_access.open_registry`) and passes the version down to
whatever needs it; compare-and-set in the registry still guards a promotion against a change meanwhile.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from turkey_airflow.console import console_html as H
from turkey_airflow.console.console_access import (
    ANNOUNCE,
    ConsoleError,
    allowed,
    check_confirm,
    check_name,
    check_same_origin,
    editor,
    load_version,
    open_registry,
    read_registry,
    reader,
)
from turkey_airflow.console.console_pages import (
    announce_page,
    audit_page,
    batches_page,
    change_verb,
    confirm_page,
    models_page,
    validation_dir,
    validation_index,
    version_page,
)

log = logging.getLogger(__name__)


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


def emit_champion_events(reg, version: str) -> None:
    """Record the ``turkey_champion_model`` and ``turkey_submission`` events announcing ``version``, with the
    same ``extra`` as the DAG's ``promote`` task (:func:`turkey_airflow.assets.champion_announcement`),
    through Airflow's asset manager (which also queues the downstream DAG runs) -- what the core API's
    ``POST /api/v2/assets/events`` does."""
    from airflow._shared.timezones import timezone
    from airflow.assets.manager import asset_manager
    from airflow.utils.session import create_session

    from turkey_airflow.assets import champion_announcement

    extras = champion_announcement(reg, version)
    with create_session() as session:
        rows = _asset_models(session)
        for asset, extra in extras.items():
            asset_manager.register_asset_change(
                asset=rows[asset], timestamp=timezone.utcnow(), extra=extra, source_is_api=True, session=session
            )


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
        return _html(version_page(reg, info, champ, user.get_name(), allowed(user, "PUT")))

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
        check_same_origin(request)
        check_confirm(token, name, version)
        reg, champ = open_registry()
        load_version(reg, version, champ)
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
        verb = change_verb(reg, version, champ)
        why = " ".join(reason.split())[:300] or f"manual {verb} by {name} via the console"
        action = "rollback" if verb == "roll back" else "promote"
        pointer = change_champion(reg, version, name, why, champ, action)
        announce(reg, version)
        from turkey_airflow.mirror import catch_up_in_background

        catch_up_in_background(reg)  # the MLflow alias follows (when a tracking server is set); never blocks
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
        check_same_origin(request)
        check_confirm(token, name, ANNOUNCE + version)
        reg, champ = open_registry()
        load_version(reg, version, champ)
        _require_champion(champ, version)
        assets_ready()
        announce(reg, version)
        log.info("console: %s announced champion %s again", name, version)
        return RedirectResponse(H.url("/audit", done=version), status_code=303)

    @app.get("/batches", response_class=HTMLResponse)
    def batches(user: Reader):
        reg, champ = open_registry()
        return _html(batches_page(reg, champ, user.get_name()))

    @app.get("/batches/{batch}/{name}")
    def batch_scores(batch: str, name: str, user: Reader):
        from ml.scoring.store import ScoreStore

        reg, _ = open_registry()
        check_name(batch)
        check_name(name.removesuffix(".csv"))
        path = ScoreStore(reg).path(batch, name)
        if not name.endswith(".csv") or not read_registry(reg.fs.isfile, path):
            raise ConsoleError(404, "Not found", f"batch {batch!r} has no scores {name!r}")
        return _file_response(reg, path, "text/csv", download_name=f"{batch}-{name}")

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
        vdir = validation_dir(run_id).resolve()
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


def _require_champion(champ: str | None, version: str) -> None:
    """409 unless ``version`` is the champion (``champ``, as this request read it)."""
    if champ != version:
        raise ConsoleError(
            409,
            "Not the champion",
            f"{version} is not the champion (the champion is {champ or 'none'}); only the champion is announced; "
            "nothing was sent",
        )


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


def announce(reg, version: str) -> None:
    """:func:`emit_champion_events` after the champion changed; a failure is a page saying plainly that the
    champion changed but downstream DAGs were not told, and how to send the events."""
    try:
        emit_champion_events(reg, version)
    except Exception as exc:  # noqa: BLE001 - the change is done; say exactly what is missing
        log.exception("console: %s is the champion but its asset events were not sent", version)
        raise ConsoleError(
            500,
            "Champion changed, events not sent",
            f"{version} is now the champion (recorded in the audit log), but the asset events were "
            f"NOT sent, so downstream DAGs have not been told: {type(exc).__name__}: {exc}",
            _events_hint(version),
        ) from None
