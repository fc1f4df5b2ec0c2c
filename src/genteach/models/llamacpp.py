"""llama.cpp in this process as a genteach :class:`ModelClient`, with continuous batching.

:class:`LlamaCppModel` runs a GGUF chat model (by default the embedded
Qwen2.5-Coder-1.5B-Instruct, see :mod:`genteach.models.local_assets`) through
llama-cpp-python's bindings of the llama.cpp library, on the CPU. It is the embedded
default: on the 2-core machines genteach is tested on it makes several times the tokens
per CPU-second of the transformers path (:class:`~genteach.models.local.LocalModel`), in
the GGUF's own quantisation, whatever the processor's bf16 support, and it needs no
conversion of the shipped file (see docs/benchmarks/embedded_default.md).

Every call becomes one *sequence* per sample. A worker thread owns the llama.cpp context
and advances all running sequences together: each step is one ``llama_decode`` holding the
next token of every generating sequence and a slice of the prompt of sequences that are
still reading theirs (continuous batching, as llama.cpp's server does with parallel
slots). A sequence that ends frees its place at once for the next queued call, so a long
answer never holds short ones back. Each slot has its own part of the KV cache
(``slot_context`` tokens), and keeps the prompt of its last call: a new call goes to the
slot holding the longest start of its prompt and reads only the rest, so the instructions
an agent sends with every call are read once per slot, not once per call.

Each sequence keeps its own settings: its own sampler chain (temperature, top-p within
the ``top_k`` likeliest tokens, its own seed; temperature 0 is greedy), its own grammar
or JSON schema (llguidance masks the logits, the same grammars as the transformers path),
its own ``max_tokens`` and stop sequences, and it ends as soon as it falls into a loop
(reported as cut off, ``finish_reason == "length"``).

A call is never cancelled while the model makes progress: its timeout is on the lack of
it (no decoding step for ``stall_timeout`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import logging
import os
import queue
import secrets
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from genteach.models.base import Message, ModelError
from genteach.models.local import (
    LocalEngine,
    _loops,
    _new_matcher,
    _Request,
    _Result,
    _row_grammar,
    _stop_position,
    chat_message,
)
from genteach.models.local_assets import (
    INSTALL_HINT,
    LocalModelError,
    default_gguf_path,
    embedded_spec,
)

logger = logging.getLogger(__name__)

# Bytes of a sequence's latest text searched for its stop sequences after each token.
_STOP_TAIL_BYTES = 256
_LOOP_WINDOW = 192
_LOOP_DISTINCT = 24
# Shorter shared prefixes are read again (not worth the bookkeeping).
_MIN_SHARED = 32
# A slot's cache is copied to another only when that saves reading more prompt tokens.
_COPY_GAIN = 256


@dataclass
class _Sequence:
    """One running sample: its row, its slot (llama.cpp sequence id) and what it has made."""

    row: _Request
    prompt: list[int]
    budget: int
    sampler: Any
    matcher: Any = None
    seq_id: int = -1  # its slot, once admitted
    fed: int = 0  # prompt tokens already in the KV cache
    out: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)

    @property
    def reading(self) -> bool:
        return self.fed < len(self.prompt)


class LlamaCppModel(LocalEngine):
    """A GGUF chat model run by llama.cpp in this process, batching all running calls.

    Args:
        model: a ``.gguf`` file, or the name of a shipped model
            (:data:`~genteach.models.local_assets.EMBEDDED_MODELS`); ``None`` uses
            :func:`~genteach.models.local_assets.default_local_model` (a shipped model's
            file is assembled on first use, see
            :func:`~genteach.models.local_assets.default_gguf_path`).
        name: the teacher name reported (records say it); default ``local:`` and the file's
            stem, ``local:qwen2.5-coder-1.5b-instruct`` for the embedded model.
        parallel: most sequences decoded together (llama.cpp's "slots").
        slot_context: KV-cache cells of each slot: the most prompt and answer tokens of one
            call (the answer is cut to fit, with a logged warning); at most the model's
            trained context. 8192 leaves ``max_tokens`` to the longest prompts of the shipped
            skills (about 5,000 tokens with a repair); the KV cache of the 1.5B model takes
            about 28 KB per cell, 1.9 GB for 8 slots.
        max_tokens: completion budget of a request that gives none.
        temperature: temperature of a request that gives none (0 means greedy).
        top_p: nucleus sampling mass.
        top_k: sampling considers only this many likeliest tokens (then top-p).
        threads: CPU threads of llama.cpp; default: the CPUs this process may use.
        prefill_chunk: most prompt tokens read per step, so the sequences generating
            beside a long prompt keep advancing.
        reuse_prompts: keep each finished call's prompt in its slot, so that a later
            prompt starting the same way (the same agent's instructions, the same passage)
            reads only what differs: it goes to the free slot holding the longest common
            start, or has that start copied from another slot when that saves more.
        cache_dir: cache for the embedded model; default ``$GENTEACH_CACHE``.
        constrained: constrain requests with a ``grammar`` (Lark, llguidance's dialect) or a
            ``response_schema`` with llguidance; ``None`` means "if llguidance is installed".
        stall_timeout: seconds without a decoding step (model loading aside) after which
            the calls waiting on the model fail as transient (``None``: wait for ever).

    Tools and tool turns go through the model's chat template (read from the GGUF and
    rendered with jinja2), and ``<tool_call>`` blocks in the answer come back as tool calls,
    as with :class:`~genteach.models.local.LocalModel`.

    Raises:
        LocalModelError: on the first call, when llama-cpp-python is not installed or the
            model cannot be loaded.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        name: str | None = None,
        parallel: int = 8,
        slot_context: int = 8192,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        top_p: float = 0.8,
        top_k: int = 64,
        threads: int | None = None,
        prefill_chunk: int = 256,
        reuse_prompts: bool = True,
        cache_dir: Path | None = None,
        constrained: bool | None = None,
        stall_timeout: float | None = 300.0,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be >= 1")
        if prefill_chunk < 1:
            raise ValueError("prefill_chunk must be >= 1")
        if slot_context < 16:
            raise ValueError("slot_context must be >= 16")
        super().__init__(
            model,
            name=name,
            cache_dir=cache_dir,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            constrained=constrained,
            stall_timeout=stall_timeout,
        )
        self.parallel = parallel
        self.slot_context = slot_context
        self.top_k = top_k
        self.threads = threads or len(os.sched_getaffinity(0))
        self.prefill_chunk = prefill_chunk
        self.reuse_prompts = reuse_prompts
        self._inbox: queue.Queue[_Request] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._engine: _Engine | None = None
        self._load_lock = threading.Lock()
        self._load_error: BaseException | None = None

    # ----------------------------------------------------------------- public API
    async def load(self) -> None:
        """Load the model now instead of on the first call."""
        self._check_open()
        await asyncio.get_running_loop().run_in_executor(None, self._ensure_engine)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of ``messages`` under the chat template (loads the model)."""
        engine = self._ensure_engine()
        return len(engine.prompt_ids([chat_message(m) for m in messages], None))

    async def close(self) -> None:
        """Fail queued and running calls, stop the worker and release the model."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()
        worker = self._worker
        if worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, worker.join)
        self._fail_queued(ModelError("local model client closed"))
        if self._engine is not None:
            self._engine.free()
            self._engine = None

    # ----------------------------------------------------------------- event-loop side
    async def _submit(self, rows: list[_Request]) -> None:
        if self._load_error is not None:  # the model cannot load: no call can succeed
            raise self._load_error
        for row in rows:
            self._inbox.put(row)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._serve, name="genteach-llamacpp", daemon=True
            )
            self._worker.start()

    # ----------------------------------------------------------------- worker thread
    def _ensure_engine(self) -> _Engine:
        if self._engine is not None:
            return self._engine
        if self._load_error is not None:
            raise self._load_error
        with self._load_lock:
            if self._engine is None:
                self._loading = True
                try:
                    self._engine = _Engine.load(self._resolve_path(), self)
                finally:
                    self._loading = False
                    self._progress_at = time.monotonic()
            return self._engine

    def _resolve_path(self) -> Path:
        spec = embedded_spec(self._model_spec)
        if spec is not None:
            return default_gguf_path(self.cache_dir, spec=spec)
        path = Path(str(self._model_spec))
        if path.suffix != ".gguf" or not path.is_file():
            raise LocalModelError(
                f"{path}: the llama.cpp engine needs a .gguf file (use engine='transformers' "
                "for a Hugging Face folder or model id)"
            )
        return path

    def _serve(self) -> None:
        """The worker loop: admit queued rows, step every running sequence, finish them."""
        try:
            engine = self._ensure_engine()
        except BaseException as exc:
            error = exc if isinstance(exc, ModelError) else LocalModelError(str(exc))
            self._load_error = error
            self._fail_queued(error)
            return
        running: list[_Sequence] = []
        while not self._abort.is_set():
            running = [s for s in running if not self._dropped(engine, s)]
            self._admit(engine, running)
            if not running:
                continue
            try:
                self._step(engine, running)
            except Exception as exc:
                error = exc if isinstance(exc, ModelError) else ModelError(f"llama.cpp: {exc}")
                for s in running:
                    engine.release(s)
                    _resolve(s.row, error)
                running = []
        for s in running:
            engine.release(s)
            _resolve(s.row, ModelError("local model client closed"))

    def _dropped(self, engine: _Engine, s: _Sequence) -> bool:
        """Release a sequence whose call is gone (cancelled or timed out)."""
        if s.row.future.done():
            engine.release(s)
            return True
        return False

    def _admit(self, engine: _Engine, running: list[_Sequence]) -> None:
        """Start queued rows while there is a free slot."""
        while len(running) < self.parallel:
            try:
                row = self._inbox.get(timeout=0.05) if not running else self._inbox.get_nowait()
            except queue.Empty:
                return
            if row.future.done():
                continue
            try:
                seq = engine.start(row)
            except ModelError as exc:
                _resolve(row, exc)
                continue
            self._add_stats(0, (), 0.0, reused=engine.place(seq, running))
            running.append(seq)

    def _step(self, engine: _Engine, running: list[_Sequence]) -> None:
        """One ``llama_decode`` over every running sequence, then one token for each
        sequence that was given its logits."""
        start = time.perf_counter()
        wanted, read = engine.decode(running, self.prefill_chunk)
        rows = len(running)
        finished: list[tuple[_Request, _Result]] = []
        for seq, index in wanted:
            result = engine.advance(seq, index)
            if result is not None:
                engine.retire(seq)
                running.remove(seq)
                finished.append((seq.row, result))
        self._progress_at = time.monotonic()
        self._tokens_made += len(wanted)
        self._tokens_read += read
        self._add_stats(rows, [r for _, r in finished], time.perf_counter() - start)
        for row, result in finished:  # after the counters, which a caller may then read
            _resolve(row, result)

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                row = self._inbox.get_nowait()
            except queue.Empty:
                return
            _resolve(row, error)


