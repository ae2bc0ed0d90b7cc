"""bench.run_bench: configs, the document (summary table + sections), the splice of single sections, and the
CLI end to end on the one section that measures nothing here (the saved GPU check)."""

from __future__ import annotations

import json

import pytest

from bench import run_bench
from bench.common import Figure

META = {"command": "python -m bench.run_bench", "date": "2026-01-01 00:00 UTC", "git": "abc", "tag": "full",
        "packages": {"numpy": "2"}, "total_seconds": 1.0,
        "machine": {"cpu": "cpu", "cores": 2, "usable_cores": 2, "ram_gib": 8.0, "os": "Linux", "python": "3.11",
                    "loadavg": [1.0, 1.0, 1.0]}}


@pytest.fixture
def fake_sections(monkeypatch):
    """Two sections whose body and figure are their data."""
    sections = {name: (number, f"Title {number}", None, lambda d: f"body {d['v']}",
                       lambda d, n=number: [Figure(f"figure {n}", d["v"], "s", "<=", 2.0)])
                for name, number in (("overhead", "1"), ("quality", "3"))}
    monkeypatch.setattr(run_bench, "SECTIONS", sections)


def test_configs():
    quick, full = run_bench.make_config(True), run_bench.make_config(False, repeats=5)
    assert quick["tag"] == "quick" and quick["repeats"] == 1 and quick["epochs"] == 2
    assert full["repeats"] == 5 and [s[0] for s in full["scales"]] == ["1x", "10x", "100x"] and full["epochs"] is None


def test_the_document_opens_with_one_summary_table_and_shows_failures(fake_sections):
    doc = run_bench.render(META, {"overhead": {"data": {"v": 1.5}, "seconds": 3}, "quality": {"error": "Boom", "seconds": 1}})
    summary = doc.split(run_bench.SUMMARY_START)[1].split(run_bench.SUMMARY_END)[0]
    assert "| §1 | figure 1 | 1.50 s | <= 2.00 s | met | `python -m bench.run_bench` | 2026-01-01 00:00 UTC, git abc |" in summary
    assert doc.index(run_bench.SUMMARY_END) < doc.index("## 1. Title 1") < doc.index("## 3. Title 3")
    assert "body 1.5" in doc and "**This section failed**" in doc and "Boom" in doc and "From `python -m bench.run_bench`" in doc


def test_splice_replaces_only_the_sections_run_and_their_summary_rows(fake_sections):
    old = run_bench.render(META, {"overhead": {"data": {"v": 1.0}, "seconds": 3}}) + (
        "\n<!-- reliability:start (x) -->\n## 5. Reliability\n\nfaults\n<!-- reliability:end -->\n")
    new = run_bench.render({**META, "date": "later"}, {"quality": {"data": {"v": 3.0}, "seconds": 3}})
    out = run_bench.splice(old, new, ["quality"])
    assert "body 1.0" in out and "body 3.0" in out and out.index("body 1.0") < out.index("body 3.0") < out.index("faults")
    rows = [ln for ln in out.split(run_bench.SUMMARY_START)[1].split(run_bench.SUMMARY_END)[0].splitlines() if "§" in ln][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["§1", "§3"] and "**NOT met**" in rows[1] and "later" in rows[1]
    again = run_bench.splice(out, run_bench.render(META, {"quality": {"data": {"v": 0.5}, "seconds": 3}}), ["quality"])
    assert "body 3.0" not in again and again.count("## 3. Title 3") == 1 and again.count("## 5. Reliability") == 1


def test_keep_reliability_appends_the_fault_suites_block_once():
    old = "x\n<!-- reliability:start (y) -->\nfaults\n<!-- reliability:end -->\n"
    doc = run_bench.keep_reliability(old, "# new\n")
    assert doc.endswith("<!-- reliability:start (y) -->\nfaults\n<!-- reliability:end -->\n")
    assert run_bench.keep_reliability(old, doc) == doc


def test_the_published_file_can_be_spliced():
    current = (run_bench.REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    new = run_bench.render(META, {"gpu": {"data": {"check": None}, "seconds": 0}})
    out = run_bench.splice(current, new, ["gpu"])
    assert out.count("# Benchmarks") == 1 and out.count("## 4. ") == 1 and "## 1. " in out and out.count("<!-- reliability:start") == 1
    assert "| §4 | CPU vs GPU validation AUC" in out and out.count(run_bench.SUMMARY_START) == 1


def test_the_cli_end_to_end_on_the_gpu_section_then_render_only(tmp_path, monkeypatch):
    monkeypatch.setattr(run_bench, "OUT", tmp_path)
    out = tmp_path / "B.md"
    assert run_bench.main(["--sections", "gpu", "--output", str(out)]) == 0
    doc = out.read_text()
    assert doc.startswith("# Benchmarks\n") and "## 4. GPU training throughput" in doc and "None measured" in doc
    saved = json.loads((tmp_path / "results-full.json").read_text())
    assert saved["meta"]["command"] == f"python -m bench.run_bench --sections gpu --output {out}"
    out.unlink()
    assert run_bench.main(["--sections", "gpu", "--output", str(out), "--render-only"]) == 0 and out.read_text() == doc
    with pytest.raises(SystemExit):
        run_bench.main(["--sections", "nope"])
