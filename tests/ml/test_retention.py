import os
from pathlib import Path


def test_retention_keeps_the_newest_runs_and_drops_old_ones(tmp_path):
    import time

    from ml.retention import prune_runs, remove_temp_files

    runs = tmp_path / "runs"
    now = time.time()
    for i in range(6):
        d = runs / f"run{i}" / "validation"
        d.mkdir(parents=True)
        (d / "report.html").write_text("x" * 100)
        os.utime(runs / f"run{i}", (now - (6 - i) * 86400, now - (6 - i) * 86400))  # run5 newest
    out = prune_runs(runs, keep=3, max_age_days=0, protect=[runs / "run0"], now=now)
    assert sorted(Path(p).name for p in out["removed"]) == ["run1", "run2"] and out["freed_bytes"] == 200
    out = prune_runs(runs, keep=10, max_age_days=2.5, protect=[], now=now)
    assert sorted(Path(p).name for p in out["removed"]) == ["run0", "run3"]
    assert sorted(p.name for p in runs.iterdir()) == ["run4", "run5"]
    old = runs / "run4" / ".tmp-1-2-x.npz"
    old.write_text("half")
    os.utime(old, (now - 7200, now - 7200))
    young = runs / "run5" / ".tmp-3-4-y.npz"
    young.write_text("writing")
    assert remove_temp_files(runs, 3600, now=now) == [str(old)] and young.exists()
