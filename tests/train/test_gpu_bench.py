"""The GPU benchmark script runs end to end on CPU at toy size (slow: ~2 min on 2 cores),
with only the packages the device machine has (plus trl and datasets, carried there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

#: What the device machine lacks of genteach's dependencies (its image has torch,
#: transformers, accelerate, peft, jinja2, pyyaml, tqdm; trl and datasets travel as wheels).
#: genteach's code on the benchmark's path must not import them: in the benchmark's
#: processes an import of one of these made by a genteach module fails.
NOT_ON_THE_DEVICE = (
    "pydantic",
    "pydantic_core",
    "autogen_core",
    "autogen_agentchat",
    "autogen_ext",
    "openai",
    "llama_cpp",
    "llguidance",
    "bm25s",
    "mistral_common",
)
BLOCKER = f"""
import sys

GENTEACH = {str(ROOT / "src" / "genteach")!r}


class _NotOnTheDevice:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in {set(NOT_ON_THE_DEVICE)!r}:
            return None
        frame = sys._getframe(1)
        while frame is not None and "importlib" in frame.f_code.co_filename:
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(GENTEACH):
            raise ImportError(f"{{name}} is not on the device machine")
        return None


sys.meta_path.insert(0, _NotOnTheDevice())
"""


def test_gpu_benchmark_runs_on_cpu_at_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "training_gpu_bench.py"),
        "--tiny",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--accum",
        "1",
        "--timeout",
        "400",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(out),
    ]
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT / 'src'}"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    cases = {c["case"]: c for c in result["cases"]}
    assert set(cases) == {"full-ckpt", "full-nockpt", "bf16-ckpt", "lora-ckpt"}
    for case in cases.values():
        assert "error" not in case, case
        assert case["tokens_per_s"] > 0 and case["steps_timed"] == 1
        assert case["examples_per_row"] > 1  # packed rows hold several examples
        assert case["formula"].startswith("F = ")
    assert cases["full-ckpt"]["trainable_dtypes"] == ["torch.float32"]  # fp32 master weights
    assert cases["bf16-ckpt"]["trainable_dtypes"] == ["torch.bfloat16"]
    assert cases["lora-ckpt"]["trainable_dtypes"] == ["torch.float32"]  # adapters
    isolation = result["isolation"]
    for path in ("sdpa", "eager"):
        assert isolation[path]["isolated"] and isolation[path]["examples"] > 2, isolation
    assert "| full-ckpt |" in done.stdout and "MFU = tokens/s x F / peak" in done.stdout
