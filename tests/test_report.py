"""genteach.report: the page's sections on synthetic runs, escaping, an empty run, a 10k-row
run, and the page loaded in a real headless chromium (skipped only when it is absent)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from genteach import report
from genteach.cli import main
from genteach.cost import Price, PriceTable
from test_diversity import record, sample_records, write_run

EVIL = "</script><img src=x onerror=\"document.title='pwned'\">"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def rejects() -> list[dict[str, Any]]:
    return [
        {
            "unit": "rc/s1",
            "seed_id": "s1",
            "skill": "rc",
            "stage": "response",
            "agent": "responder",
            "reason": "the answer disagrees with its key: (B) not (C)",
            "created_at": "2026-01-01T00:05:00+00:00",
        },
        {
            "unit": "rc/s2",
            "seed_id": "s2",
            "skill": "rc",
            "stage": "response",
            "agent": "responder",
            "reason": "the answer disagrees with its key: (A) not (D)",
            "created_at": "2026-01-02T10:00:00+00:00",
        },
        {
            "unit": "tool_use/s3",
            "seed_id": "s3",
            "skill": "tool_use",
            "stage": "seed_instruction",
            "agent": "instruct",
            "reason": f"malformed answer after 3 attempts: {EVIL}",
        },
    ]


def full_run(root: Path) -> Path:
    """A run with several skills, refinement pairs, MCQs, rejects, progress, verdicts,
    trajectories and a record full of markup."""
    rows = sample_records()
    rows.append(record("tool_use", f"evil {EVIL}", f"Do this {EVIL}", f"ok {EVIL}", task="e1"))
    run = write_run(root, rows, rejects())
    with (run / "progress.jsonl").open("w") as fh:
        for unit, calls in (("rc/s1", 10), ("rc/s2", 5), ("tool_use/s3", 4)):
            usage = {
                "prompt_tokens": 1000 * calls,
                "completion_tokens": 100 * calls,
                "calls": calls,
            }
            fh.write(json.dumps({"unit": unit, "records": 1, "usage": usage}) + "\n")
    (run / "run.json").write_text(
        json.dumps(
            {
                "teacher": "gpt-4o-mini",
                "started_at": "2026-01-01T00:00:00+00:00",
                "skills": ["rc", "tool_use"],
                "genteach_version": "0.1.0",
            }
        )
    )
    (run / "judge").mkdir()
    verdicts = [
        # An earlier verdict of "a", replaced by the later one (the last row per id wins).
        {"id": "a", "skill": "rc", "scores": {"correctness": 1}, "score": 1, "passed": False},
        # A row whose judge failed: counted, not scored.
        {"id": "c", "skill": "rc", "score": None, "passed": False, "error": "declined"},
        {
            "id": "a",
            "skill": "rc",
            "sub_category": "mcq",
            "scores": {"correctness": 8},
            "score": 8,
            "passed": True,
            "verdict": "fine",
        },
        {
            "id": "b",
            "skill": "rc",
            "sub_category": "mcq",
            "scores": {"correctness": 4},
            "score": 4,
            "passed": False,
            "verdict": EVIL,
        },
    ]
    (run / "judge" / "verdicts.jsonl").write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    (run / "trajectories.json").write_text(
        json.dumps(
            {"tool_use": {"attempted": 4, "kept": 3, "failures": {"budget": 1}, "pass_rate": 0.75}}
        )
    )
    return run


def contamination_dir(root: Path) -> Path:
    root.mkdir()
    summary = {
        "training_rows": 11,
        "test_items": 3,
        "overlapping_rows": 1,
        "benchmarks": [
            {
                "benchmark": f"bench {EVIL}",
                "items": 3,
                "scored": 3,
                "too_short": 0,
                "mean_rate": 0.4,
                "dirty": 1,
                "in_between": 0,
                "clean": 2,
            }
        ],
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def test_every_section_of_a_full_run(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    path, data = report.write_report(run, contamination=contamination_dir(tmp_path / "c"))
    page = path.read_text()
    assert path == run / "report.html"
    assert report.section_ids(page) == list(report.SECTIONS)
    assert data.records == 11 and data.rejects == 3 and data.units == 3
    assert "gpt-4o-mini" in section(page, "overview")
    assert "2026-01-01T00:00:00+00:00 to 2026-01-02T10:00:00+00:00" in section(page, "overview")
    assert "<svg" in section(page, "records") and "main_idea" in section(page, "records")
    assert "response words" in section(page, "lengths")
    rej = section(page, "rejects")
    assert "the answer disagrees with its key</td>" in rej and "66.7%" in rej
    assert "passed / checked" in section(page, "verification")
    judge = section(page, "judge")
    assert '<td>rc</td><td class="n">3</td><td class="n">1</td><td class="n">6.00</td>' in judge
    assert "50.0%" in judge and "correctness" in judge
    assert "rc/mcq" in section(page, "diversity") and "A:2" in section(page, "diversity")
    refine = section(page, "refinement")
    assert "<td>rc</td>" in refine
    cost = section(page, "cost")
    assert "$" in cost and "progress.jsonl" in cost and "unknown" not in cost
    assert "budget 1" in section(page, "trajectories")
    assert "40.0%" in section(page, "contamination")


def test_text_from_the_run_is_escaped(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    path, _ = report.write_report(run, contamination=contamination_dir(tmp_path / "c"))
    page = path.read_text()
    assert "<img" not in page and "</script>" not in page and 'onerror="' not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=&quot;" in page
    assert "<script" not in page  # the page runs no code at all


def test_absent_parts_say_so(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sample_records()[:2])
    page, _ = report.write_report(run, tmp_path / "out" / "r.html")
    text = page.read_text()
    assert page == tmp_path / "out" / "r.html"
    assert "Not judged. Run `genteach judge RUN`" in section(text, "judge")
    assert "Not computed here" in section(text, "contamination")
    assert "No trajectories.json" in section(text, "trajectories")
    assert "No rejects." in section(text, "rejects")
    assert "No refined records" in section(text, "refinement")
    assert "gpt-4o-mini" in section(text, "cost")  # tokens from the records, priced


def test_unknown_price_gives_tokens_only(tmp_path: Path) -> None:
    rows = [record("rc", "a", "Q?", "A.", task="t", teacher="my-model", usage=(7, 3, 1))]
    run = write_run(tmp_path / "run", rows)
    _, data = report.write_report(run, prices=PriceTable({}))
    cost = section(report.render(data), "cost")
    assert "unknown" in cost and "tokens only" in cost
    _, data = report.write_report(run, prices=PriceTable({"my-model": Price(1e6, 1e6)}))
    assert "$10.00" in section(report.render(data), "cost")


def test_missing_judge_or_contamination_files_are_named(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sample_records())
    with pytest.raises(FileNotFoundError, match=r"--judge .*: no verdicts.jsonl there"):
        report.write_report(run, judge=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"--contamination .*: no summary.json there"):
        report.write_report(run, contamination=tmp_path)


def test_an_empty_run_gives_a_page_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", [], rejects())
    out = tmp_path / "empty.html"
    assert main(["report", str(run), "--out", str(out), "--no-embed"]) == 0
    err = capsys.readouterr().err
    assert "has no records" in err
    page = out.read_text()
    assert report.section_ids(page) == list(report.SECTIONS)
    assert "This run has no records." in section(page, "overview")
    assert "No records." in section(page, "diversity")


def test_the_command_reads_the_judge_folder_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = full_run(tmp_path / "run")
    judge = tmp_path / "j"
    judge.mkdir()
    shutil.move(str(run / "judge" / "verdicts.jsonl"), judge / "verdicts.jsonl")
    code = main(["report", str(run), "--judge", str(judge), "--no-embed"])
    assert code == 0
    assert "11 records, 3 rejects: wrote" in capsys.readouterr().out
    assert "3 verdicts from" in section((run / "report.html").read_text(), "judge")


def test_tables_are_capped(tmp_path: Path) -> None:
    rows = [
        record("rc", f"sub{i:03d}", f"Question {i}?", "Answer.", task=f"t{i}")
        for i in range(report.MAX_ROWS + 10)
    ]
    run = write_run(tmp_path / "run", rows)
    page = report.write_report(run)[0].read_text()
    assert f"Showing {report.MAX_ROWS} of {report.MAX_ROWS + 10} rows." in page


def _big_run(folder: Path, n: int) -> Path:
    folder.mkdir()
    skills = ("rc", "tool_use", "coding", "text_modification")
    with (folder / "records.jsonl").open("w") as fh:
        for i in range(n):
            r = record(
                skills[i % 4],
                f"sub{i % 13}",
                f"Question {i} about item {i % 97} and topic {i % 31}?",
                f"1. Step about {i % 50}.\n2. Then {i % 7}.\nFinal answer: (A)",
                task=f"t{i}",
                parent=f"t{i - 1}" if i % 10 == 1 else None,
                round_=1 if i % 10 == 1 else 0,
                key={"kind": "choice", "correct": ["a"], "distractors": ["b", "c", "d"]}
                if i % 4 == 0
                else None,
                order=[(i // 4 + k) % 4 for k in range(4)],
            )
            fh.write(json.dumps(r) + "\n")
    with (folder / "rejects.jsonl").open("w") as fh:
        for i in range(n // 10):
            fh.write(
                json.dumps(
                    {
                        "unit": f"rc/{i}",
                        "seed_id": str(i),
                        "skill": "rc",
                        "stage": "response",
                        "agent": "r",
                        "reason": f"reason {i % 3}: detail {i}",
                    }
                )
                + "\n"
            )
    return folder


@pytest.mark.slow
def test_a_10k_row_run(tmp_path: Path) -> None:
    run = _big_run(tmp_path / "big", 10_000)
    path, data = report.write_report(run)
    page = path.read_text()
    assert data.records == 10_000 and data.rejects == 1_000
    assert report.section_ids(page) == list(report.SECTIONS)
    assert data.diversity is not None
    (bal,) = data.diversity.letters
    assert bal.questions == 2_500 and bal.counts == {"A": 625, "B": 625, "C": 625, "D": 625}
    assert bal.chi2 == 0.0
    rc = {d.skill: d for d in data.diversity.refinement}
    assert sum(d.pairs for d in rc.values()) == 1_000
    assert len(page) < 400_000  # counts and capped tables, not the rows


def _driver() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver path is given, so Selenium Manager downloads nothing.
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="chromium is not installed (apt-get install -y chromium chromium-driver; CI does)",
)
def test_the_page_in_headless_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    run = full_run(tmp_path / "run")
    path, _ = report.write_report(run, contamination=contamination_dir(tmp_path / "c"))
    driver = _driver()
    try:
        driver.set_page_load_timeout(60)
        driver.get(path.resolve().as_uri())
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == []
        assert driver.title.startswith("genteach report")  # the markup ran no code
        assert driver.find_elements(By.TAG_NAME, "img") == []
        for sid in report.SECTIONS:
            el = driver.find_element(By.ID, sid)
            assert el.is_displayed(), sid
            assert el.size["height"] > 20 and el.size["width"] > 200, sid
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 5
        height = int(driver.execute_script("return document.body.scrollHeight"))
        driver.set_window_size(1280, min(height + 120, 8000))
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    (tmp_path / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    with image.open(io.BytesIO(png)) as im:
        rgb = im.convert("RGB")
        assert rgb.height > 2000
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 20  # text, bars, backgrounds
        # The status colour of "passed" is drawn (the verification bars).
        assert any(c == (0x2E, 0x7D, 0x32) for _, c in colours)
