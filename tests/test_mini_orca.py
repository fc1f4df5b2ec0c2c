"""examples/mini_orca/run.py at toy scale on CPU: every step of the teaching experiment.

The teacher is the scripted one (tests/scripted_teacher.py) behind an OpenAI-compatible
stub on 127.0.0.1, so generation goes through the script's own ``genteach generate`` call
and writes verified pairs in seconds. The students are a tiny random Qwen2 built here
(base) and the same model after 2 training steps (tuned). The judge is a scripted one
behind a second stub, so the scores are known numbers; one more test scores the same
experiment with the script's default judge, the embedded model.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from openai_stub import openai_stub
from scripted_teacher import FILLER, PASSAGE, Teacher

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "examples" / "mini_orca" / "run.py"
CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_qwen(folder: Path, corpus: Sequence[str]) -> Path:
    """A tiny random Qwen2 (hidden 32, 2 layers) with a byte-level BPE trained on
    ``corpus`` and genteach's Qwen2 chat template, saved as a Hugging Face folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from genteach.train.templates import read_template

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=CHATML,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(list(corpus) * 5, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = read_template("qwen2.jinja")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    folder.mkdir(parents=True)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def judge_answer(messages: Sequence[dict[str, Any]]) -> str:
    """A scripted judge: 8 for an answer that states a final answer (the scripted teacher's
    always do), 2 for any other (the tiny students' 8 random tokens)."""
    from genteach.judge import CRITERIA

    found = re.search(r"<<<ANSWER\n(.*)\nANSWER>>>", str(messages[-1]["content"]), re.S)
    n = 8 if found and "Final answer:" in found.group(1) else 2
    obj = {c: {"score": n, "reason": f"scripted {c}"} for c in CRITERIA}
    return json.dumps({**obj, "score": n, "verdict": "scripted"})


def run_script(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run the script (bounded: 15 minutes at most), capturing its output."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def load_script() -> Any:
    """examples/mini_orca/run.py as a module."""
    spec = importlib.util.spec_from_file_location("mini_orca_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Experiment:
    """A toy experiment the script ran twice (the second run should skip every step)."""

    out: Path
    args: list[str]
    first: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    calls: tuple[int, int]  # teacher and judge requests after the first run
    calls_again: tuple[int, int]  # ... and after the second


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """The script at toy scale: the scripted teacher and judge behind stubs, two rc seeds,
    a tiny Qwen2 student trained 2 steps."""
    pytest.importorskip("trl")
    tmp = tmp_path_factory.mktemp("mini_orca")
    seeds = tmp / "seeds"
    seeds.mkdir()
    (seeds / "lowmarsh.txt").write_text(" ".join([PASSAGE, *FILLER]))
    (seeds / "tunnel.txt").write_text(" ".join([*reversed(FILLER), PASSAGE]))
    base = tiny_qwen(tmp / "tiny", [PASSAGE, *FILLER, "You are a helpful assistant."])
    out = tmp / "exp"
    scripted: Any = Teacher()  # a router over genteach's Message type
    with (
        openai_stub(scripted) as (teacher_url, teacher),
        openai_stub(judge_answer) as (judge_url, judge),
    ):
        args = [
            "--out", str(out), "--seeds", str(seeds), "--skills", "rc", "--pairs", "6",
            "--teacher-base-url", teacher_url, "--teacher-model", "scripted-teacher",
            "--student", str(base), "--max-steps", "2", "--max-length", "2048",
            "--judge-base-url", judge_url, "--judge-model", "scripted-judge",
            "--student-max-tokens", "8",
        ]  # fmt: skip
        first = run_script(args)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        calls = (len(teacher.requests), len(judge.requests))
        again = run_script(args)
        calls_again = (len(teacher.requests), len(judge.requests))
    return Experiment(out, args, first, again, calls, calls_again)


@pytest.mark.slow
def test_every_step_at_toy_scale(experiment: Experiment) -> None:
    out = experiment.out
    # 1. generation went through the script's own `genteach generate` call
    records = [json.loads(x) for x in (out / "data" / "records.jsonl").read_text().splitlines()]
    assert len(records) >= 6 and experiment.calls[0] > 0
    assert {r["meta"]["teacher"] for r in records} == {"scripted-teacher"}
    # 2. the split exists
    split = json.loads((out / "data" / "eval" / "split.json").read_text())
    assert split["per_skill"] == 1 and len(split["ids"]) == 1
    # 3. training read every record but the held-out one (the data report says so)
    report = json.loads((out / "student" / "data_report.json").read_text())
    assert report["sources"][0]["rows_read"] == len(records) - 1
    assert report["rows_kept"] > 0 and (out / "student" / "config.json").is_file()
    config = yaml.safe_load((out / "train.yaml").read_text())
    assert config["sources"] == [{"path": str(out / "data"), "name": "generated"}]
    assert config["max_steps"] == 2 and config["use_cpu"] is True  # smoke_cpu.yaml's shape
    # 4. both students side by side; scores are numbers
    md = (out / "eval" / "summary.md").read_text()
    assert (
        "| skill | items | teacher mean | base mean | base score | tuned mean | tuned score |" in md
    )
    summary = json.loads((out / "eval" / "summary.json").read_text())
    for name in ("base", "tuned"):
        row = summary["overall"]["students"][name]
        assert isinstance(row["orca_score"], float) and isinstance(row["mean"], float)
    assert summary["overall"]["teacher_mean"] == 8.0
    assert summary["overall"]["students"]["base"]["orca_score"] == 2.5  # 10 x 2 / 8
    assert experiment.calls[1] == 3  # teacher, base and tuned on the one held-out item
    shown = experiment.first.stdout
    assert f"summary: {out / 'eval' / 'summary.md'}" in shown and "mean nothing" in shown
    assert "[3/4] train:" in shown and "1 held-out records left out" in shown


@pytest.mark.slow
def test_a_rerun_skips_every_step(experiment: Experiment) -> None:
    again = experiment.again
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done already") == 4
    assert experiment.calls_again == experiment.calls  # no model was asked again
    assert "tuned score" in again.stdout  # the table is shown again
    # Another held-out size would not match the trained student: one line, exit 1.
    args = [*experiment.args]
    args[args.index("--teacher-base-url") + 1] = "http://127.0.0.1:9/v1"  # never reached
    changed = run_script([*args, "--heldout-per-skill", "2"])
    assert changed.returncode == 1
    last = changed.stdout.strip().splitlines()[-1]
    assert last.startswith("mini_orca: step split failed: ") and "use a new --out" in last


@pytest.mark.slow
def test_stop_before_training_writes_its_config(experiment: Experiment, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    shutil.copytree(experiment.out / "data", out / "data")
    args = [*experiment.args]
    args[args.index("--out") + 1] = str(out)
    done = run_script([*args, "--stop-before", "train"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("done already") == 2  # generate and split
    assert f"python -m genteach.train --config {out / 'train.yaml'}" in done.stdout
    assert yaml.safe_load((out / "train.yaml").read_text())["output_dir"] == str(out / "student")
    assert not (out / "student").exists()


@pytest.mark.slow
def test_the_embedded_judge(experiment: Experiment, tmp_path: Path) -> None:
    """The script's default judge, the embedded model (the tests' 0.5B on llama.cpp), scores
    the same experiment: about 2 minutes on 2 busy cores."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "exp"
    shutil.copytree(experiment.out, out, ignore=shutil.ignore_patterns("eval"))
    shutil.copytree(experiment.out / "data" / "eval", out / "data" / "eval")
    (out / "mini_orca.json").unlink()  # as if generation and training ran by hand
    args = [*experiment.args]
    args[args.index("--out") + 1] = str(out)
    at = args.index("--judge-base-url")
    del args[at : at + 4]  # no judge endpoint: the embedded model
    done = run_script([*args, "--judge-max-tokens", "400", "--concurrency", "1"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("done already") == 3  # only the evaluation ran
    n = len((out / "data" / "records.jsonl").read_text().splitlines()) - 1
    assert (
        f"trained outside this script: {n} rows read (1 held-out records left out)" in done.stdout
    )
    rows = [json.loads(x) for x in (out / "eval" / "scores.jsonl").read_text().splitlines()]
    assert sorted(r["answerer"] for r in rows) == ["base", "teacher", "tuned"]
    # A small judge may fail to grade; a failure is stated, never counted as a score.
    assert all(isinstance(r["score"], int) or r["error"] for r in rows)
    md = (out / "eval" / "summary.md").read_text()
    assert "base score" in md and "tuned score" in md


@pytest.mark.slow
def test_zero_records_is_one_clear_failure(tmp_path: Path) -> None:
    """A teacher whose units give nothing stops the script after generation, with one line."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(PASSAGE)
    with openai_stub(lambda messages: "no.") as (url, _):
        done = run_script(
            [
                "--out", str(tmp_path / "exp"), "--seeds", str(seeds), "--skills", "rc",
                "--pairs", "2", "--teacher-base-url", url, "--teacher-model", "bad",
            ]
        )  # fmt: skip
    assert done.returncode == 1
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("mini_orca: step generate failed: generation wrote 0 records")
    assert "use a capable teacher or more --pairs" in last
    assert not (tmp_path / "exp" / "data" / "eval").exists()


def test_train_config_keeps_the_smoke_settings(tmp_path: Path) -> None:
    script = load_script()
    args = script.build_parser().parse_args(
        ["--out", str(tmp_path), "--student", "some/model", "--max-steps", "3"]
    )
    exp = script.Experiment.open(tmp_path)
    config = script.write_train_config(exp, args)
    smoke = yaml.safe_load((REPO / "configs" / "train" / "smoke_cpu.yaml").read_text())
    assert config == {
        **smoke,
        "model_name_or_path": "some/model",
        "sources": [{"path": str(tmp_path / "data"), "name": "generated"}],
        "output_dir": str(tmp_path / "student"),
        "max_steps": 3,
        "max_length": 1024,
    }
    text = exp.train_config.read_text()
    assert text.startswith("# Written by examples/mini_orca/run.py")
    assert yaml.safe_load(text) == config
    assert script.base_student_spec(str(tmp_path)) == f"local:{tmp_path}"
    defaults = script.build_parser().parse_args(["--out", str(tmp_path)])
    assert defaults.student == "genteach:local:qwen2.5-coder-0.5b-instruct"
    assert defaults.skills == "rc,text_modification,tool_use"  # the README demo's three