class _Engine:
    """The llama.cpp model, context, batch and tokenizer (worker thread, except
    :meth:`prompt_ids`, which only reads the vocabulary)."""

    def __init__(self, llama: Any, model: Any, ctx: Any, path: Path, owner: LlamaCppModel) -> None:
        self.llama = llama
        self.model = model
        self.ctx = ctx
        self.path = path
        self.top_k = owner.top_k
        self.reuse = owner.reuse_prompts
        self.vocab = llama.llama_model_get_vocab(model)
        self.n_vocab = int(llama.llama_vocab_n_tokens(self.vocab))
        #: KV cells of one slot.
        self.capacity = int(llama.llama_n_ctx_seq(ctx))
        #: The tokens each slot holds in the KV cache (a finished call's prompt stays).
        self.slots: list[list[int]] = [[] for _ in range(owner.parallel)]
        self._last_used = [0.0] * owner.parallel
        self.memory = llama.llama_get_memory(ctx)
        self.batch_size = int(llama.llama_n_batch(ctx))
        self.batch = llama.llama_batch_init(self.batch_size, 0, 1)
        self.template = _meta(llama, model, "tokenizer.chat_template")
        if not self.template:
            raise LocalModelError(f"{path} has no chat template; it is not a chat model")
        self.bos = _special_text(llama, self.vocab, int(llama.llama_vocab_bos(self.vocab)))
        self.eos = _special_text(llama, self.vocab, int(llama.llama_vocab_eos(self.vocab)))
        im_end = self._special_id("<|im_end|>")
        self.im_end = im_end if im_end is not None else int(llama.llama_vocab_eos(self.vocab))
        self._guidance: Any = None
        self._bitmask: Any = None
        self._piece_buf = ctypes.create_string_buffer(256)

    @classmethod
    def load(cls, path: Path, owner: LlamaCppModel) -> _Engine:
        llama = _import_llama()
        start = time.perf_counter()
        llama.llama_backend_init()
        _quiet(llama)
        mparams = llama.llama_model_default_params()
        model = llama.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise LocalModelError(f"llama.cpp cannot load {path} (not a GGUF model file?)")
        trained = int(llama.llama_model_n_ctx_train(model)) or owner.slot_context
        n_ctx = owner.parallel * min(owner.slot_context, trained)
        cparams = llama.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = max(owner.prefill_chunk + owner.parallel, 512)
        cparams.n_ubatch = cparams.n_batch
        cparams.n_seq_max = owner.parallel
        cparams.n_threads = owner.threads
        cparams.n_threads_batch = owner.threads
        # One KV stream per slot: a token attends over its own sequence only (a unified
        # cache would make every token attend over all slots' cells, masked: about twice
        # the decoding time with eight 1,200-token prompts on 2 cores).
        cparams.kv_unified = False
        cparams.no_perf = True
        ctx = llama.llama_init_from_model(model, cparams)
        if not ctx:
            llama.llama_model_free(model)
            raise LocalModelError(f"llama.cpp cannot make a context of {n_ctx} tokens for {path}")
        try:
            engine = cls(llama, model, ctx, path, owner)
        except BaseException:
            llama.llama_free(ctx)
            llama.llama_model_free(model)
            raise
        logger.info(
            "loaded %s with llama.cpp in %.1fs (%d threads, %d slots of %d KV cells)",
            path,
            time.perf_counter() - start,
            owner.threads,
            owner.parallel,
            engine.capacity,
        )
        return engine

    # ------------------------------------------------------------------ prompts
    def prompt_ids(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> list[int]:
        text = render_chat(self.template, messages, tools, bos=self.bos, eos=self.eos)
        return self.tokenize(text)

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        tokens = (self.llama.llama_token * size)()
        n = self.llama.llama_tokenize(self.vocab, data, len(data), tokens, size, False, True)
        if n < 0:  # pragma: no cover - never more tokens than bytes plus specials
            raise ModelError(f"tokenizing a prompt of {len(data)} bytes failed ({n})")
        return list(tokens[:n])

    def _special_id(self, text: str) -> int | None:
        ids = self.tokenize(text)
        return ids[0] if len(ids) == 1 else None

    # ------------------------------------------------------------------ sequences
    def start(self, row: _Request) -> _Sequence:
        """A sequence for ``row`` (not yet in a slot): its prompt, sampler and matcher."""
        prompt = self.prompt_ids(row.messages, row.tools)
        if len(prompt) >= self.capacity:
            raise ModelError(
                f"prompt of {len(prompt)} tokens exceeds the context of {self.capacity} "
                "tokens of a slot (LlamaCppModel(slot_context=...))"
            )
        grammar = _row_grammar(row)
        matcher = None
        if grammar is not None:
            matcher = _new_matcher(self._guidance_tokenizer(), *grammar)
        return _Sequence(
            row=row,
            prompt=prompt,
            budget=min(row.max_new_tokens, self.capacity - len(prompt)),
            sampler=self._sampler(row),
            matcher=matcher,
        )

    def _sampler(self, row: _Request) -> Any:
        llama = self.llama
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if row.temperature <= 0:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
            return chain
        seed = row.seed if row.seed is not None else secrets.randbits(32)
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_k(self.top_k))
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(row.temperature))
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_p(row.top_p, 1))
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _guidance_tokenizer(self) -> Any:
        if self._guidance is None:
            import llguidance.llamacpp

            with warnings.catch_warnings():  # it calls a deprecated binding per token
                warnings.simplefilter("ignore", DeprecationWarning)
                self._guidance = llguidance.llamacpp.lltokenizer_from_vocab(
                    self.vocab, eos_token=self.im_end
                )
        return self._guidance

    def place(self, seq: _Sequence, running: list[_Sequence]) -> int:
        """Put ``seq`` in a free slot, starting from the longest prefix of its prompt that
        a slot already holds; return how many prompt tokens it need not read.

        The free slot sharing the longest start with the prompt is taken (the least
        recently used among equals). If a busy slot shares a longer one by more than
        ``_COPY_GAIN`` tokens, its cache is copied over first (llama.cpp copies a whole
        slot; what is not shared is then removed). The last
        prompt token is always read again: its logits give the first answer token."""
        held = list(self.slots)
        for s in running:  # a running slot holds its prompt so far (and its answer)
            held[s.seq_id] = s.prompt[: s.fed]
        busy = {s.seq_id for s in running}
        limit = len(seq.prompt) - 1 if self.reuse else 0
        shared = [min(_common_prefix(tokens, seq.prompt), limit) for tokens in held]
        free = [i for i in range(len(held)) if i not in busy]
        slot = max(free, key=lambda i: (shared[i], -self._last_used[i]))
        keep = shared[slot]
        donor = max(range(len(held)), key=shared.__getitem__)
        if shared[donor] - keep > _COPY_GAIN:
            self.llama.llama_memory_seq_cp(self.memory, donor, slot, -1, -1)
            keep = shared[donor]
        if keep < _MIN_SHARED:
            keep = 0
        self.llama.llama_memory_seq_rm(self.memory, slot, keep, -1)
        self.slots[slot] = seq.prompt[:keep]
        self._last_used[slot] = time.monotonic()
        seq.seq_id, seq.fed = slot, keep
        return keep

    def retire(self, seq: _Sequence) -> None:
        """Release a finished sequence, keeping its prompt in its slot for later calls."""
        if not self.reuse:
            self.release(seq)
            return
        self.llama.llama_memory_seq_rm(self.memory, seq.seq_id, len(seq.prompt), -1)
        self.slots[seq.seq_id] = seq.prompt
        self._free_sampler(seq)

    def release(self, seq: _Sequence) -> None:
        """Free a sequence's slot (its KV cells) and sampler."""
        if seq.seq_id >= 0:
            self.llama.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
            self.slots[seq.seq_id] = []
        self._free_sampler(seq)

    def _free_sampler(self, seq: _Sequence) -> None:
        if seq.sampler is not None:
            self.llama.llama_sampler_free(seq.sampler)
            seq.sampler = None

    def decode(
        self, running: list[_Sequence], chunk: int
    ) -> tuple[list[tuple[_Sequence, int]], int]:
        """Fill the batch (each generating sequence's last token, then prompt slices) and
        decode it; return the sequences that got logits, with their batch index, and the
        number of prompt tokens read."""
        batch = self.batch
        n = 0
        wanted: list[tuple[_Sequence, int]] = []

        def add(token: int, pos: int, seq_id: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq_id
            batch.logits[n] = logits
            n += 1

        for s in running:
            if not s.reading:
                add(s.out[-1], len(s.prompt) + len(s.out) - 1, s.seq_id, True)
                wanted.append((s, n - 1))
        generating = n
        for s in running:
            if not s.reading:
                continue
            take = min(len(s.prompt) - s.fed, chunk, self.batch_size - n)
            if take <= 0:
                break
            for k in range(take):
                pos = s.fed + k
                last = pos == len(s.prompt) - 1
                add(s.prompt[pos], pos, s.seq_id, last)
            s.fed += take
            if not s.reading:
                wanted.append((s, n - 1))
        batch.n_tokens = n
        rc = self.llama.llama_decode(self.ctx, batch)
        if rc != 0:
            raise ModelError(f"llama_decode failed with code {rc} on a batch of {n} tokens")
        return wanted, n - generating

    def advance(self, seq: _Sequence, index: int) -> _Result | None:
        """Sample the next token of ``seq`` from the logits at ``index``; return its result
        when it has ended."""
        llama = self.llama
        if seq.matcher is not None:
            self._mask(seq.matcher, index)
        token = int(llama.llama_sampler_sample(seq.sampler, self.ctx, index))
        if seq.matcher is not None and not seq.matcher.is_stopped():
            seq.matcher.consume_token(token)
        if llama.llama_vocab_is_eog(self.vocab, token):
            return self._result(seq, "stop", len(seq.out) + 1)
        seq.out.append(token)
        seq.text += _piece(llama, self.vocab, token, buf=self._piece_buf)
        if seq.row.stop:
            tail = bytes(seq.text[-_STOP_TAIL_BYTES:]).decode("utf-8", errors="ignore")
            if any(s and s in tail for s in seq.row.stop):
                return self._result(seq, "stop", len(seq.out))
        if len(seq.out) >= seq.budget:
            if seq.budget < seq.row.max_new_tokens:
                logger.warning(
                    "an answer was cut at %d tokens, not at max_tokens %d: its prompt of %d "
                    "tokens filled the rest of the slot's %d (LlamaCppModel(slot_context=...))",
                    seq.budget,
                    seq.row.max_new_tokens,
                    len(seq.prompt),
                    self.capacity,
                )
            return self._result(seq, "length", len(seq.out))
        if len(seq.out) >= _LOOP_WINDOW and _loops(seq.out[-_LOOP_WINDOW:], _LOOP_DISTINCT):
            logger.info("a sequence ended after %d tokens: it repeats itself", len(seq.out))
            return self._result(seq, "length", len(seq.out))
        return None

    def _mask(self, matcher: Any, index: int) -> None:
        """Set the logits at ``index`` of every token the grammar forbids to -inf."""
        import llguidance.numpy as ln
        import numpy as np

        if self._bitmask is None:
            self._bitmask = ln.allocate_token_bitmask(1, self.n_vocab)
        ln.fill_next_token_bitmask(matcher, self._bitmask, 0)
        if matcher.is_error():
            logger.warning("constrained decoding failed: %s", matcher.get_error())
        logits = np.ctypeslib.as_array(
            self.llama.llama_get_logits_ith(self.ctx, index), shape=(self.n_vocab,)
        )
        bits = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little")
        logits[bits[: self.n_vocab] == 0] = -np.inf

    def _result(
        self, seq: _Sequence, reason: Literal["stop", "length"], completion_tokens: int
    ) -> _Result:
        text = bytes(seq.text).decode("utf-8", errors="replace")
        cut = _stop_position(text, seq.row.stop)
        if cut is not None:
            text, reason = text[:cut], "stop"
        return _Result(text, len(seq.prompt), completion_tokens, reason)

    def free(self) -> None:
        llama = self.llama
        llama.llama_batch_free(self.batch)
        llama.llama_free(self.ctx)
        llama.llama_model_free(self.model)


# --------------------------------------------------------------------------- helpers
def render_chat(
    template: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    *,
    bos: str = "",
    eos: str = "",
) -> str:
    """``messages`` (and ``tools``) rendered by a Hugging Face style chat template, with the
    generation prompt, in a sandboxed jinja2 environment: the variables and helpers such
    templates use (``tojson``, ``raise_exception``, ``strftime_now``, ``bos_token``,
    ``eos_token``). The template is compiled once.

    Raises:
        ModelError: the template fails on these messages (it raised, or is not jinja2).
    """
    from jinja2.exceptions import TemplateError

    try:
        return _compiled(template).render(
            messages=messages,
            tools=tools,
            add_generation_prompt=True,
            bos_token=bos,
            eos_token=eos,
        )
    except TemplateError as exc:
        raise ModelError(f"the model's chat template failed: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _compiled(template: str) -> Any:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **kw: Any) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, **kw)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def _resolve(row: _Request, outcome: _Result | BaseException) -> None:
    """Settle a row's future from the worker thread (on its event loop's thread)."""

    def settle() -> None:
        if row.future.done():
            return
        if isinstance(outcome, BaseException):
            row.future.set_exception(outcome)
        else:
            row.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
        row.future.get_loop().call_soon_threadsafe(settle)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LocalModelError(
            f"the llama.cpp engine needs llama-cpp-python ({exc}): {INSTALL_HINT}"
        ) from exc
    return llama_cpp


def _quiet(llama: Any) -> None:
    """Route llama.cpp's log lines to nowhere (they are many, and on stderr)."""
    callback = llama.llama_log_callback(lambda level, text, data: None)
    _quiet.callback = callback  # type: ignore[attr-defined]  # keep it alive
    llama.llama_log_set(callback, ctypes.c_void_p(0))


def _meta(llama: Any, model: Any, key: str) -> str:
    size = 1 << 16
    buf = ctypes.create_string_buffer(size)
    n = int(llama.llama_model_meta_val_str(model, key.encode(), buf, size))
    if n < 0:
        return ""
    if n >= size:
        buf = ctypes.create_string_buffer(n + 1)
        llama.llama_model_meta_val_str(model, key.encode(), buf, n + 1)
    return buf.value.decode("utf-8", errors="replace")


def _common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _special_text(llama: Any, vocab: Any, token: int) -> str:
    """The text of a special token (BOS, EOS), or "" where the model has none."""
    if token < 0:
        return ""
    return _piece(llama, vocab, token, special=True).decode("utf-8", errors="replace")


def _piece(llama: Any, vocab: Any, token: int, *, special: bool = False, buf: Any = None) -> bytes:
    buf = buf if buf is not None else ctypes.create_string_buffer(256)
    n = int(llama.llama_token_to_piece(vocab, token, buf, len(buf), 0, special))
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = int(llama.llama_token_to_piece(vocab, token, buf, -n, 0, special))
    return bytes(buf.raw[:n])


__all__ = ["LlamaCppModel", "render_chat"]
