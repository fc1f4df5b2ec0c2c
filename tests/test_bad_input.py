"""Bad input to ``genteach generate`` and ``genteach taxonomy``: one line on stderr naming
the file and key, exit code 2, nothing written (docs/cli.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genteach.cli import main
from genteach.prompts import PromptLibrary
from openai_stub import openai_stub
from scripted_teacher import Teacher

TEXT = "The harbour tunnel opened in May and traffic on the coast road fell by a third. " * 8
NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a call would fail the test loudly

MINI = """\
name: mini
skills:
  mini:
    name: Mini Skill
    status: ready
    seed_kinds: [text]
    transformers:
      - {{id: identity, name: Identity, agent: identity}}
    task_types:
      - {{id: alpha, name: Alpha Questions, guidance: {guidance}, weight: 1}}
    pipeline:
      - {{flow: content_transformation}}
      - {{flow: seed_instruction, task_types_per_seed: 1, tasks_per_type: 1}}
      - {{flow: response}}
"""


def seed_folder(tmp_path: Path) -> Path:
    d = tmp_path / "seeds"
    d.mkdir(parents=True)
    (d / "a.txt").write_text(TEXT)
    return d


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (the folder's whole written state)."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """The one stderr line of a refused command (exit 2)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def generate(seeds: Path, out: Path, *extra: str, url: str = NOWHERE) -> int:
    return main(
        [
            "generate", "--seeds", str(seeds), "--out", str(out), "--base-url", url,
            "--api-key", "k", "--model", "stub-model", "--no-progress", *extra,
        ]
    )  # fmt: skip


SMALL = ("--skills", "rc", "--set", "suggestions=1", "--set", "tasks_per_type=1")


# -- run identity ------------------------------------------------------------------------------
def test_resume_with_another_model_is_refused_then_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, out = seed_folder(tmp_path), tmp_path / "out"
    with openai_stub(Teacher()) as (url, state):
        assert generate(seeds, out, *SMALL, url=url) == 0
        capsys.readouterr()
        before, calls = snapshot(out), len(state.requests)
        code = generate(seeds, out, *SMALL, "--model", "other-model", url=url)
        line = error_line(capsys, code)
        assert line == (
            f"genteach: error: {out}/run.json: resuming would mix two runs in one folder: "
            "teacher model stub-model -> other-model; pass --accept-changes to continue anyway "
            "(run.json keeps the history), or use another --out, or --fresh to start over"
        )
        assert snapshot(out) == before and len(state.requests) == calls
        # accepted: run.json names the new teacher and keeps the first in its history
        code = generate(seeds, out, *SMALL, "--model", "other-model", "--accept-changes", url=url)
        assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["teacher"] == "other-model"
    assert [h["teacher"] for h in run["history"]] == ["stub-model"]
    assert run["endpoint"] == url.removesuffix("/v1")


def test_editing_a_template_between_resumes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, out = seed_folder(tmp_path), tmp_path / "out"
    mine = tmp_path / "prompts"
    (mine / "common" / "framings").mkdir(parents=True)
    task_user = mine / "common" / "framings" / "instruction_first.j2"
    task_user.write_text(PromptLibrary().source("common/framings/instruction_first.j2"))
    args = (*SMALL, "--prompts", str(mine))
    with openai_stub(Teacher()) as (url, state):
        assert generate(seeds, out, *args, url=url) == 0
        assert json.loads((out / "run.json").read_text())["templates"][
            "common/framings/instruction_first.j2"
        ]
        capsys.readouterr()
        task_user.write_text(task_user.read_text() + "\nAnswer briefly.\n")
        before, calls = snapshot(out), len(state.requests)
        line = error_line(capsys, generate(seeds, out, *args, url=url))
        assert snapshot(out) == before and len(state.requests) == calls
    assert line.startswith(f"genteach: error: {out}/run.json: resuming would mix two runs")
    assert "templates changed: common/framings/instruction_first.j2;" in line


