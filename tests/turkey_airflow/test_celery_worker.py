"""turkey_airflow.celery_worker: Airflow's Celery config unchanged, and imports warmed on ``worker_init``."""

from __future__ import annotations

import logging
import os
import sys

from celery.signals import worker_init

from turkey_airflow import celery_worker


def test_the_config_is_airflows_default():
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    assert celery_worker.CELERY_CONFIG == DEFAULT_CELERY_CONFIG


def test_worker_init_imports_the_warm_modules_and_survives_a_missing_one(tmp_path, monkeypatch, caplog):
    (tmp_path / "turkey_warm_probe.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "turkey_warm_probe", raising=False)
    monkeypatch.setattr(celery_worker, "WARM_IMPORTS", ("turkey_no_such_module", "turkey_warm_probe"))
    monkeypatch.delenv("GX_ANALYTICS_ENABLED", raising=False)
    caplog.set_level(logging.INFO, logger=celery_worker.__name__)

    worker_init.send(sender=None)  # what a Celery worker does before it starts its pool

    assert sys.modules["turkey_warm_probe"].LOADED
    assert "could not pre-import turkey_no_such_module" in caplog.text
    assert "pre-imported turkey_warm_probe" in caplog.text
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"  # the library environment is set before importing
