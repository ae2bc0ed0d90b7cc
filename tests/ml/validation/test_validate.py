"""Data validation: a corpus of malformed files (each must break a named rule), valid edge cases, reports,
rejection, and the ``turkey validate`` CLI contract.

The corpus is generated in tmp_path from a small valid base (``ml.demo.make_records``); structural cases
are hand-written text. Deterministic: fixed seeds, no network.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ml.demo import make_records, write_json
from ml.errors import DataError
from ml.validation import RULES, Failure, ValidationOutcome, reject_file, validate_file

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


N_BASE = 40
MIN = 10  # min_records used by the tests (the base has 40 records)

START, END, EMB = "start_time_seconds_youtube_clip", "end_time_seconds_youtube_clip", "audio_embedding"


@pytest.fixture(scope="module")
def base() -> list[dict]:
    recs = make_records(N_BASE, np.random.default_rng(7), True, set())
    labels = [r["is_turkey"] for r in recs]
    assert 0.1 < np.mean(labels) < 0.9  # both classes well represented
    for r in recs[:10]:  # the cases below edit frames of clips 0-9: make them full length (10 frames)
        while len(r[EMB]) < 10:
            r[EMB].append(list(r[EMB][-1]))
    return recs


def _write(tmp_path: Path, content, name: str = "data.json") -> str:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content, encoding="utf-8")
    else:
        write_json(content, p)
    return str(p)


def _valid_text(base) -> str:
    return json.dumps(base[:3])


# ------------------------------------------------------------------------------------------- the corpus
# Each case: (id, builder(base) -> records | text | bytes, split, expected failed rules, expected records).
# `expected records` lists (index, vid_id-or-None) pairs that must be among the first failure's records
# (None: don't check). Record-level cases expect exactly the listed rules: a record is reported once, by
# the most specific rule.


def _edit(fn):
    def build(base):
        recs = copy.deepcopy(base)
        fn(recs)
        return recs

    return build


def _set(i, key, value):
    return _edit(lambda r: r[i].__setitem__(key, value))


def _del(i, key):
    return _edit(lambda r: r[i].pop(key))


def _value(i, frame, col, value):
    return _edit(lambda r: r[i][EMB][frame].__setitem__(col, value))


def _labels(values):
    def fn(recs):
        for r, v in zip(recs, values(len(recs)), strict=True):
            r["is_turkey"] = v

    return _edit(fn)


STRUCTURAL = [
    ("empty_file", lambda b: "", "file.non_empty"),
    ("blank_file", lambda b: "  \n\t\n", "file.non_empty"),
    ("not_json", lambda b: "vid_id,start,end\nabc,0,10\n", "json.syntax"),
    ("not_utf8", lambda b: '[{"vid_id": "caf\xe9"}]'.encode("latin-1"), "file.utf8"),
    ("truncated", lambda b: _valid_text(b)[: len(_valid_text(b)) // 2], "json.complete"),
    ("truncated_after_record", lambda b: _valid_text(b)[:-1], "json.complete"),
    ("top_level_object", lambda b: json.dumps(b[0]), "json.list"),
    ("top_level_number", lambda b: "42", "json.list"),
    ("element_not_object", lambda b: "[" + json.dumps(b[0]) + ", [1, 2]]", "record.object"),
    ("element_is_string", lambda b: '["abc"]', "record.object"),
    ("nan_literal", lambda b: _valid_text(b).replace(f'"{START}": ', f'"{START}": NaN, "y": ', 1), "json.finite"),
    ("infinity_literal", lambda b: _valid_text(b).replace(f'"{END}": ', f'"{END}": Infinity, "x": ', 1), "json.finite"),
    ("trailing_comma", lambda b: _valid_text(b)[:-1] + ",]", "json.syntax"),
    ("two_values", lambda b: "[] []", "json.syntax"),
    ("deep_nesting", lambda b: "[" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "]", "json.syntax"),
    ("huge_integer", lambda b: '[{"vid_id": "a", "x": ' + "9" * 5000 + "}]", "json.syntax"),
]

RECORD = [
    ("missing_embedding", _del(3, EMB), "train", {"fields.required"}, [3]),
    ("missing_vid_id", _del(4, "vid_id"), "train", {"fields.required"}, [4]),
    ("missing_start", _del(5, START), "test", {"fields.required"}, [5]),
    ("empty_vid_id", _set(2, "vid_id", ""), "train", {"vid_id.valid"}, [2]),
    ("blank_vid_id", _set(2, "vid_id", "   "), "train", {"vid_id.valid"}, [2]),
    ("numeric_vid_id", _set(2, "vid_id", 12345), "train", {"vid_id.valid"}, [2]),
    ("null_vid_id", _set(2, "vid_id", None), "train", {"vid_id.valid"}, [2]),
    ("lone_surrogate_vid_id", _set(2, "vid_id", "ab\ud800"), "train", {"vid_id.valid"}, [2]),
    (
        "duplicate_vid_id",
        _edit(lambda r: r[7].__setitem__("vid_id", r[1]["vid_id"])),
        "train",
        {"vid_id.unique"},
        [1, 7],
    ),
    ("end_before_start", _edit(lambda r: r[1].__setitem__(END, r[1][START] - 1)), "train", {"time.order"}, [1]),
    ("end_equals_start", _edit(lambda r: r[1].__setitem__(END, r[1][START])), "test", {"time.order"}, [1]),
    ("duration_over_10", _edit(lambda r: r[1].__setitem__(END, r[1][START] + 10.5)), "train", {"time.duration"}, [1]),
    ("string_time", _set(1, START, "12"), "train", {"time.numeric"}, [1]),
    ("boolean_time", _set(1, END, True), "train", {"time.numeric"}, [1]),
    ("null_time", _set(1, END, None), "test", {"time.numeric"}, [1]),
    (
        "huge_float_time",
        lambda b: json.dumps(b[:12]).replace(f'"{START}": ', f'"{START}": 1e400, "was": ', 1),
        "train",
        {"time.numeric"},
        [0],
    ),
    ("embedding_not_list", _set(1, EMB, "0 1 2"), "train", {"embedding.list"}, [1]),
    ("embedding_null", _set(1, EMB, None), "train", {"embedding.list"}, [1]),
    ("zero_frames", _set(1, EMB, []), "train", {"embedding.frames"}, [1]),
    ("eleven_frames", _edit(lambda r: r[1][EMB].append(r[1][EMB][0])), "train", {"embedding.frames"}, [1]),
    ("row_of_127", _edit(lambda r: r[1][EMB][3].pop()), "train", {"embedding.row_length"}, [1]),
    ("row_of_129", _edit(lambda r: r[1][EMB][3].append(7)), "test", {"embedding.row_length"}, [1]),
    ("empty_row", _edit(lambda r: r[1][EMB].__setitem__(2, [])), "train", {"embedding.row_length"}, [1]),
    (
        "flat_embedding",
        _edit(lambda r: r[1].__setitem__(EMB, r[1][EMB][0])),
        "train",
        {"embedding.row_length", "embedding.frames", "embedding.value_type"},
        [1],
    ),
    ("float_value", _value(1, 0, 5, 12.5), "train", {"embedding.value_type"}, [1]),
    ("integral_float_value", _value(1, 9, 127, 3.0), "train", {"embedding.value_type"}, [1]),
    ("string_value", _value(1, 0, 0, "12"), "train", {"embedding.value_type"}, [1]),
    ("boolean_value", _value(1, 4, 4, True), "train", {"embedding.value_type"}, [1]),
    ("null_value", _value(1, 4, 4, None), "test", {"embedding.value_type"}, [1]),
    ("nested_value", _value(1, 4, 4, [1]), "train", {"embedding.value_type"}, [1]),
    ("value_256", _value(1, 2, 9, 256), "train", {"embedding.value_range"}, [1]),
    ("value_minus_1", _value(1, 2, 9, -1), "test", {"embedding.value_range"}, [1]),
    ("huge_value", _value(1, 2, 9, 2**70), "train", {"embedding.value_range"}, [1]),
    ("label_2", _set(6, "is_turkey", 2), "train", {"label.valid"}, [6]),
    ("label_string", _set(6, "is_turkey", "1"), "train", {"label.valid"}, [6]),
    ("label_boolean", _set(6, "is_turkey", True), "train", {"label.valid"}, [6]),
    ("label_float", _set(6, "is_turkey", 1.0), "train", {"label.valid"}, [6]),
    ("label_missing", _del(6, "is_turkey"), "train", {"label.required"}, [6]),
    ("single_class", _labels(lambda n: [0] * n), "train", {"label.both_classes", "label.balance"}, None),
    ("class_under_5pct", _labels(lambda n: [1] + [0] * (n - 1)), "train", {"label.balance"}, None),
    ("too_few_records", lambda b: copy.deepcopy(b[: MIN - 1]), "train", {"records.min_count"}, None),
    ("empty_list", lambda b: "[]", "test", {"records.min_count"}, None),
]


@pytest.mark.parametrize(("case", "build", "rule"), STRUCTURAL, ids=[c[0] for c in STRUCTURAL])
def test_structural_corpus(tmp_path, base, case, build, rule):
    path = _write(tmp_path, build(base))
    out = validate_file(path, "train", min_records=1)
    assert not out.ok
    assert out.records is None
    assert [f.rule for f in out.failures] == [rule], out.failures
    with pytest.raises(DataError) as exc:
        out.raise_for_failures()
    assert exc.value.rule == rule
    assert path in str(exc.value) and f"rule '{rule}'" in str(exc.value)


def test_unreadable_files(tmp_path):
    for path in (tmp_path / "missing.json", tmp_path):  # a file that does not exist; a folder
        out = validate_file(path, "test", min_records=1)
        assert [f.rule for f in out.failures] == ["file.readable"]


@pytest.mark.parametrize(("case", "build", "split", "rules", "where"), RECORD, ids=[c[0] for c in RECORD])
def test_record_corpus(tmp_path, base, case, build, split, rules, where):
    content = build(base)
    if split == "test" and isinstance(content, list):
        content = [{k: v for k, v in r.items() if k != "is_turkey"} for r in content]
    path = _write(tmp_path, content)
    out = validate_file(path, split, min_records=MIN)
    assert not out.ok
    assert {f.rule for f in out.failures} == rules, out.failures
    assert out.records is not None  # parsed; the data rules judged it
    first = out.failures[0]
    if where is not None:
        assert [i for i, _ in first.records] == where  # exactly the offending records, by index
        if case == "missing_vid_id" or rules == {"vid_id.valid"}:
            assert first.records == [(where[0], None)]  # no usable vid_id to name
        else:
            assert all(isinstance(v, str) for _, v in first.records)
    with pytest.raises(DataError) as exc:
        out.raise_for_failures()
    err = exc.value
    assert (err.file, err.rule, err.records) == (path, first.rule, first.records)
    if where is not None:
        assert f"#{where[0]}" in str(err)


def test_corpus_is_large_and_covers_every_failure_rule():
    assert len(STRUCTURAL) + len(RECORD) >= 25
    covered = {c[2] for c in STRUCTURAL} | {"file.readable"} | set().union(*(c[3] for c in RECORD))
    failure_rules = {name for name, (kind, _) in RULES.items() if kind == "failure"}
    assert failure_rules <= covered, failure_rules - covered


# ------------------------------------------------------------------------------------------- valid files


def test_valid_edge_cases_are_accepted(tmp_path, base):
    recs = copy.deepcopy(base)
    recs[0][EMB] = recs[0][EMB][:1]  # a 1-frame clip
    recs[1][EMB] = recs[1][EMB][:5]  # a short clip
    recs[2][EMB][0] = [0] * 64 + [255] * 64  # the extreme values
    recs[3][START], recs[3][END] = 1.5, 11.5  # float times, exactly 10 s
    recs[4]["vid_id"] = "Ünïcødé-✓"
    assert len(recs[5][EMB]) == 10  # exactly 10 frames
    path = _write(tmp_path, recs)
    out = validate_file(path, "train", min_records=N_BASE)  # exactly min_records
    assert out.ok, out.failures
    assert out.warnings == []
    assert len(out.records) == N_BASE
    assert out.records.lengths[:2].tolist() == [1, 5]
    out.raise_for_failures()  # no-op


def test_pretty_printed_file_with_bom_is_valid(tmp_path, base):
    path = _write(tmp_path, "\ufeff" + json.dumps(base, indent=2) + "\n")
    assert validate_file(path, "train", min_records=MIN).ok


def test_class_share_of_exactly_5_percent_is_valid(tmp_path, base):
    recs = copy.deepcopy(base)
    for i, r in enumerate(recs):
        r["is_turkey"] = int(i < 2)  # 2 of 40 = 5%
    assert validate_file(_write(tmp_path, recs), "train", min_records=MIN).ok


def test_extra_fields_are_a_warning(tmp_path, base):
    recs = copy.deepcopy(base)
    recs[3]["comment"] = "hello"
    recs[8]["source"] = {"nested": [1, 2]}
    out = validate_file(_write(tmp_path, recs), "train", min_records=MIN)
    assert out.ok
    assert len(out.warnings) == 1 and out.warnings[0].startswith("fields.extra")
    assert "comment" in out.warnings[0] and "source" in out.warnings[0] and "#3" in out.warnings[0]


def test_labelled_test_file_is_a_warning(tmp_path, base):
    out = validate_file(_write(tmp_path, base), "test", min_records=MIN)
    assert out.ok
    assert [w.split(":")[0] for w in out.warnings] == ["label.absent"]
    assert f"{N_BASE} of {N_BASE}" in out.warnings[0]


def test_test_file_without_labels_is_valid(tmp_path, base):
    recs = [{k: v for k, v in r.items() if k != "is_turkey"} for r in base]
    out = validate_file(_write(tmp_path, recs), "test", min_records=MIN)
    assert out.ok and out.warnings == []


def test_min_records_default_is_100(tmp_path, base):
    out = validate_file(_write(tmp_path, base), "train")
    assert [f.rule for f in out.failures] == ["records.min_count"]
    assert "found 40, need at least 100" in out.failures[0].message


def test_unknown_split_is_a_usage_error(tmp_path, base):
    with pytest.raises(ValueError):
        validate_file(_write(tmp_path, base), "validation")


# ------------------------------------------------------------------------------------------- messages


def test_failure_lists_all_records_and_message_shows_ten(tmp_path, base):
    recs = copy.deepcopy(base)
    for r in recs[:15]:
        r[EMB][0][0] = 300
    path = _write(tmp_path, recs)
    out = validate_file(path, "train", min_records=MIN)
    (f,) = out.failures
    assert isinstance(f, Failure) and f.rule == "embedding.value_range"
    assert f.records == [(i, base[i]["vid_id"]) for i in range(15)]
    assert "15 of 40" in f.message and "300" in f.message
    with pytest.raises(DataError) as exc:
        out.raise_for_failures()
    text = str(exc.value)
    assert text.startswith(f"{path}: rule 'embedding.value_range' broken")
    assert f"#9 (vid_id={base[9]['vid_id']!r})" in text and "#10 " not in text and "and 5 more" in text


def test_several_broken_rules_are_counted(tmp_path, base):
    recs = copy.deepcopy(base)
    recs[0].pop(EMB)
    recs[1]["vid_id"] = ""
    recs[2][END] = recs[2][START] + 30
    out = validate_file(_write(tmp_path, recs), "train", min_records=MIN)
    assert [f.rule for f in out.failures] == ["fields.required", "vid_id.valid", "time.duration"]
    with pytest.raises(DataError, match=r"2 other rule\(s\) also failed: vid_id.valid, time.duration"):
        out.raise_for_failures()


# ------------------------------------------------------------------------------------------- train vs test


@pytest.fixture(scope="module")
def pair() -> tuple[list[dict], list[dict]]:
    """300 train + 300 test records from one generator: enough that sampling noise in the mean frame value
    stays far below the drift threshold (0.5 train sd; the noise is ~0.08 sd)."""
    rng, taken = np.random.default_rng(11), set()
    return make_records(300, rng, True, taken), make_records(300, rng, False, taken)


def _train_test(tmp_path, pair, shift=0, overlap=0):
    train, test = copy.deepcopy(pair[0]), copy.deepcopy(pair[1])
    for r in test:
        r[EMB] = [[min(255, max(0, v + shift)) for v in row] for row in r[EMB]]
    for i in range(overlap):
        test[i]["vid_id"] = train[i]["vid_id"]
    ref = validate_file(_write(tmp_path, train, "train.json"), "train", min_records=MIN)
    assert ref.ok
    return validate_file(_write(tmp_path, test, "test.json"), "test", min_records=MIN, reference=ref)


def test_same_distribution_no_cross_file_warning(tmp_path, pair):
    out = _train_test(tmp_path, pair)
    assert out.ok and out.warnings == []


def test_vid_id_overlap_is_a_warning(tmp_path, pair):
    out = _train_test(tmp_path, pair, overlap=2)
    assert out.ok
    assert [w.split(":")[0] for w in out.warnings] == ["overlap.vid_id"]
    assert "2 test record(s)" in out.warnings[0]


def test_frame_drift_is_a_warning(tmp_path, pair):
    out = _train_test(tmp_path, pair, shift=15)
    assert out.ok
    assert [w.split(":")[0] for w in out.warnings] == ["drift.frame_mean"]


# ------------------------------------------------------------------------------------------- reports


def test_reports_written_for_valid_and_invalid_files(tmp_path, base):
    good = validate_file(_write(tmp_path, base, "good.json"), "train", min_records=MIN, report_dir=tmp_path / "r1")
    assert good.ok
    site = tmp_path / "r1" / "data-docs-train"
    assert (site / "index.html").is_file()
    # report_html is this run's own result page (it renders offline, unlike the JS-driven index)
    assert Path(good.report_html).is_relative_to(site / "validations") and Path(good.report_html).is_file()
    summary = json.loads(Path(good.report_json).read_text())
    assert summary["ok"] is True and summary["n_records"] == N_BASE and summary["failures"] == []
    html = Path(good.report_html).read_text()
    assert "turkey_train" in html

    recs = copy.deepcopy(base)
    recs[4][EMB][0][0] = -3
    bad = validate_file(_write(tmp_path, recs, "bad.json"), "train", min_records=MIN, report_dir=tmp_path / "r2")
    summary = json.loads(Path(bad.report_json).read_text())
    assert summary["ok"] is False
    assert summary["failures"][0]["rule"] == "embedding.value_range"
    assert summary["failures"][0]["records"] == [[4, base[4]["vid_id"]]]
    assert Path(bad.report_html).is_file()
    pages = list((tmp_path / "r2" / "data-docs-train" / "validations").rglob("*.html"))
    assert len(pages) == 1 and "value_min" in pages[0].read_text()

    broken = validate_file(_write(tmp_path, "[{", "broken.json"), "test", report_dir=tmp_path / "r3")
    assert [f.rule for f in broken.failures] == ["json.complete"]
    summary = json.loads(Path(broken.report_json).read_text())
    assert summary["failures"][0]["rule"] == "json.complete" and summary["n_records"] is None
    assert Path(broken.report_html).is_file()
    pages = list((tmp_path / "r3" / "data-docs-test" / "validations").rglob("*.html"))
    assert len(pages) == 1 and "json.complete" in pages[0].read_text()


def test_train_and_test_reports_share_a_folder(tmp_path, base):
    rep = tmp_path / "report"
    test = [{k: v for k, v in r.items() if k != "is_turkey"} for r in base]
    a = validate_file(_write(tmp_path, base, "train.json"), "train", min_records=MIN, report_dir=rep)
    b = validate_file(_write(tmp_path, test, "test.json"), "test", min_records=MIN, report_dir=rep, reference=a)
    assert a.ok and b.ok
    for p in (a.report_html, a.report_json, b.report_html, b.report_json):
        assert Path(p).is_file() and Path(p).is_relative_to(rep)
    assert "data-docs-train" in a.report_html and "data-docs-test" in b.report_html


# ------------------------------------------------------------------------------------------- rejection


def test_reject_moves_file_and_report_without_overwriting(tmp_path, base):
    landing = tmp_path / "landing"
    landing.mkdir()
    src = landing / "train.json"
    recs = copy.deepcopy(base)
    recs[0]["vid_id"] = ""
    write_json(recs, src)
    data = src.read_bytes()
    out = validate_file(src, "train", min_records=MIN, report_dir=tmp_path / "rep")
    assert not out.ok

    dest = Path(reject_file(src, report_dir=tmp_path / "rep"))
    assert not src.exists()
    assert dest.parent == tmp_path / "rejected"
    assert dest.name.endswith("-train.json") and dest.read_bytes() == data
    report_copy = dest.with_name(dest.name + ".report")
    assert (report_copy / "validation-train.json").is_file()
    assert (report_copy / "data-docs-train" / "index.html").is_file()
    assert (tmp_path / "rep" / "validation-train.json").is_file()  # copied, not moved

    write_json(recs, src)  # the same name again, within the same second: a second, distinct file
    dest2 = Path(reject_file(src))
    assert dest2 != dest and dest.read_bytes() == data and dest2.read_bytes() == data
    assert not dest2.with_name(dest2.name + ".report").exists()
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir() if p.is_file()) == sorted([dest.name, dest2.name])

    with pytest.raises(DataError):
        reject_file(src)  # already gone


def test_validation_outcome_api():
    out = ValidationOutcome(path="x.json", split="test", records=None)
    assert out.ok and out.report_json is None and out.report_html is None
    out.failures.append(Failure("json.syntax", "bad", []))
    assert not out.ok


# ------------------------------------------------------------------------------------------- CLI contract


def _turkey(capsys, *args) -> tuple[int, str]:
    """``turkey ARGS`` in this process: (exit status, stderr)."""
    from ml.cli import main

    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def test_cli_validate_contract(tmp_path, base, capsys):
    good = _write(tmp_path, base, "good.json")
    status, err = _turkey(capsys, "validate", good, "--split", "train", "--min-records", MIN, "--report", tmp_path / "rep")
    assert status == 0, err
    assert (tmp_path / "rep" / "validation-train.json").is_file()

    recs = copy.deepcopy(base)
    recs[3][EMB][1][2] = 1.5
    bad = _write(tmp_path, recs, "bad.json")
    status, err = _turkey(capsys, "validate", bad, "--split", "train", "--min-records", MIN)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "embedding.value_type" in lines[0] and "#3" in lines[0]

    status, err = _turkey(capsys, "validate", _write(tmp_path, "oops!", "junk.json"), "--split", "test")
    assert status == 1 and "json.syntax" in err

    assert _turkey(capsys, "validate", good, "--split", "holdout")[0] == 2
    assert _turkey(capsys, "validate", good)[0] == 2
