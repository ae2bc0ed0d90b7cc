"""``scripts/ui.py`` (make ui) without starting Airflow: the per-AIRFLOW_HOME secrets file is private from its creation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path


def test_ui_secrets_are_created_private_and_reused(tmp_path, monkeypatch):
    from scripts import ui

    # the file must be created 0600, not chmod-ed after the secrets were written with the umask's mode
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    old = os.umask(0o022)
    try:
        env = ui.ui_env(8999, tmp_path)
    finally:
        os.umask(old)
    secrets_file = tmp_path / "ui-secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    keys = json.loads(secrets_file.read_text())
    assert env["AIRFLOW__API__SECRET_KEY"] == keys["secret_key"] and len(keys["jwt_secret"]) >= 64
    assert ui.ui_env(8999, tmp_path)["AIRFLOW__API_AUTH__JWT_SECRET"] == keys["jwt_secret"]  # same pair next time


