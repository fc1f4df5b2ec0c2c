"""The GPU benchmark script runs end to end on CPU at toy size (slow: ~2 min on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


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
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
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
