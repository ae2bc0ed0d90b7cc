import pytest

from ml.errors import TurkeyError
from ml.settings import resolve_input, settings


@pytest.mark.parametrize(
    ("name", "value"),
    [("TURKEY_KEEP_REPORTS", "ten"), ("TURKEY_REPORT_MAX_AGE_DAYS", "30d"), ("TURKEY_KEEP_REPORTS", "-3")],
)
def test_a_bad_retention_setting_is_one_line_naming_the_variable(tmp_path, monkeypatch, name, value):
    from airflow.sdk.exceptions import AirflowFailException

    from turkey_airflow import tasks

    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    monkeypatch.setenv(name, value)
    with pytest.raises(TurkeyError, match=rf"^{name}='{value}' is (not a|below)") as exc:
        settings()
    assert "\n" not in str(exc.value)
    monkeypatch.setattr(tasks, "get_current_context", lambda: {"dag_run": type("R", (), {"run_id": "r"})()})
    with pytest.raises(AirflowFailException, match=name):  # the cleanup task fails at once, no retry loop
        tasks.cleanup()


def test_retention_settings_default_when_unset(monkeypatch):

    monkeypatch.delenv("TURKEY_KEEP_REPORTS", raising=False)
    monkeypatch.setenv("TURKEY_REPORT_MAX_AGE_DAYS", "")
    assert settings().keep_reports == 20 and settings().report_max_age_days == 30.0


def test_input_paths_may_not_escape_the_data_root(tmp_path):
    assert resolve_input("landing/train.json", tmp_path) == tmp_path / "landing" / "train.json"
    for bad in ("../etc/passwd", "/etc/passwd", "landing/../../x.json", ""):
        with pytest.raises(TurkeyError):
            resolve_input(bad, tmp_path)
