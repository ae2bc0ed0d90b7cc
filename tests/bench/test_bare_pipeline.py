"""bench.bare_pipeline end to end on tiny demo data, one epoch, in process."""

from __future__ import annotations

import csv

from bench import bare_pipeline, common


def test_one_epoch_on_tiny_data_writes_a_submission_and_a_result_line(tmp_path, capsys):
    from ml.demo import generate

    files = generate(tmp_path / "data", train_size=60, test_size=12, seed=0)
    assert bare_pipeline.main(["--train", files["train"], "--test", files["test"], "--out", str(tmp_path / "o"),
                               "--epochs", "1"]) == 0
    r = common.parse_result(capsys.readouterr().out)
    assert r["epochs_run"] == 1 and 0 <= r["val_auc"] <= 1 and r["times"]["fit"] > 0
    assert set(r["times"]) == {"import_ml", "read_json", "split_pad", "import_tf", "fit", "build_and_fit", "score_and_write"}
    with open(tmp_path / "o" / "submission.csv") as fh:
        assert len(list(csv.reader(fh))) == 13
