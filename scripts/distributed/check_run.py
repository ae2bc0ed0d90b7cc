"""REST side of ``make test-distributed`` (:mod:`scripts.distributed.driver`): log in, unpause, trigger, wait,
then assert.

Talks to the Airflow 3 public API only (``/auth/token`` of the Simple auth manager, ``/api/v2``), like a
user or CI would. Assertions:

1. the run of ``turkey_training`` succeeds;
2. ``train`` ran on the gpu worker (hostname) from the ``gpu`` queue, every other task that ran on the
   default worker from the default queue;
3. the run produced asset events for ``turkey_champion_model`` and ``turkey_submission``;
4. every path the tasks handed over by XCom lies under the shared roots (TURKEY_ARTIFACTS_ROOT or
   TURKEY_DATA_ROOT) and exists there, i.e. nothing points into a worker's local scratch space.

With ``--webhook-port`` (the port of the ``turkey_webhook`` connection) it also receives the pipeline's
notifications and runs the human decisions end to end (:func:`human_decisions`): a run that needs approval,
whose short ``run_deadline_minutes`` makes the scheduler's deadline alert fire (the triggerer sends the
notification) while it waits, approved through the HITL REST API; then one rejected. It asserts the
notifications, the task states, ``champion.json`` and the audit entries.

Prints a per-task table and writes a JSON summary (``--summary``). Exit code = number of failed checks
(capped at 1), 2 for a setup error (API never up, DAG never parsed, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)

DAG_ID = "turkey_training"
ASSETS = ("turkey_champion_model", "turkey_submission")


class Setup(Exception):
    """The deployment is not usable: API never up, DAG never parsed, a request refused."""


class WebhookSink:
    """Loopback HTTP receiver of the pipeline's webhook notifications (JSON bodies, kept in order)."""

    def __init__(self, port: int):
        """Listen on 127.0.0.1:``port`` in a daemon thread."""
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    sink.bodies.append(json.loads(raw))
                except ValueError:
                    sink.bodies.append({"unparsable": raw.decode(errors="replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, event: str, run_id: str) -> dict | None:
        """The last notification of ``event`` for ``run_id`` received so far."""
        got = [b for b in self.bodies if b.get("event") == event and b.get("run_id") == run_id]
        return got[-1] if got else None

    def wait(self, event: str, run_id: str, timeout: float) -> dict | None:
        """:meth:`find`, polled for up to ``timeout`` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (got := self.find(event, run_id)) is not None:
                return got
            time.sleep(1)
        return self.find(event, run_id)


class Api:
    """A JSON client of the Airflow 3 REST API (bearer token once logged in)."""

    def __init__(self, base: str):
        """``base``: the API server's URL, e.g. ``http://127.0.0.1:8080``."""
        self.base = base.rstrip("/")
        self.token: str | None = None

    def call(self, method: str, path: str, body=None, params=None, timeout=30):
        """(HTTP status, decoded JSON body or text) of one request; HTTP errors are returned, not raised."""
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def ok(self, method, path, body=None, params=None):
        """The decoded body of a successful request; :class:`Setup` for any HTTP status >= 300."""
        status, payload = self.call(method, path, body, params)
        if status >= 300:
            raise Setup(f"{method} {path} -> HTTP {status}: {payload}")
        return payload



def wait_for(what: str, fn, timeout: float, every: float = 2.0):
    """``fn()``'s first truthy result, polled every ``every`` s (connection errors retried); :class:`Setup`
    after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = exc
        time.sleep(every)
    raise Setup(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last})" if last else ""))


def login(api: Api, user: str, password: str) -> None:
    """Get a JWT from the Simple auth manager and use it for every later request."""
    status, payload = api.call("POST", "/auth/token", {"username": user, "password": password})
    if status not in (200, 201) or "access_token" not in (payload or {}):
        raise Setup(f"POST /auth/token -> HTTP {status}: {payload}")
    api.token = payload["access_token"]


def wait_for_dag(api: Api, timeout: float) -> dict:
    """The DAG's REST record once the dag-processor has parsed it; :class:`Setup` on an import error."""
    def parsed():
        status, payload = api.call("GET", f"/api/v2/dags/{DAG_ID}")
        if status == 200:
            return payload
        _, errors = api.call("GET", "/api/v2/importErrors")
        for err in (errors or {}).get("import_errors", []):
            if "turkey_training" in (err.get("filename") or ""):
                raise Setup(f"the dag-processor could not import {err['filename']}:\n{err.get('stack_trace')}")
        return None

    return wait_for(f"the dag-processor to parse {DAG_ID}", parsed, timeout, every=3)


def walk_strings(value):
    """Every string inside a JSON value (dict values, list items), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from walk_strings(v)


def task_errors(api: Api, run_id: str, ti: dict) -> list[str]:
    """The error lines of a task's log, through the REST API (structured log records)."""
    status, payload = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                               f"{ti['task_id']}/logs/{ti['try_number']}", params={"full_content": "true"})
    if status != 200 or not isinstance(payload, dict):
        return [f"(log not available: HTTP {status})"]
    out = []
    for rec in payload.get("content") or []:
        if isinstance(rec, dict) and rec.get("level") in ("error", "critical"):
            detail = rec.get("error_detail") or []
            exc = "; ".join(f"{d.get('exc_type')}: {d.get('exc_value')}" for d in detail if isinstance(d, dict))
            out.append((rec.get("event") or "") + (f" -- {exc}" if exc else ""))
    return out[-5:] or ["(no error records in the log)"]


def trigger_run(api: Api, conf: dict) -> str:
    run = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
    log.info(f"triggered {run['dag_run_id']} with conf {json.dumps(conf)}")
    return run["dag_run_id"]


def wait_run(api: Api, run_id: str, timeout: float) -> tuple[str | None, dict]:
    """Poll until the run finishes; returns its state and {task_id: task instance}."""
    end, state, tis = time.monotonic() + timeout, None, []
    q = urllib.parse.quote(run_id)
    while time.monotonic() < end:
        try:
            state = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["state"]
            tis = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances", params={"limit": 100})[
                "task_instances"]
        except (Setup, OSError) as exc:
            log.info(f"poll error (will retry): {exc}")
        if state in ("success", "failed"):
            break
        time.sleep(3)
    return state, {t["task_id"]: t for t in tis}


def respond(api: Api, run_id: str, option: str, comment: str) -> tuple[int, object]:
    """Answer the run's approval through the public HITL REST API, as the logged-in user."""
    return api.call("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                    "approve_promotion/-1/hitlDetails",
                    {"chosen_options": [option], "params_input": {"comment": comment}})


def human_decisions(api: Api, hook: WebhookSink, check, conf: dict, user: str, timeout: float) -> None:
    """Approve one run and reject another through the HITL REST API; check notifications and records."""
    from ml.registry import Registry
    from ml.registry.views import version_rows

    reg = Registry()  # the shared artifacts root (TURKEY_ARTIFACTS_ROOT), as the workers see it
    before = reg.champion_version()

    # -- approve; the run's 0.5-minute deadline passes while it runs / waits for the human
    run_id = trigger_run(api, {**conf, "require_approval": True, "force_promote": True, "run_deadline_minutes": 0.5})
    asked = hook.wait(event="approval", run_id=run_id, timeout=timeout)
    version = (asked or {}).get("details", {}).get("version")
    check("approval request notified with version, metrics and link",
          bool(version) and "required_actions" in asked.get("link", "") and asked["details"].get("challenger_val_auc"),
          f"version={version} link={(asked or {}).get('link')}")
    overdue = hook.wait(event="run_overdue", run_id=run_id, timeout=180)
    check("run deadline (DeadlineAlert, RunDeadline param 0.5 min) notified by the triggerer",
          overdue is not None and "unfinished" in overdue.get("title", ""), (overdue or {}).get("title", "none"))
    status, answer = respond(api, run_id, "Approve", "approved by the distributed test")
    check("Approve through PATCH .../hitlDetails", status == 200, f"HTTP {status}: {str(answer)[:200]}")
    state, tis = wait_run(api, run_id, timeout)
    check("approved run promoted its version",
          state == "success" and tis.get("promote", {}).get("state") == "success" and reg.champion_version() == version,
          f"state={state} promote={tis.get('promote', {}).get('state')} champion={reg.champion_version()}")
    approval = (reg.champion() or {}).get("approval") or {}
    entry = next((e for e in reversed(reg.audit()) if e.get("action") == "promote" and e.get("version") == version), {})
    check("champion.json and the audit entry name the approver, time and comment",
          approval.get("by") == user and approval.get("decision") == "approved" and approval.get("at")
          and approval.get("comment") == "approved by the distributed test" and entry.get("approval") == approval,
          json.dumps(approval))
    promoted = hook.wait(event="promoted", run_id=run_id, timeout=30)
    check("promotion notified", promoted is not None and promoted["details"].get("approved_by") == user,
          (promoted or {}).get("title", "none"))

    # -- reject
    run_id = trigger_run(api, {**conf, "require_approval": True, "force_promote": True, "seed": 7})
    asked = hook.wait(event="approval", run_id=run_id, timeout=timeout)
    rejected_version = (asked or {}).get("details", {}).get("version")
    status, answer = respond(api, run_id, "Reject", "not this one")
    check("Reject through PATCH .../hitlDetails", asked is not None and status == 200, f"HTTP {status}")
    state, tis = wait_run(api, run_id, timeout)
    states = {t: tis.get(t, {}).get("state") for t in ("approve_promotion", "promote")}
    check("rejected run: approval and promote skipped, champion unchanged",
          state == "success" and states == {"approve_promotion": "skipped", "promote": "skipped"}
          and reg.champion_version() == version, f"state={state} {states} champion={reg.champion_version()}")
    entry = next((e for e in reg.audit() if e.get("action") == "rejected" and e.get("version") == rejected_version), {})
    row = next((r for r in version_rows(reg) if r["version"] == rejected_version), {})
    check("audit 'rejected' entry with user, time and comment; the version lists as rejected",
          entry.get("user") == user and (entry.get("approval") or {}).get("comment") == "not this one"
          and entry.get("at") and row.get("gate") == "rejected", json.dumps(entry)[:300])
    log.info(f"human decisions: champion before {before}, approved {version}, rejected {rejected_version}")


def main() -> int:
    """Run the checks against a started deployment; exit status as the module docstring says."""
    logging.basicConfig(format="[check %(asctime)s] %(message)s", datefmt="%H:%M:%S", level=logging.INFO,
                        stream=sys.stdout)
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", required=True)
    ap.add_argument("--conf", default="{}")
    ap.add_argument("--gpu-host", required=True)
    ap.add_argument("--default-host", required=True)
    ap.add_argument("--timeout", type=float, default=480)
    ap.add_argument("--startup-timeout", type=float, default=180)
    ap.add_argument("--summary")
    ap.add_argument("--webhook-port", type=int, help="receive notifications here and test human decisions")
    args = ap.parse_args()
    hook = WebhookSink(args.webhook_port) if args.webhook_port else None

    api = Api(args.api)
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append((name, bool(ok), detail))
        log.info(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))

    t_start = time.monotonic()
    try:
        wait_for("the API server", lambda: api.call("GET", "/api/v2/monitor/health")[0] == 200, args.startup_timeout)
        login(api, args.user, args.password)
        log.info("logged in to the API server (Simple auth manager JWT)")
        wait_for_dag(api, args.startup_timeout)
        api.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        log.info(f"unpaused {DAG_ID}")
        run = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": json.loads(args.conf)})
    except Setup as exc:
        log.info(f"SETUP ERROR: {exc}")
        return 2
    run_id = run["dag_run_id"]
    log.info(f"triggered {run_id} with conf {args.conf}")

    # ---- wait for the run, reporting task state changes
    t_trigger = time.monotonic()
    seen: dict[str, str | None] = {}
    state = run.get("state")
    deadline = t_trigger + args.timeout
    tis: list[dict] = []
    while time.monotonic() < deadline:
        try:
            state = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}")["state"]
            tis = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances",
                         params={"limit": 100})["task_instances"]
        except (Setup, OSError) as exc:
            log.info(f"poll error (will retry): {exc}")
            time.sleep(3)
            continue
        for ti in tis:
            if seen.get(ti["task_id"]) != ti["state"]:
                seen[ti["task_id"]] = ti["state"]
                where = f" on {ti['hostname']}" if ti.get("hostname") else ""
                log.info(f"  {ti['task_id']}: {ti['state']}{where}")
        if state in ("success", "failed"):
            break
        time.sleep(3)
    run_seconds = time.monotonic() - t_trigger
    check("dag run succeeded", state == "success", f"state={state} after {run_seconds:.0f}s")

    # ---- per-task table
    order = ["validate", "split_and_pad", "train", "evaluate", "accuracy_gate", "register", "decide",
             "approve_promotion", "promote"]
    tis.sort(key=lambda t: (order.index(t["task_id"]) if t["task_id"] in order else 99, t["task_id"]))
    print()
    print(f"{'task':<18} {'state':<15} {'queue':<8} {'hostname':<22} {'try':>3} {'duration':>9}")
    print("-" * 80)
    for ti in tis:
        dur = f"{ti['duration']:.1f}s" if ti.get("duration") is not None else "-"
        print(f"{ti['task_id']:<18} {ti['state'] or '-':<15} {ti['queue'] or '-':<8} {ti['hostname'] or '-':<22} "
              f"{ti['try_number']:>3} {dur:>9}")
    print()
    for ti in tis:
        if ti.get("state") == "failed":
            for line in task_errors(api, run_id, ti):
                log.info(f"  {ti['task_id']} (try {ti['try_number']}): {line}")

    # ---- where each task ran
    by_id = {t["task_id"]: t for t in tis}
    train = by_id.get("train", {})
    check("train ran on the gpu worker from the gpu queue",
          train.get("state") == "success" and train.get("queue") == "gpu" and train.get("hostname") == args.gpu_host,
          f"queue={train.get('queue')} hostname={train.get('hostname')} state={train.get('state')}")
    ran = [t for t in tis if t["task_id"] != "train" and t.get("hostname")]
    wrong = [f"{t['task_id']} (queue={t['queue']}, host={t['hostname']})" for t in ran
             if t.get("queue") == "gpu" or t.get("hostname") != args.default_host]
    check("the other tasks ran on the default worker from the default queue",
          bool(ran) and not wrong, ", ".join(wrong) or f"{len(ran)} task(s) on {args.default_host}")
    approval = by_id.get("approve_promotion", {})
    check("approve_promotion (HITL) was skipped by default", approval.get("state") == "skipped",
          f"state={approval.get('state')}")

    # ---- asset events
    try:
        events = api.ok("GET", "/api/v2/assets/events",
                        params={"source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100})["asset_events"]
    except Setup as exc:
        events = []
        log.info(str(exc))
    names = {e.get("name") for e in events}
    for asset in ASSETS:
        ev = next((e for e in events if e.get("name") == asset), None)
        check(f"asset event for {asset}", ev is not None and ev.get("source_task_id") == "promote",
              f"extra={json.dumps(ev.get('extra'))[:120]}" if ev else f"events of this run: {sorted(names)}")

    # ---- shared storage: XCom carries paths under the shared roots only
    roots = [os.path.realpath(os.environ[v]) for v in ("TURKEY_ARTIFACTS_ROOT", "TURKEY_DATA_ROOT") if os.environ.get(v)]
    bad, n_paths = [], 0
    for ti in tis:
        if ti.get("state") != "success":
            continue
        status, x = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                             f"{ti['task_id']}/xcomEntries/return_value")
        if status != 200:
            continue
        value = x.get("value")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        for s in walk_strings(value):
            if not s.startswith("/"):
                continue
            n_paths += 1
            real = os.path.realpath(s)
            # the cleanup task removes the run's intermediates (npz arrays, candidate/) after success
            removed = real.endswith(".npz") or os.path.basename(real) in ("candidate", "champion")
            if not any(real == r or real.startswith(r + os.sep) for r in roots) or not (
                os.path.exists(real) or removed
            ):
                bad.append(f"{ti['task_id']}: {s}")
    check("XCom paths all lie on the shared volumes and exist (or were intermediates cleaned up)",
          n_paths > 0 and not bad,
          "; ".join(bad[:5]) or f"{n_paths} path(s) checked")

    if hook is not None:
        check("promotion of the first run notified (webhook)", hook.wait("promoted", run_id, 30) is not None,
              f"{len(hook.bodies)} notification(s) so far")
        if state == "success":
            try:
                human_decisions(api, hook, check, json.loads(args.conf), args.user, args.timeout)
            except Setup as exc:
                check("human decisions end to end", False, str(exc))

    failed = [c for c in checks if not c[1]]
    if args.summary:
        with open(args.summary, "w") as fh:
            json.dump({"run_id": run_id, "state": state, "run_seconds": round(run_seconds, 1),
                       "since_start_seconds": round(time.monotonic() - t_start, 1),
                       "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks],
                       "task_instances": [{k: t.get(k) for k in ("task_id", "state", "queue", "hostname",
                                                                  "try_number", "duration")} for t in tis]},
                      fh, indent=2)
    log.info(f"{len(checks) - len(failed)} of {len(checks)} checks passed; run took {run_seconds:.0f}s from trigger")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