# -- the output folder -------------------------------------------------------------------------
def test_out_naming_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    line = error_line(capsys, generate(seed_folder(tmp_path), target))
    assert line == f"genteach: error: --out {target}: is a file, not a folder"
    assert target.read_text() == "keep me"


def test_out_in_a_read_only_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the check see what a user would
        real = os.access
        monkeypatch.setattr(
            "genteach.pipeline.os.access",
            lambda path, mode: Path(path) != locked and real(path, mode),
        )
    seeds = seed_folder(tmp_path)
    try:
        for out, where in ((locked, "the output folder"), (locked / "run", str(locked))):
            line = error_line(capsys, generate(seeds, out))
            assert line.startswith(f"genteach: error: --out {out}: {where}")
            assert line.endswith("is not writable (permission denied)")
        assert snapshot(locked) == {}
    finally:
        locked.chmod(0o755)


# -- taxonomy and templates --------------------------------------------------------------------
def test_a_missing_template_is_found_before_any_model_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tax = tmp_path / "mini.yaml"
    tax.write_text(MINI.format(guidance="nope/missing.j2"))
    out = tmp_path / "out"
    with openai_stub(Teacher()) as (url, state):
        code = generate(seed_folder(tmp_path), out, "--taxonomy", str(tax), url=url)
        line = error_line(capsys, code)
        assert state.requests == []
    assert line.startswith(
        f"genteach: error: {tax}: skills.mini.task_types.alpha: template 'nope/missing.j2' "
        "not found in "
    )
    assert not out.exists()
    # `taxonomy validate` finds the same problem
    assert main(["taxonomy", "validate", str(tax)]) == 1
    assert f"{tax}: skills.mini.task_types.alpha: template 'nope/missing.j2'" in (
        capsys.readouterr().err
    )


def test_a_template_including_a_missing_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "prompts"
    (mine / "t").mkdir(parents=True)
    (mine / "t" / "guide.j2").write_text('Guidance.\n{% include "t/gone.j2" %}\n')
    tax = tmp_path / "mini.yaml"
    tax.write_text(MINI.format(guidance="t/guide.j2"))
    out = tmp_path / "out"
    code = generate(seed_folder(tmp_path), out, "--taxonomy", str(tax), "--prompts", str(mine))
    line = error_line(capsys, code)
    assert line.startswith(
        f"genteach: error: {tax}: skills.mini.task_types.alpha: template t/guide.j2 includes "
        "'t/gone.j2': template 't/gone.j2' not found in "
    )
    assert not out.exists()


def test_a_binary_taxonomy_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tax = tmp_path / "tax.yaml"
    tax.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    out = tmp_path / "out"
    line = error_line(capsys, generate(seed_folder(tmp_path), out, "--taxonomy", str(tax)))
    assert line == f"genteach: error: {tax}: not a YAML text file (binary content)"
    line = error_line(capsys, main(["taxonomy", "validate", str(latin)]))
    assert line == f"genteach: error: {latin}:1: not a YAML text file (not UTF-8)"
    assert not out.exists()


def test_malformed_yaml_is_one_line_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tax = tmp_path / "tax.yaml"
    tax.write_text("name: x\nskills:\n  rc: [a, b\n  q: 1\n")
    line = error_line(capsys, main(["taxonomy", "validate", str(tax)]))
    assert line == (
        f"genteach: error: {tax}:4:4: not valid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started on line 3)"
    )
    assert "<unicode string>" not in line


def test_invalid_taxonomy_names_the_first_key_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tax = tmp_path / "tax.yaml"
    tax.write_text("name: x\nskills:\n  rc:\n    name: RC\n    weight: heavy\n    status: soon\n")
    line = error_line(capsys, main(["taxonomy", "validate", str(tax)]))
    assert line == (
        f"genteach: error: {tax}: skills.rc.weight: Input should be a valid number, unable "
        "to parse string as a number (and 1 more)"
    )


