"""The MLflow mirror (optional: ``pip install -e '.[mlflow]'``, docs/mlflow.md): the registry as MLflow shows it.

Our registry is the truth; the mirror only copies it and never decides. :func:`sync` makes the tracking
server (``MLFLOW_TRACKING_URI``) show every registered version as one run of the experiment
``<TURKEY_MLFLOW_EXPERIMENT>-training`` -- params, per-epoch metrics as steps, the summary metrics, the
gate decision, ``metrics.json``, ``history.json``, ``curves.png``, the manifest and the model (Keras
flavour, with a signature and an input example), tagged with dag_id, run_id and our version -- and as one
version of the registered model ``<TURKEY_MLFLOW_MODEL_NAME>``, whose ``champion`` alias names the version
our ``champion.json`` names. Every scoring of a batch becomes one run of ``<experiment>-scoring`` with its
scores. It is idempotent: what is already mirrored is looked up (by tags), not logged again; a run cut off
half-way (no ``turkey.mirror=complete`` tag, written last) is deleted and logged anew.

:func:`catch_up` is what the pipeline calls after a change (the training DAG's ``mirror_to_mlflow`` task,
a scoring run, ``turkey models promote``, the console's promote): :func:`sync` in a child process, killed
after ``TURKEY_MLFLOW_TIMEOUT_S`` -- an MLflow client retries for minutes, a thread cannot be stopped -- so
MLflow down or slow costs at most that long and never raises. The lag is recorded in
``<registry>/mlflow-mirror.json`` and logged once (as a warning; again only as info until it is over);
the next catch-up or ``turkey models sync-mlflow`` brings MLflow up to date.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import posixpath
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.errors import RegistryBusy, TurkeyError
from ml.registry.storage import json_bytes
from ml.settings import settings

log = logging.getLogger(__name__)

STATE_NAME = "mlflow-mirror.json"
LOCK_NAME = ".mlflow-mirror.lock"
#: Written last on a mirrored run: a run without it was cut off and is logged again.
COMPLETE_TAG, COMPLETE = "turkey.mirror", "complete"
ALIAS = "champion"
#: The MLflow UI shows an experiment of this kind as model training (not GenAI evaluation).
EXPERIMENT_KIND = "mlflow.experimentKind"
#: Run artifacts copied from a version folder (when present).
VERSION_ARTIFACTS = ("metrics.json", "history.json", "curves.png", "profile.json", "manifest.json")


def tracking_uri() -> str | None:
    """``MLFLOW_TRACKING_URI``, or None: the mirror is off."""
    return os.environ.get("MLFLOW_TRACKING_URI", "").strip() or None


def installed() -> bool:
    """Whether the ``mlflow`` package is importable (the ``mlflow`` extra)."""
    return importlib.util.find_spec("mlflow") is not None


# ---------------------------------------------------------------------------------------------- catch-up
def catch_up(registry, timeout_s: float | None = None) -> dict:
    """Bring MLflow up to date with ``registry`` within ``timeout_s`` (default ``TURKEY_MLFLOW_TIMEOUT_S``);
    never raises. Returns ``{"status": "off" | "not installed" | "synced" | "lagging", ...}``."""
    if not tracking_uri():
        return {"status": "off"}
    if not installed():
        log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed (pip install -e '.[mlflow]'); "
                    "the registry is not mirrored")
        return {"status": "not installed"}
    timeout_s = settings().mlflow_timeout_s if timeout_s is None else timeout_s
    cmd = [sys.executable, "-m", "ml.cli", "models", "--artifacts", registry.root, "sync-mlflow", "--json"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return _lagging(registry, f"cannot start the mirror ({exc})")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return _lagging(registry, f"MLflow at {tracking_uri()} did not finish within {timeout_s:g} s")
    if proc.returncode != 0:
        reason = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1].removeprefix("error: ")
        return _lagging(registry, reason)
    try:
        summary = json.loads(out)
    except ValueError:
        summary = {}
    previous = _read_state(registry)
    _write_state(registry, {"status": "synced", "tracking_uri": tracking_uri(), "summary": summary})
    if previous.get("status") == "lagging":
        log.warning("MLflow caught up with the registry (it had lagged since %s)", previous.get("since"))
    return {"status": "synced", **summary}


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def _lagging(registry, reason: str) -> dict:
    """Record and log (once per lag: a warning first, info while it lasts) that MLflow is behind."""
    from ml.registry import now_iso

    previous = _read_state(registry)
    since = previous.get("since") if previous.get("status") == "lagging" else now_iso()
    say = log.info if previous.get("status") == "lagging" else log.warning
    say("MLflow is behind the registry (%s); the registry is unaffected; the next run or "
        "`turkey models sync-mlflow` catches up", reason)
    _write_state(registry, {"status": "lagging", "since": since, "reason": reason, "tracking_uri": tracking_uri()})
    return {"status": "lagging", "reason": reason, "since": since}


def state_path(registry) -> str:
    """The fs path of ``mlflow-mirror.json`` (the last catch-up's outcome) in ``registry``."""
    return registry.storage.path(STATE_NAME)


def _read_state(registry) -> dict:
    try:
        state = registry.storage.read_json(state_path(registry))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _write_state(registry, state: dict) -> None:
    from ml.registry import now_iso

    try:
        registry.storage.write_bytes(state_path(registry), json_bytes({**state, "at": now_iso()}))
    except OSError as exc:  # the state is a convenience; the mirror's outcome is logged anyway
        log.info("could not record the MLflow mirror state: %s", exc)


# ---------------------------------------------------------------------------------------------- sync
def sync(registry) -> dict:
    """Mirror ``registry`` into MLflow now (one sync at a time per registry). Returns what it did:
    ``runs_logged``, ``model_versions_created``, ``scoring_runs_logged``, ``replaced`` (half-logged runs
    logged anew) and ``champion`` (``{"version", "model_version"}`` or None). A TurkeyError, one line,
    when MLflow is off, not installed or fails."""
    from ml.registry.lock import FileLock

    uri = tracking_uri()
    if not uri:
        raise TurkeyError("MLFLOW_TRACKING_URI is not set; set it to the tracking server's URL to mirror")
    if not installed():
        raise TurkeyError("mlflow is not installed; pip install -e '.[mlflow]' (or make install-mlflow)")
    if registry.local:
        lock_path = os.path.join(registry.base, LOCK_NAME)
    else:  # one machine's syncs are serialised; see docs/mlflow.md for several machines
        key = hashlib.sha256(registry.root.encode()).hexdigest()[:16]
        lock_path = os.path.join(tempfile.gettempdir(), f"turkey-mlflow-{key}.lock")
    try:
        with FileLock(lock_path, settings().mlflow_timeout_s):
            return _Mirror(registry, uri).run()
    except RegistryBusy:
        raise TurkeyError(f"another MLflow sync of {registry.root} is running (lock {lock_path}); "
                          "try again when it is done") from None
    except TurkeyError:
        raise
    except Exception as exc:  # noqa: BLE001 - any MLflow or network failure: one line, the registry untouched
        raise TurkeyError(f"MLflow at {uri}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}") \
            from None


def describe(done: dict) -> str:
    """One line of what a :func:`sync` did."""
    champ = done.get("champion")
    return (f"MLflow {tracking_uri()}: {done['runs_logged']} run(s), {done['model_versions_created']} model "
            f"version(s), {done['scoring_runs_logged']} scoring run(s) logged, {done['replaced']} half-logged "
            "replaced; alias champion -> " + (f"version {champ['model_version']} ({champ['version']})" if champ
                                               else "none"))


def _flat(prefix: str, value, out: dict) -> dict:
    """``{"recipe.epochs": 60, ...}``: nested dicts flattened with dots (params and metrics)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


def input_example():
    """Two padded demo clips, ``(2, 10, 128)`` float32: the model's input example and signature."""
    import numpy as np

    from ml.data import pad_frames
    from ml.demo import make_records

    records = make_records(2, np.random.default_rng(0), with_labels=False, taken=set())
    frames = np.concatenate([np.asarray(r["audio_embedding"], dtype=np.uint8) for r in records])
    return pad_frames(frames, [len(r["audio_embedding"]) for r in records]).astype(np.float32)


class _Mirror:
    """One sync: look up what MLflow has, log what it lacks, set the alias."""

    def __init__(self, registry, uri: str):
        import mlflow
        import mlflow.keras  # noqa: F401  (the flavour, loaded on demand otherwise)
        from mlflow.tracking import MlflowClient

        self.registry, self.mlflow = registry, mlflow
        mlflow.set_tracking_uri(uri)
        self.client = MlflowClient(uri)
        s = settings()
        self.model_name = s.mlflow_model_name
        self.training = self._experiment(f"{s.mlflow_experiment}-training")
        self.scoring = self._experiment(f"{s.mlflow_experiment}-scoring")
        from ml.scoring.store import ScoreStore

        self.store = ScoreStore(registry)
        self.work = Path(tempfile.mkdtemp(prefix="turkey-mlflow-"))
        self.done = {"runs_logged": 0, "model_versions_created": 0, "scoring_runs_logged": 0, "replaced": 0}

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(name, tags={EXPERIMENT_KIND: "custom_model_development"})

    def run(self) -> dict:
        import shutil

        try:
            runs = self._runs(self.training, "turkey.version")
            by_run = self._model_versions()
            numbers = {}
            for version in self.registry.versions():
                run = runs.get(version) or self._log_version(version)
                numbers[version] = by_run.get(run.info.run_id) or self._create_model_version(version, run)
            self._set_alias(numbers)
            scoring = self._runs(self.scoring, "turkey.scoring")
            for key, record, published in self._scorings():
                run = scoring.get(key) or self._log_scoring(key, record)
                if run.data.tags.get("turkey.published") != str(published).lower():
                    self.client.set_tag(run.info.run_id, "turkey.published", str(published).lower())
            return self.done
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _runs(self, experiment_id: str, key_tag: str) -> dict:
        """The complete runs of an experiment by their key tag; half-logged ones are deleted."""
        out, token = {}, None
        while True:
            page = self.client.search_runs([experiment_id], max_results=1000, page_token=token)
            for run in page:
                key = run.data.tags.get(key_tag)
                if run.data.tags.get(COMPLETE_TAG) != COMPLETE or key is None or key in out:
                    log.info("deleting half-logged MLflow run %s (%s)", run.info.run_id, key)
                    self.client.delete_run(run.info.run_id)
                    self.done["replaced"] += 1
                else:
                    out[key] = run
            token = page.token
            if not token:
                return out

    def _local(self, path: str) -> Path:
        """A local copy of a registry file (the file itself when the registry is local)."""
        if self.registry.local:
            return Path(path)
        dest = self.work / hashlib.sha256(path.encode()).hexdigest()[:16] / posixpath.basename(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.registry.fs.get_file(path, str(dest))
        return dest

    def _log_version(self, version: str):
        from mlflow.entities import Metric, Param

        reg, m = self.registry, self.registry.manifest(version)
        metrics = m.get("metrics") or {}
        tags = {"turkey.version": version, "dag_id": str(m.get("dag_id")), "run_id": str(m.get("run_id")),
                "git_commit": str(m.get("git_commit")), "turkey.gate": str((m.get("gate") or {}).get("decision")),
                "turkey.train_sha256": str((m.get("inputs") or {}).get("train_sha256")),
                "mlflow.source.name": "turkey_training", "mlflow.runName": version}
        end = _ms(m.get("created_at"))  # the run's times: its training, which ended when the manifest was made
        start = end - int(1000 * metrics["train_seconds"]) if end and _number(metrics.get("train_seconds")) else end
        run = self.client.create_run(self.training, run_name=version, tags=tags, start_time=start)
        rid = run.info.run_id
        params = _flat("", {**(m.get("params") or {}), "recipe": metrics.get("recipe") or {},
                            "inputs": m.get("inputs") or {}}, {})
        self.client.log_batch(rid, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
        history_path, now, steps = reg.version_path(version, "history.json"), int(time.time() * 1000), []
        if reg.storage.isfile(history_path):  # Keras' per-epoch lists as steps, named apart from the summary
            for name, values in reg.storage.read_json(history_path).items():
                values = values if isinstance(values, list) else [values]
                steps += [Metric(f"epoch_{name}", float(v), now, i) for i, v in enumerate(values) if _number(v)]
        summary = {k: v for k, v in _flat("", {k: v for k, v in metrics.items() if k != "recipe"}, {}).items()
                   if _number(v)}
        steps += [Metric(k, float(v), now, 0) for k, v in summary.items()]
        for start in range(0, len(steps), 900):
            self.client.log_batch(rid, metrics=steps[start:start + 900])
        for name in VERSION_ARTIFACTS:
            if reg.storage.isfile(reg.version_path(version, name)):
                self.client.log_artifact(rid, str(self._local(reg.version_path(version, name))))
        self.client.log_dict(rid, m.get("gate") or {}, "decision.json")
        model_uri = self._log_model(rid, Path(reg.fetch_model(version, self.work)))
        self.client.set_tag(rid, "turkey.model_uri", model_uri)
        self.client.set_tag(rid, COMPLETE_TAG, COMPLETE)
        self.client.set_terminated(rid, "FINISHED", end_time=end)
        self.done["runs_logged"] += 1
        log.info("MLflow run %s for version %s", rid, version)
        return self.client.get_run(rid)

    def _log_model(self, run_id: str, model_file: Path) -> str:
        """Log the Keras model (flavour ``keras``, signature, input example) as the run's logged model;
        returns its ``models:/<model id>`` URI. Saved to a folder first, then uploaded: ``log_model`` with
        an input example fails in MLflow 3.17's Keras flavour (it writes the example before creating the
        model folder)."""
        import keras
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import infer_signature

        import ml.model  # noqa: F401  (registers AttentionPooling)
        from ml.manifest import package_versions

        model = keras.models.load_model(model_file, compile=False)
        example = input_example()
        signature = infer_signature(example, model.predict(example, verbose=0))
        pins = package_versions(("keras", "tensorflow-cpu", "numpy"))
        folder = self.work / f"model-{run_id}"
        folder.mkdir(parents=True)
        self.mlflow.keras.save_model(model, str(folder), signature=signature, input_example=example,
                                     pip_requirements=[f"{k}=={v}" for k, v in pins.items()])
        logged = self.client.create_logged_model(self.training, name="model", source_run_id=run_id)
        self.client.log_model_artifacts(logged.model_id, str(folder))
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return f"models:/{logged.model_id}"

    def _model_versions(self) -> dict:
        """``{run id: model version}`` of the registered model (created here when it does not exist yet)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name, description="Mirrored from the turkey-pipeline registry; the champion alias "
                                             "follows champion.json there.")
        out, token = {}, None
        while True:
            page = self.client.search_model_versions(f"name='{self.model_name}'", page_token=token)
            out.update({mv.run_id: mv.version for mv in page})
            token = page.token
            if not token:
                return out

    def _create_model_version(self, version: str, run) -> str:
        """A model version for ``run``'s logged model (found again by its run id next time)."""
        uri = run.data.tags["turkey.model_uri"]
        mv = self.client.create_model_version(self.model_name, uri, run_id=run.info.run_id,
                                              tags={"turkey.version": version}, model_id=uri.split("/")[-1])
        self.done["model_versions_created"] += 1
        return mv.version

    def _set_alias(self, numbers: dict) -> None:
        from mlflow.exceptions import MlflowException

        champion = self.registry.champion_version()
        self.done["champion"] = None
        if champion is None or champion not in numbers:
            try:
                self.client.delete_registered_model_alias(self.model_name, ALIAS)
            except MlflowException:
                pass
            return
        try:
            current = self.client.get_model_version_by_alias(self.model_name, ALIAS).version
        except MlflowException:
            current = None
        if str(current) != str(numbers[champion]):
            self.client.set_registered_model_alias(self.model_name, ALIAS, numbers[champion])
            log.info("MLflow alias %s@%s -> version %s (%s)", self.model_name, ALIAS, numbers[champion], champion)
        self.done["champion"] = {"version": champion, "model_version": str(numbers[champion])}

    def _scorings(self):
        """``(key, record, published)`` of every scoring in the registry's ``scores/`` folder."""
        store = self.store
        for batch in store.batches():
            latest = store.latest(batch) or {}
            for record in store.history(batch):
                key = f"{batch}/{record['version']}/{str(record.get('input_sha256'))[:16]}"
                published = (latest.get("version"), latest.get("input_sha256")) == (record["version"],
                                                                                    record.get("input_sha256"))
                yield key, {**record, "batch": batch}, published

    def _log_scoring(self, key: str, record: dict):
        from mlflow.entities import Metric, Param

        store, batch, version = self.store, record["batch"], record["version"]
        tags = {"turkey.scoring": key, "turkey.batch": batch, "turkey.version": version,
                "run_id": str(record.get("run_id")), "mlflow.runName": f"{batch} by {version}"}
        run = self.client.create_run(self.scoring, run_name=f"{batch} by {version}", tags=tags,
                                     start_time=_ms(record.get("scored_at")))
        rid, at = run.info.run_id, _ms(record.get("scored_at")) or int(time.time() * 1000)
        numbers = {k: v for k, v in _flat("", {"rows": record.get("rows"), "skew": record.get("skew") or {}},
                                          {}).items() if _number(v)}
        self.client.log_batch(
            rid, params=[Param(k, str(v)) for k, v in
                         {"batch": batch, "version": version, "input_sha256": record.get("input_sha256")}.items()],
            metrics=[Metric(k, float(v), at, 0) for k, v in numbers.items()])
        csv_path = store.path(batch, f"{version}.csv")
        if self.registry.storage.isfile(csv_path):
            self.client.log_artifact(rid, str(self._local(csv_path)), "scores")
        self.client.log_dict(rid, record, "scoring.json")
        self.client.set_tag(rid, COMPLETE_TAG, COMPLETE)
        self.client.set_terminated(rid, "FINISHED", end_time=_ms(record.get("scored_at")))
        self.done["scoring_runs_logged"] += 1
        return self.client.get_run(rid)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _ms(iso: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 time (``...Z``); None when absent or unreadable."""
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
