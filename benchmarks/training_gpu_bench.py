"""Training speed of the SFT recipe on one GPU: a Mistral-7B-shaped model, random weights.

Usage::

    python benchmarks/training_gpu_bench.py                     # one H200: ~6-8 min
    python benchmarks/training_gpu_bench.py --tiny --device cpu  # the same path at toy size (CI)

Each case runs the recipe's own path (``genteach.train.recipe.train``: prepare_dataset on
synthetic chat pairs, BFD packing to ``--max-length``, the recipe's collator, attention
pick and precision rules, TRL's SFTTrainer) in a child process, so an out-of-memory case
is reported and the next one starts clean:

* ``full-ckpt``: full fine-tuning, fp32 master weights (the recipe's default), bf16 autocast,
  activation checkpointing (the Orca-3 config's settings);
* ``bf16-ckpt``: full fine-tuning with ``pure_bf16`` (bf16 weights and AdamW states), to show
  what the fp32 master weights cost;
* ``lora-ckpt``: LoRA r=16 on every projection, bf16 base, activation checkpointing;
* ``full-nockpt``: ``full-ckpt`` without activation checkpointing (last: likely out of
  memory at 7B on one GPU).

First comes the packing isolation check in bf16 on every attention path present
(flash_attention_2 if installed, flex_attention, sdpa): each example's logits inside a
packed batch against its logits alone, and the leak the check must see without reset
positions. Then the cases, in this order, within ``--budget`` seconds (450 on a GPU: a case
that would start later is reported as skipped). Reported per case: median optimiser-step
time, tokens/s, peak GPU memory, and MFU with the formula printed. Nothing is downloaded:
the model is built from its config, the tokenizer is made here, the data are synthetic.
Results: docs/benchmarks/training_gpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: Dense bf16 peak of one H100/H200 SXM (NVIDIA's datasheet, without sparsity), FLOP/s.
H200_PEAK = 989.4e12
MISTRAL_7B = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
}
TINY = {
    **MISTRAL_7B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
CASES: dict[str, dict[str, Any]] = {
    "full-ckpt": {"activation_checkpointing": True},
    "bf16-ckpt": {"activation_checkpointing": True, "pure_bf16": True},
    "lora-ckpt": {
        "activation_checkpointing": True,
        "use_peft": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_target_modules": [
            *("q_proj", "k_proj", "v_proj", "o_proj"),
            *("gate_proj", "up_proj", "down_proj"),
        ],
        "dtype": "bfloat16",
        "learning_rate": 2e-4,
    },
    "full-nockpt": {"activation_checkpointing": False},  # last: likely out of memory at 7B
}
WORDS = [f"w{i}" for i in range(2000)]


# Set-up: model folder (config + tokenizer), synthetic pairs


def make_model_dir(folder: Path, shape: dict[str, Any]) -> Path:
    """config.json of the model shape and a word-level tokenizer: one token per word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MistralConfig, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    MistralConfig(bos_token_id=1, eos_token_id=2, **shape).save_pretrained(folder)
    marks = ["[INST]", "[/INST]", ".", ",", "?"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS + marks)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(folder)
    return folder


def make_pairs(path: Path, tokens: int, max_length: int, seed: int = 0) -> Path:
    """Chat pairs of random words, ~``tokens`` in all: prompts and answers of log-normal
    length (median ``max_length / 16`` each), so BFD packs several examples of varied
    length into each row."""
    import math

    rng = random.Random(seed)
    mu = math.log(max_length / 16)
    total = 0
    with path.open("w", encoding="utf-8") as handle:
        i = 0
        while total < tokens:
            prompt = min(int(rng.lognormvariate(mu, 0.8)), max_length // 2)
            answer = min(int(rng.lognormvariate(mu, 0.8)), max_length // 2)
            messages = [
                {"role": "user", "content": " ".join(rng.choices(WORDS, k=max(prompt, 1)))},
                {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=max(answer, 1)))},
            ]
            handle.write(json.dumps({"id": f"p{i}", "messages": messages}) + "\n")
            total += prompt + answer + 6
            i += 1
    return path


# One case, in a child process