# -- settings and flags ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--limit", "-1", "--limit -1: Input should be greater than or equal to 1"),
        ("--limit", "0", "--limit 0: Input should be greater than or equal to 1"),
        ("--timeout", "0", "--timeout 0.0: Input should be greater than 0"),
        ("--max-retries", "-1", "--max-retries -1: Input should be greater than or equal to 0"),
        (
            "--max-parse-retries",
            "-1",
            "--max-parse-retries -1: Input should be greater than or equal to 0",
        ),
        ("--concurrency", "0", "--concurrency 0: Input should be greater than or equal to 1"),
        ("--rpm", "-5", "--rpm -5.0: Input should be greater than 0"),
        (
            "--temperature",
            "-1",
            "--temperature (or GENTEACH_TEMPERATURE) -1.0: Input should be greater than or "
            "equal to 0",
        ),
    ],
)
def test_nonsense_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    out = tmp_path / "out"
    line = error_line(capsys, generate(seed_folder(tmp_path), out, flag, value))
    assert line == f"genteach: error: {message}"
    assert not out.exists()


def test_a_value_of_the_wrong_type_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    line = error_line(capsys, generate(seed_folder(tmp_path), out, "--limit", "many"))
    assert line == (
        "genteach generate: error: argument --limit: invalid int value: 'many' "
        "(see genteach generate --help)"
    )
    line = error_line(capsys, generate(seed_folder(tmp_path / "b"), out, "--shards", "0"))
    assert "argument --shards: must be more than 0, got 0" in line
    assert not out.exists()


def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENTEACH_TRANSPORT", "carrier-pigeon")
    line = error_line(capsys, generate(seed_folder(tmp_path), tmp_path / "out"))
    assert line == (
        "genteach: error: --transport (or GENTEACH_TRANSPORT) 'carrier-pigeon': Input should "
        "be 'aiohttp' or 'openai-sdk'"
    )


def test_set_out_of_range_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = generate(seed_folder(tmp_path), out, "--skills", "rc", "--set", "tasks_per_type=0")
    line = error_line(capsys, code)
    assert line.startswith("genteach: error: ") and "skills.rc.pipeline[" in line
    assert "].tasks_per_type: " in line
    assert not out.exists()


def test_set_of_the_wrong_type_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = generate(seed_folder(tmp_path), out, "--skills", "rc", "--set", "suggestions=abc")
    line = error_line(capsys, code)
    assert line.startswith("genteach: error: ") and "skills.rc.pipeline[" in line
    assert "].suggestions: " in line
    assert not out.exists()


def test_set_of_an_unknown_key_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = generate(seed_folder(tmp_path), out, "--skills", "rc", "--set", "sugestions=1")
    line = error_line(capsys, code)
    assert line.startswith("genteach: error: --set sugestions: no stage of skills rc has it")
    assert "suggestions" in line and not out.exists()


# -- seeds -------------------------------------------------------------------------------------
def test_an_empty_seed_folder_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    line = error_line(capsys, generate(empty, out))
    assert line == f"genteach: error: seeds: no usable seed in {empty} (nothing to read)"
    line = error_line(capsys, generate(empty, out, "--dry-run"))
    assert line == f"genteach: error: seeds: no usable seed in {empty} (nothing to read)"
    assert not out.exists()


