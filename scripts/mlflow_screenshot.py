"""docs/img/mlflow.png: the MLflow UI showing a mirrored run and the ``champion`` alias, taken with the Chromium
set-up of the UI tests (Debian's chromium, Playwright's Python client; no browser download).

    .venv-mlflow/bin/python -m scripts.mlflow_screenshot --registry artifacts [--out docs/img/mlflow.png]

Starts its own tracking server on a free loopback port (data in a temporary folder), mirrors the registry
into it (``turkey models sync-mlflow``), then photographs the registered model's page (versions, the
``@champion`` alias) and the champion's run (metrics, params, tags) and stacks the two pictures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.mlflow_server import start
from scripts.procs import free_port, stop_all

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    """Mirror ``--registry`` into a fresh server and write the stacked screenshot to ``--out``."""
    from mlflow.tracking import MlflowClient
    from PIL import Image
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", required=True)
    p.add_argument("--out", default=str(REPO / "docs" / "img" / "mlflow.png"))
    a = p.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="turkey-mlflow-shot-"))
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start(port, folder)
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        subprocess.run([sys.executable, "-m", "ml.cli", "models", "--artifacts", a.registry, "sync-mlflow"],
                       env=env, check=True, cwd=REPO)
        from ml.settings import settings

        name = settings().mlflow_model_name
        champion = MlflowClient(uri).get_model_version_by_alias(name, "champion")
        exp_id = MlflowClient(uri).get_run(champion.run_id).info.experiment_id
        shots = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"))
            page = browser.new_page(viewport={"width": 1400, "height": 640})
            page.goto(uri)
            page.wait_for_load_state("load")
            for label in ("Model training",):  # the classic view, not GenAI; best effort (UI versions differ)
                try:
                    page.get_by_text(label, exact=True).first.click(timeout=10_000)
                except Exception:  # noqa: BLE001
                    print(f"note: no {label!r} switch in this MLflow UI")
            for i, url in enumerate([f"{uri}/#/models/{name}",
                                     f"{uri}/#/experiments/{exp_id}/runs/{champion.run_id}"]):
                page.goto(url)
                page.wait_for_load_state("load")  # the UI polls: never network-idle
                page.wait_for_timeout(6000)
                try:  # the assistant side panel covers the page
                    page.locator("[aria-label='Close']").last.click(timeout=3000)
                    page.wait_for_timeout(500)
                except Exception:  # noqa: BLE001
                    pass
                shot = folder / f"shot-{i}.png"
                page.screenshot(path=str(shot))
                shots.append(Image.open(shot))
            browser.close()
        out = Image.new("RGB", (max(s.width for s in shots), sum(s.height for s in shots)), "white")
        y = 0
        for s in shots:
            out.paste(s, (0, y))
            y += s.height
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        out.save(a.out, optimize=True)
        print(f"wrote {a.out}")
    finally:
        stop_all([server])
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
