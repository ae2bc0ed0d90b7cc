"""What every console request goes through: Airflow login and DAG rights, confirm tokens, and opening the
registry (checked names, the champion read once, registry failures as pages).

Errors are :class:`ConsoleError` pages, never tracebacks: unknown or malformed version 404, a version whose
files were deleted 409, a missing or unreadable registry 503, no login 401, no edit right 403.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Annotated, Any

from fastapi import Depends, Request

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


def allowed(user, method: str) -> bool:
    """Whether Airflow's auth manager lets ``user`` do ``method`` (``GET`` read, ``PUT`` edit) on the DAG."""
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
    if not allowed(user, "GET"):
        raise ConsoleError(403, "Not allowed", f"user {user.get_name()!r} may not read the {DAG_ID} DAG")
    return user


def editor(user: Annotated[Any, Depends(current_user)]):
    """Dependency: an authenticated user who may edit the ``turkey_training`` DAG (promote / roll back);
    plain ``def`` like :func:`reader`."""
    if not allowed(user, "PUT"):
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


def check_confirm(token: str, user: str, version: str) -> None:
    """403 unless ``token`` is this user's and version's confirm token, issued under 15 minutes ago."""
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


def check_same_origin(request: Request) -> None:
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
            from ml.registry.views import describe

            return read_registry(describe, reg, version, champ)
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


#: Confirm tokens for re-announcing are bound to this prefix + version (not usable as a promote token).
ANNOUNCE = "announce "