class StepTimer:
    """Times optimiser steps (synchronising the device) and reads the peak memory."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.times: list[float] = []
        self.start = 0.0

    def sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer.sync()
                timer.start = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer.sync()
                timer.times.append(time.perf_counter() - timer.start)

        return Callback()


def model_flops_per_token(
    model: Any, shape: dict[str, Any], t_eff: float, trained_share: float, lora: bool
) -> tuple[float, str]:
    """Training FLOPs per token (model FLOPs: recomputation not counted) and the formula."""
    n_layers = sum(
        p.numel() for n, p in model.named_parameters() if ".layers." in n and "lora_" not in n
    )
    d, layers, vocab = shape["hidden_size"], shape["num_hidden_layers"], shape["vocab_size"]
    weights = 4 if lora else 6  # LoRA: no weight gradients for the frozen base
    flops = weights * n_layers + 6 * layers * d * t_eff + 6 * vocab * d * trained_share
    formula = (
        f"F = {weights}*N + 6*L*d*T_eff + 6*V*d*s = {weights}*{n_layers:.3e} + "
        f"6*{layers}*{d}*{t_eff:.0f} + 6*{vocab}*{d}*{trained_share:.3f} = {flops:.3e} FLOP/token"
        " (N: decoder-layer weights; T_eff = sum(len^2)/sum(len) of the packed examples, causal;"
        " s: share of positions the fused LM head scores)"
    )
    return flops, formula


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import yaml

    from genteach.train.recipe import parse_args, train

    work = Path(args.workdir)
    shape = TINY if args.tiny else MISTRAL_7B
    case = CASES[args.child]
    rows_per_step = args.batch * args.accum
    config = {
        "model_name_or_path": str(work / "model"),
        "random_init": True,
        "sources": [{"path": str(work / "pairs.jsonl")}],
        "max_length": args.max_length,
        "packing": True,
        "per_device_train_batch_size": args.batch,
        "gradient_accumulation_steps": args.accum,
        "max_steps": args.warmup + args.steps,
        "learning_rate": 8e-6,
        "warmup_steps": 500,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.1,
        "optim": "adamw_torch_fused" if args.device == "cuda" else "adamw_torch",
        "bf16": args.device == "cuda",
        "use_cpu": args.device == "cpu",
        "save_strategy": "no",
        "logging_steps": 1,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "output_dir": str(work / f"out-{args.child}"),
        **case,
    }
    path = work / f"{args.child}.yaml"
    path.write_text(yaml.safe_dump(config))
    timer = StepTimer(args.device)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    data_args, training_args, model_args, recipe_args = parse_args(["--config", str(path)])
    result = train(data_args, training_args, model_args, recipe_args, [timer.callback()])
    trainer = result.trainer
    lengths = [n for row in trainer.train_dataset["seq_lengths"] for n in row]
    row_tokens = statistics.fmean(sum(r) for r in trainer.train_dataset["seq_lengths"])
    t_eff = sum(n * n for n in lengths) / sum(lengths)
    labels = [x for row in trainer.train_dataset["labels"] for x in row]
    trained_share = sum(1 for x in labels if x != -100) / len(labels)
    flops, formula = model_flops_per_token(
        trainer.model, shape, t_eff, trained_share, lora=bool(case.get("use_peft"))
    )
    measured = timer.times[args.warmup :]
    step = statistics.median(measured)
    tokens_per_s = rows_per_step * row_tokens / step
    peak = H200_PEAK if args.device == "cuda" else None
    out = {
        "case": args.child,
        "steps_timed": len(measured),
        "step_s": step,
        "step_s_all": timer.times,
        "tokens_per_step": rows_per_step * row_tokens,
        "tokens_per_s": tokens_per_s,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None,
        "mfu": tokens_per_s * flops / peak if peak else None,
        "flops_per_token": flops,
        "formula": formula,
        "examples_per_row": len(lengths) / len(trainer.train_dataset),
        "trainable_dtypes": sorted(
            {str(p.dtype) for p in trainer.model.parameters() if p.requires_grad}
        ),
        "attention": trainer.model.config._attn_implementation,
        "loss": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }
    return out


def run_isolation(args: argparse.Namespace) -> dict[str, Any]:
    """Packed vs alone logits in bf16 (fp32 on CPU), per attention path, on a 2-layer model
    of the benchmark's width, batches from the recipe's own packing and collator."""
    import importlib.util
    import itertools

    import torch
    import yaml

    from genteach.train.recipe import build_trainer, parse_args

    work = Path(args.workdir)
    paths = ["sdpa", "eager"] if args.device == "cpu" else ["flex_attention", "sdpa"]
    if args.device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        paths.insert(0, "flash_attention_2")
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    results: dict[str, Any] = {}
    for attention in paths:
        config = {
            "model_name_or_path": str(work / "model-2layers"),
            "random_init": True,
            "pure_bf16": args.device == "cuda",  # the model in bf16, as the check asks
            "attn_implementation": attention,
            "sources": [{"path": str(work / "pairs.jsonl")}],
            "max_length": min(args.max_length, 4096),
            "packing": True,
            "per_device_train_batch_size": 2,
            "use_cpu": args.device == "cpu",
            "bf16": args.device == "cuda",
            "report_to": "none",
            "output_dir": str(work / f"iso-{attention}"),
        }
        path = work / f"iso-{attention}.yaml"
        path.write_text(yaml.safe_dump(config))
        trainer, _ = build_trainer(*parse_args(["--config", str(path)]))
        model = trainer.model.eval().to(dtype)
        batch = {
            k: v.to(model.device) for k, v in next(iter(trainer.get_train_dataloader())).items()
        }
        worst = leak = 0.0
        examples = 0
        with torch.no_grad():
            kwargs = {k: v for k, v in batch.items() if k != "labels"}
            packed = model(**kwargs, use_cache=False).logits
            ids_all, pos_all = batch["input_ids"], batch["position_ids"]
            pad = trainer.data_collator.pad_token_id
            for r in range(ids_all.shape[0]):
                ids, positions = ids_all[r], pos_all[r]
                starts = [*(positions == 0).nonzero().flatten().tolist(), len(ids)]
                leaky = model(input_ids=ids[None], use_cache=False).logits[0]
                for start, end in itertools.pairwise(starts):
                    if bool((ids[start:end] == pad).all()):
                        continue  # the padding tail of a row
                    alone = model(input_ids=ids[None, start:end], use_cache=False).logits[0]
                    worst = max(worst, (packed[r, start:end] - alone).abs().max().item())
                    leak = max(leak, (leaky[start:end] - alone).abs().max().item())
                    examples += 1
        results[attention] = {
            "max_abs_diff": worst,
            "leak_without_positions": leak,
            "examples": examples,
            "rows": int(ids_all.shape[0]),
            "isolated": worst < leak / 10,
        }
        del trainer, model
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return results


# The parent: set-up, children, table


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "pyarrow"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def child(args: argparse.Namespace, name: str, timeout: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--workdir",
        args.workdir,
        "--device",
        args.device,
        "--max-length",
        str(args.max_length),
        "--batch",
        str(args.batch),
        "--accum",
        str(args.accum),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        *(["--tiny"] if args.tiny else []),
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"timed out after {timeout} s"}
    result_file = Path(args.workdir) / f"{name}.json"
    if done.returncode != 0 or not result_file.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        oom = "OutOfMemoryError" in done.stderr or "out of memory" in done.stderr
        return {"case": name, "error": "out of memory" if oom else "failed", "log": tail}
    out: dict[str, Any] = json.loads(result_file.read_text())
    out["wall_s"] = time.perf_counter() - started
    return out


def table(results: list[dict[str, Any]]) -> str:
    head = "| case | step s (median) | tokens/step | tokens/s | peak GiB | MFU | trainable |"
    lines = [head + " attention |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['error']} | | | | | | |")
            continue
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        lines.append(
            f"| {r['case']} | {r['step_s']:.3f} | {r['tokens_per_step']:,.0f} | "
            f"{r['tokens_per_s']:,.0f} | {peak} | {mfu} | {'/'.join(r['trainable_dtypes'])} | "
            f"{r['attention']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide Mistral")
    parser.add_argument("--max-length", type=int, default=None, help="packed row length")
    parser.add_argument("--batch", type=int, default=1, help="packed rows per micro-batch")
    parser.add_argument("--accum", type=int, default=4, help="micro-batches per step")
    parser.add_argument("--steps", type=int, default=3, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--timeout", type=int, default=200, help="most seconds per case")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="most seconds in all (GPU default 450): cases that would start later are skipped",
    )
    parser.add_argument("--no-isolation", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="write all results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.max_length is None:
        args.max_length = 256 if args.tiny else 8192
    if args.budget is None:
        args.budget = 450 if args.device == "cuda" else 3600

    if args.child:  # inside a child process: run one case, write its JSON
        work = Path(args.workdir)
        result = run_isolation(args) if args.child == "isolation" else run_case(args)
        (work / f"{args.child}.json").write_text(json.dumps(result, indent=2))
        return 0

    start = time.perf_counter()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="genteach-gpu-bench-")
    work = Path(args.workdir)
    shape = TINY if args.tiny else MISTRAL_7B
    print(f"versions: {versions()}")
    if args.device == "cuda":
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}")
    make_model_dir(work / "model", shape)
    make_model_dir(work / "model-2layers", {**shape, "num_hidden_layers": 2})
    rows = args.batch * args.accum * (args.warmup + args.steps)
    make_pairs(work / "pairs.jsonl", int(rows * args.max_length * 1.2), args.max_length)
    print(f"set-up {time.perf_counter() - start:.1f} s; workdir {work}")

    def timeout_left() -> int:
        return min(args.timeout, int(args.budget - (time.perf_counter() - start)))

    isolation: dict[str, Any] = {}
    if not args.no_isolation:  # first: short, and the check that must not be skipped
        isolation = child(args, "isolation", timeout_left())
        print(f"isolation (packed vs alone): {json.dumps(isolation, indent=1)}", flush=True)

    results = []
    for name in args.cases.split(","):
        if timeout_left() < 30:
            results.append({"case": name, "error": "skipped (time budget)"})
            continue
        result = child(args, name, timeout_left())
        results.append(result)
        shown = {k: v for k, v in result.items() if k not in ("formula", "step_s_all", "log")}
        print(f"{name}: {json.dumps(shown)}", flush=True)
        if "log" in result:
            print("\n".join(result["log"]))
    print()
    print(table(results))
    for r in results:
        if "formula" in r:
            print(f"{r['case']}: {r['formula']}")
    peak = "989.4 TFLOP/s (H100/H200 SXM dense bf16)" if args.device == "cuda" else "n/a (CPU)"
    print(f"MFU = tokens/s x F / peak, peak = {peak}")
    total = time.perf_counter() - start
    print(f"\ntotal {total:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "versions": versions(),
                    "cases": results,
                    "isolation": isolation,
                    "total_s": total,
                },
                indent=2,
            )
        )
    failed = [r for r in results if r.get("error") == "failed"]
    broken = "error" in isolation or any(
        not v["isolated"] for v in isolation.values() if isinstance(v, dict)
    )
    return 1 if failed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