def test_a_folder_of_bad_seeds_is_an_error_naming_each_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, out = tmp_path / "bad", tmp_path / "out"
    bad.mkdir()
    (bad / "blob.txt").write_bytes(b"\x00\x01binary" * 20)
    (bad / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    (bad / "rows.jsonl").write_text('{"text": "short"}\n{not json\n')
    line = error_line(capsys, generate(bad, out))
    assert line == (
        f"genteach: error: seeds: no usable seed in {bad} (blob.txt: binary; latin1.txt: not "
        "UTF-8; rows.jsonl: malformed JSON line, too short)"
    )
    assert not out.exists()


def test_a_wrong_text_field_says_which_field_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, out = tmp_path / "rows.jsonl", tmp_path / "out"
    rows.write_text(
        json.dumps({"body": TEXT}) + "\n" + json.dumps({"body": "More. " + TEXT}) + "\n"
    )
    line = error_line(capsys, generate(rows, out))
    assert line == (
        f"genteach: error: seeds: no usable seed in {rows} (rows.jsonl: row without text field "
        "(2)); rows are read from field 'text': set --text-field"
    )
    assert not out.exists()


def test_skipped_seeds_are_named_in_the_output_and_on_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, out = seed_folder(tmp_path), tmp_path / "out"
    (seeds / "blob.bin.txt").write_bytes(b"\x00\x01binary" * 20)
    (seeds / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    good, other = json.dumps({"text": "Another. " + TEXT}), json.dumps({"body": TEXT})
    (seeds / "rows.jsonl").write_bytes(f"{good}\n{{not json\n{other}\n".encode() + b'"\xff"\n')
    with openai_stub(Teacher()) as (url, _):
        assert generate(seeds, out, *SMALL, url=url) == 0
    err = capsys.readouterr().err.splitlines()
    start = err.index(
        "seeds: 2 seeds, 1 skipped (binary), 1 skipped (malformed JSON line), 2 skipped (not "
        f"UTF-8), 1 skipped (row without text field); skips listed in {out}/skips.jsonl"
    )
    assert err[start + 1 : start + 4] == [
        "  skipped blob.bin.txt: binary",
        "  skipped latin1.txt: not UTF-8",
        "  skipped rows.jsonl: malformed JSON line, not UTF-8, row without text field",
    ]
    skips = [json.loads(x) for x in (out / "skips.jsonl").read_text().splitlines()]
    assert skips == [
        {"file": "blob.bin.txt", "reason": "binary"},
        {"file": "latin1.txt", "reason": "not UTF-8"},
        {"file": "rows.jsonl", "reason": "malformed JSON line", "line": 2},
        {"file": "rows.jsonl", "reason": "row without text field", "line": 3},
        {"file": "rows.jsonl", "reason": "not UTF-8", "line": 4},
    ]


# -- custom agents -----------------------------------------------------------------------------
def test_a_module_agent_resolves_next_to_its_taxonomy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "skill"
    folder.mkdir()
    (folder / "genteach_test_agents_x1.py").write_text(
        "from genteach.agents.instruct import SeedInstructionAgent\n\n"
        "class MyAgent(SeedInstructionAgent):\n    pass\n"
    )
    text = MINI.format(guidance="t/guide.j2").replace(
        "weight: 1}", "weight: 1, agent: 'genteach_test_agents_x1:MyAgent'}"
    )
    (folder / "tax.yaml").write_text(text)
    prompts = tmp_path / "prompts"
    (prompts / "t").mkdir(parents=True)
    (prompts / "t" / "guide.j2").write_text("Guidance.\n")
    assert main(["taxonomy", "validate", str(folder / "tax.yaml"), "--prompts", str(prompts)]) == 0
    assert "valid (1 skills, 1 ready" in capsys.readouterr().out
    # a module found nowhere: the error says where it looked and what to set
    (folder / "tax.yaml").write_text(text.replace("_x1:", "_missing:"))
    code = main(["taxonomy", "validate", str(folder / "tax.yaml"), "--prompts", str(prompts)])
    line = error_line(capsys, code)
    assert line == (
        f"genteach: error: {folder / 'tax.yaml'}: skills.mini.task_types.alpha.agent: cannot "
        "import "
        "'genteach_test_agents_missing:MyAgent': no module 'genteach_test_agents_missing' on "
        f"the Python path or in {folder.resolve()}; set PYTHONPATH to the folder that holds it"
    )


def test_the_python_api_refuses_a_named_source_without_seeds(tmp_path: Path) -> None:
    from genteach import Pipeline, ScriptedModel
    from genteach.seeds import SeedSourceError

    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    pipe = Pipeline(ScriptedModel([]), skills=["rc"])
    with pytest.raises(SeedSourceError, match=r"^seeds: no usable seed in .*empty \(nothing to"):
        pipe.run(empty, out)
    assert not out.exists()
    # seeds given as a list are run as they are: an empty shard of a sharded run does nothing
    assert pipe.run([], out).units_total == 0
