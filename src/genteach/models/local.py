"""An in-process transformers model as a genteach :class:`ModelClient`, with batching.

:class:`LocalModel` runs a small chat model (by default the embedded
Qwen2.5-Coder-1.5B-Instruct, see :mod:`genteach.models.local_assets`) on the CPU, in the
precision the processor runs faster (bf16 where it has native bf16 instructions, else fp32:
measured at load, see :func:`pick_dtype`).
Concurrent calls that arrive within a few milliseconds of each other are run as one
left-padded batched ``generate`` in a worker thread: on 2 CPU cores a batch of 8 gives
several times the tokens/s of 8 calls in a row, and genteach's flows issue many calls at
once.

Every request in a batch keeps its own settings: a per-row logits processor samples each
row with its own temperature, top-p and random generator (so a ``seed`` reproduces a
sampled answer whatever else is in the batch, up to padding noise in bf16), temperature 0 is
greedy, a grammar or JSON schema constrains its row alone, and a per-row stopping criterion
ends each row at its own ``max_tokens``, at one of its stop sequences, or as soon as it
falls into a loop (reported as cut off, ``finish_reason == "length"``).

A call is never cancelled while the model is making progress: its timeout is on the lack
of it (no new token for ``stall_timeout`` seconds), so a slow CPU makes calls slow, not
failed.

The default model is smoke-test quality: use it to run flows offline, not to make data.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from genteach.models.base import (
    Choice,
    Completion,
    Message,
    ModelError,
    ModelRequest,
    ToolCall,
    TransientModelError,
    Usage,
)
from genteach.models.local_assets import (
    DEFAULT_LOCAL_MODEL,
    TRANSFORMERS_HINT,
    LocalModelError,
    default_local_model,
    default_model_dir,
    embedded_spec,
    local_teacher_name,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = DEFAULT_LOCAL_MODEL.name
"""Name of the embedded model (records say ``local:<this>``)."""

# How many of a row's last tokens are decoded to look for its stop sequences.
_STOP_TAIL_TOKENS = 32
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class BatchStats:
    """What the client has done so far; read :attr:`LocalModel.stats`."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_seconds: float = 0.0
    #: Prompt tokens found in the engine's cache instead of computed (prefix reuse).
    reused_prompt_tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens per second of ``generate`` so far (0 before the first batch)."""
        return self.completion_tokens / self.generate_seconds if self.generate_seconds else 0.0


@dataclass
class _Request:
    """One row of a batch (one sample of one call), as the worker thread needs it."""

    messages: list[dict[str, Any]]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    future: asyncio.Future[_Result]
    schema: dict[str, Any] | None = None
    grammar: str | None = None
    stop: tuple[str, ...] = ()
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class _Result:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    im_end: int
    pad_id: int
    context_length: int
    path: str = field(default="")
    guidance_tokenizer: Any = None


class LocalEngine:
    """What genteach's in-process engines share: requests become one queued row per
    sample (:meth:`_rows`), rows go to the engine (:meth:`_submit`, per engine), and a call
    waits on its rows for as long as the engine makes progress (:meth:`_wait`), then
    gets its choices back as a :class:`Completion`.

    An engine sets ``_progress_at`` (monotonic time of its last token, or of the start of
    its work), ``_loading`` while it loads the model, ``_abort`` to end work in progress,
    and counts ``_tokens_made``.
    """

    #: The client times its own calls by their progress (see ``stall_timeout``):
    #: :class:`~genteach.models.resilient.ResilientModel` adds no wall-clock timeout.
    handles_timeout: ClassVar[bool] = True

    def __init__(
        self,
        model: str | Path | None,
        *,
        name: str | None,
        cache_dir: Path | None,
        max_tokens: int,
        temperature: float,
        top_p: float,
        constrained: bool | None,
        stall_timeout: float | None,
    ) -> None:
        self._model_spec: str | Path = default_local_model() if model is None else model
        self._name = name or local_teacher_name(self._model_spec)
        self.cache_dir = cache_dir
        self.default_max_tokens = max_tokens
        self.default_temperature = temperature
        self.default_top_p = top_p
        self.stall_timeout = stall_timeout
        available = importlib.util.find_spec("llguidance") is not None
        if constrained and not available:
            raise LocalModelError("constrained=True needs llguidance: pip install llguidance")
        self.constrained = available if constrained is None else constrained
        self._closed = False
        self._stats = BatchStats()
        self._stats_lock = threading.Lock()
        self._progress_at = time.monotonic()
        self._loading = False
        self._abort = threading.Event()
        self._tokens_made = 0
        self._tokens_read = 0

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def stats(self) -> BatchStats:
        """Counters of batches and tokens (a snapshot)."""
        return self._stats

    @property
    def tokens_made(self) -> int:
        """Tokens the model has computed so far, counted at every decoding step (one per
        row), unlike :attr:`stats`, which counts finished work. Its rate is the engine's
        speed now: the ``generate`` progress bar shows it."""
        return self._tokens_made

    @property
    def tokens_read(self) -> int:
        """Prompt tokens the model has read so far (computed, not found in a cache): the
        other half of its work, which dominates while long prompts are read."""
        return self._tokens_read

    async def complete(self, request: ModelRequest) -> Completion:
        """Queue the request's row(s) and wait for them. See the class docstring."""
        self._check_open()
        rows = self._rows(request)
        await self._submit(rows)
        results = await self._wait([row.future for row in rows])
        tools = bool(request.tools)
        choices = [_choice(r, tools=tools) for r in results]
        first = choices[0]
        usage = Usage(
            sum(r.prompt_tokens for r in results[:1]),
            sum(r.completion_tokens for r in results),
            1,
        )
        return Completion(
            text=first.text,
            usage=usage,
            model=self._name,
            finish_reason=first.finish_reason,
            tool_calls=first.tool_calls,
            choices=tuple(choices) if len(choices) > 1 else (),
        )

    def _rows(self, request: ModelRequest) -> list[_Request]:
        """One queued row per sample of ``request``."""
        mt = request.max_tokens if request.max_tokens is not None else self.default_max_tokens
        if mt < 1:
            raise ModelError(f"max_tokens must be >= 1, got {mt}")
        t = request.temperature if request.temperature is not None else self.default_temperature
        messages = [chat_message(m) for m in request.messages]
        schema = grammar = None
        if self.constrained:
            grammar = request.grammar
            if grammar is None and request.response_schema is not None:
                schema = decoding_schema(request.response_schema.model_json_schema())
        tools = [t.openai() for t in request.tools] or None
        loop = asyncio.get_running_loop()
        return [
            _Request(
                messages=messages,
                max_new_tokens=mt,
                temperature=float(t),
                top_p=self.default_top_p,
                seed=None if request.seed is None else request.seed + i,
                future=loop.create_future(),
                schema=schema,
                grammar=grammar,
                stop=tuple(request.stop),
                tools=tools,
            )
            for i in range(request.n)
        ]

    async def _wait(self, futures: list[asyncio.Future[_Result]]) -> list[_Result]:
        """Wait for ``futures`` as long as the model makes progress; fail them as transient
        once it has made no token for ``stall_timeout`` seconds."""
        pending = set(futures)
        while pending:
            timeout = None
            if self.stall_timeout is not None:
                idle = time.monotonic() - self._progress_at
                if idle >= self.stall_timeout and not self._loading:
                    self._abort.set()  # end the stuck batch when it next gets a step in
                    for f in futures:
                        f.cancel()
                    raise TransientModelError(
                        f"the local model made no new token for {idle:.1f}s "
                        f"(stall_timeout {self.stall_timeout:g}s)",
                        overload=True,
                    )
                timeout = max(0.05, self.stall_timeout - idle)
            try:
                _, pending = await asyncio.wait(pending, timeout=timeout)
            except asyncio.CancelledError:  # the caller gave up: the engine drops its rows
                for f in futures:
                    f.cancel()
                raise
        return [f.result() for f in futures]

    async def load(self) -> None:
        """Load the model now instead of on the first call."""
        raise NotImplementedError

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of ``messages`` under the model's chat template."""
        raise NotImplementedError

    async def close(self) -> None:
        """Fail waiting calls and release the model."""
        raise NotImplementedError

    async def _submit(self, rows: list[_Request]) -> None:
        """Hand ``rows`` to the engine; their futures settle when they are done."""
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("local model client is closed")

    def _add_stats(
        self, rows: int, results: Sequence[_Result], seconds: float, reused: int = 0
    ) -> None:
        """Count finished work: ``rows`` run together (a batch), ``results`` finished,
        ``reused`` prompt tokens taken from the cache."""
        with self._stats_lock:
            s = self._stats
            self._stats = BatchStats(
                batches=s.batches + (1 if rows else 0),
                requests=s.requests + len(results),
                largest_batch=max(s.largest_batch, rows),
                prompt_tokens=s.prompt_tokens + sum(r.prompt_tokens for r in results),
                completion_tokens=s.completion_tokens + sum(r.completion_tokens for r in results),
                generate_seconds=s.generate_seconds + seconds,
                reused_prompt_tokens=s.reused_prompt_tokens + reused,
            )


class LocalModel(LocalEngine):
    """A transformers chat model run in this process, batching concurrent calls.

    Args:
        model: an HF-format folder, a ``.gguf`` file, or a Hugging Face model id; ``None``
            uses :func:`~genteach.models.local_assets.default_local_model` (the embedded
            model's folder is built on first use, see
            :func:`~genteach.models.local_assets.default_model_dir`).
        name: the teacher name reported (records say it); default ``local:`` and the
            folder name, ``local:qwen2.5-coder-1.5b-instruct`` for the embedded model.
        max_batch_size: most rows run in one ``generate``.
        batch_window_ms: how long the first queued row waits for company.
        max_tokens: completion budget of a request that gives none.
        temperature: temperature of a request that gives none (0 means greedy).
        top_p: nucleus sampling mass.
        repetition_penalty: applied to every row (it depends on the row alone).
        dtype: torch dtype name for the weights, or ``"auto"``: bf16 on a GPU; on a CPU
            whichever of bf16 and fp32 multiplies faster here (:func:`pick_dtype`). CPUs
            without native bf16 instructions run bf16 several times slower than fp32,
            those with them (AVX512-BF16, AMX) about twice as fast. Read the choice in
            :attr:`resolved_dtype`.
        device: torch device.
        cache_dir: cache for the embedded model; default ``$GENTEACH_CACHE``.
        constrained: constrain requests with a ``grammar`` (Lark, llguidance's dialect) or a
            ``response_schema`` with llguidance, row by row inside the batch; ``None``
            means "if llguidance is installed". Without it both are ignored.
        stall_timeout: seconds without a new token (model loading aside) after which the
            calls waiting on the model fail as transient (``None``: wait for ever). A call
            that is making progress is never cut short, however long it takes.

    A request's ``stop`` sequences end its row (the text stops before them); ``tools`` and
    tool turns go through the model's chat template, and ``<tool_call>`` blocks in the
    answer (the Qwen/Hermes format) come back as :attr:`Completion.tool_calls`; ``n``
    samples run as ``n`` rows (seeds ``seed``, ``seed + 1``, ...). A reply cut off by
    ``max_tokens`` does not parse (``finish_reason == "length"``), constrained or not.

    The model loads lazily, in the worker thread, on the first call (or :meth:`load`). A
    model that cannot be loaded raises :class:`~genteach.models.local_assets.LocalModelError`
    (a :class:`~genteach.models.base.FatalModelError`).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        name: str | None = None,
        max_batch_size: int = 8,
        batch_window_ms: float = 5.0,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        top_p: float = 0.8,
        repetition_penalty: float = 1.0,
        dtype: str = "auto",
        device: str = "cpu",
        cache_dir: Path | None = None,
        constrained: bool | None = None,
        stall_timeout: float | None = 300.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
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
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window_ms / 1000.0
        self.repetition_penalty = repetition_penalty
        self.dtype = dtype
        #: The dtype the weights were loaded in (``dtype``, or what "auto" chose); None
        #: before the model is loaded.
        self.resolved_dtype: str | None = None
        self.device = device
        self._loaded: _Loaded | None = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch_rows = 0

    # ----------------------------------------------------------------- public API
    async def load(self) -> None:
        """Load the model now (in the worker thread) instead of on the first call."""
        self._check_open()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._get_executor(), self._ensure_loaded)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of ``messages`` under the chat template (loads the tokenizer)."""
        return len(_prompt_ids(self._get_tokenizer(), [chat_message(m) for m in messages]))

    async def close(self) -> None:
        """Stop batching, fail queued calls, and release the model."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()  # a batch in progress ends at its next token
        dispatcher = self._dispatcher
        if dispatcher is not None and not dispatcher.done():
            if dispatcher.get_loop() is asyncio.get_running_loop():
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher
            else:  # made under another event loop (which may be closed by now)
                with contextlib.suppress(RuntimeError):
                    dispatcher.get_loop().call_soon_threadsafe(dispatcher.cancel)
        if self._queue is not None:
            while not self._queue.empty():
                req = self._queue.get_nowait()
                if not req.future.done():
                    with contextlib.suppress(RuntimeError):  # its loop may be closed
                        req.future.set_exception(ModelError("local model client closed"))
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            # Runs after any batch in progress, in the thread that owns the model.
            await loop.run_in_executor(self._executor, self._unload)
            self._executor.shutdown(wait=True)
            self._executor = None

    # ----------------------------------------------------------------- event-loop side
    async def _submit(self, rows: list[_Request]) -> None:
        queue = self._ensure_dispatcher()
        for row in rows:
            await queue.put(row)

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genteach-local")
        return self._executor

    def _ensure_dispatcher(self) -> asyncio.Queue[_Request]:
        """The queue of the running loop, with its dispatcher task (made per event loop)."""
        loop = asyncio.get_running_loop()
        if (
            self._queue is None
            or self._loop is not loop
            or self._dispatcher is None
            or self._dispatcher.done()
        ):
            self._loop = loop
            self._queue = asyncio.Queue()
            self._dispatcher = loop.create_task(self._dispatch(self._queue))
        return self._queue

    async def _dispatch(self, queue: asyncio.Queue[_Request]) -> None:
        """Collect rows into batches and run them, one batch at a time."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.batch_window
            while len(batch) < self.max_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [r for r in batch if not r.future.done()]  # drop cancelled calls
            if not live:
                continue
            self._abort.clear()
            self._progress_at = time.monotonic()  # a new batch starts: progress from now
            try:
                results = await loop.run_in_executor(self._get_executor(), self._run_batch, live)
            except Exception as exc:
                error = exc if isinstance(exc, ModelError) else ModelError(f"local generate: {exc}")
                for r in live:
                    if not r.future.done():
                        r.future.set_exception(error)
                continue
            for r, res in zip(live, results, strict=True):
                if not r.future.done():
                    r.future.set_result(res)

    # ----------------------------------------------------------------- worker thread
    def _resolve_path(self) -> tuple[str, str | None]:
        """(folder or id for ``from_pretrained``, gguf file name or None)."""
        spec = self._model_spec
        shipped = embedded_spec(spec)
        if shipped is not None:
            return str(default_model_dir(self.cache_dir, spec=shipped)), None
        path = Path(str(spec))
        if path.suffix == ".gguf" and path.is_file():
            return str(path.parent), path.name
        return str(spec), None

    def _get_tokenizer(self) -> Any:
        if self._loaded is not None:
            return self._loaded.tokenizer
        with self._load_lock:
            if self._tokenizer is None:
                _, tokenizer_cls, _ = _import_torch()
                where, gguf = self._resolve_path()
                self._tokenizer = tokenizer_cls.from_pretrained(
                    where, gguf_file=gguf, **_local_only(where)
                )
            return self._tokenizer

    def _ensure_loaded(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            self._loading = True
            try:
                loaded = self._load()
            except LocalModelError:
                raise
            except Exception as exc:  # a missing folder, an unreadable checkpoint, ...
                where, _ = self._resolve_path()
                raise LocalModelError(
                    f"cannot load the local model {where}: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                self._loading = False
                self._progress_at = time.monotonic()
            self._loaded = loaded
            self._tokenizer = loaded.tokenizer
            return loaded

    def _load(self) -> _Loaded:
        torch, tokenizer_cls, model_cls = _import_torch()
        where, gguf = self._resolve_path()
        start = time.perf_counter()
        tokenizer = self._tokenizer or tokenizer_cls.from_pretrained(
            where, gguf_file=gguf, **_local_only(where)
        )
        tokenizer.padding_side = "left"
        dtype = pick_dtype(self.device) if self.dtype == "auto" else self.dtype
        model = model_cls.from_pretrained(
            where, gguf_file=gguf, dtype=getattr(torch, dtype), **_local_only(where)
        )
        self.resolved_dtype = dtype
        model.to(self.device)
        model.eval()
        eos: set[int] = set()
        for source in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, list):
                eos.update(int(x) for x in source)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = min(eos) if eos else 0
            tokenizer.pad_token_id = pad
        if tokenizer.chat_template is None:
            raise LocalModelError(f"{where} has no chat template; it is not a chat model")
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        loaded = _Loaded(
            model=model,
            tokenizer=tokenizer,
            eos_ids=frozenset(eos),
            im_end=int(im_end) if isinstance(im_end, int) and im_end >= 0 else min(eos),
            pad_id=int(pad),
            context_length=int(getattr(model.config, "max_position_embeddings", 0) or 32768),
            path=where,
        )
        logger.info("loaded %s (%s) in %.1fs", where, dtype, time.perf_counter() - start)
        return loaded

    def _matchers(self, loaded: _Loaded, batch: list[_Request]) -> list[Any]:
        """One llguidance matcher per row with a grammar or schema (None for free rows)."""
        import llguidance.hf

        if loaded.guidance_tokenizer is None:
            loaded.guidance_tokenizer = llguidance.hf.from_tokenizer(
                loaded.tokenizer,
                n_vocab=int(loaded.model.config.vocab_size),
                eos_token=loaded.im_end,
            )
        matchers: list[Any] = []
        for r in batch:
            grammar = _row_grammar(r)
            matchers.append(
                None if grammar is None else _new_matcher(loaded.guidance_tokenizer, *grammar)
            )
        return matchers

    def _unload(self) -> None:
        self._loaded = None
        self._tokenizer = None
        import gc

        gc.collect()

    def _run_batch(self, batch: list[_Request]) -> list[_Result]:
        """Run ``batch`` as one left-padded ``generate`` (worker thread only)."""
        loaded = self._ensure_loaded()
        torch, _, _ = _import_torch()
        from transformers import (
            GenerationConfig,
            LogitsProcessorList,
            StoppingCriteriaList,
        )

        tok = loaded.tokenizer
        prompts = [_prompt_ids(tok, r.messages, r.tools) for r in batch]
        budgets = []
        for ids, r in zip(prompts, batch, strict=True):
            room = loaded.context_length - len(ids)
            if room < 1:
                raise ModelError(
                    f"prompt of {len(ids)} tokens exceeds the context of {loaded.context_length}"
                )
            budgets.append(min(r.max_new_tokens, room))
        padded = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        input_ids = padded["input_ids"].to(self.device)
        attention_mask = padded["attention_mask"].to(self.device)
        width = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=max(budgets),
            do_sample=False,  # the per-row sampler below picks each token
            eos_token_id=sorted(loaded.eos_ids),
            pad_token_id=loaded.pad_id,
            repetition_penalty=self.repetition_penalty,
        )
        processors: list[Any] = []
        if any(r.schema is not None or r.grammar is not None for r in batch):
            processors.append(_GrammarMask(self._matchers(loaded, batch), width))
        processors.append(
            _PerRowSampler(
                [
                    (r.temperature, r.top_p, r.seed if r.seed is not None else secrets.randbits(62))
                    for r in batch
                ]
            )
        )
        budget = _PerRowBudget(
            width,
            budgets,
            stops=[r.stop for r in batch],
            decode=tok.decode,
            on_step=self._step,
            abort=self._abort,
        )
        self._batch_rows = len(batch)
        self._tokens_read += sum(len(ids) for ids in prompts)
        start = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
                stopping_criteria=StoppingCriteriaList([budget]),
            )
        elapsed = time.perf_counter() - start
        results: list[_Result] = []
        for i, (ids, r) in enumerate(zip(prompts, batch, strict=True)):
            end = budget.looped.get(i, budget.stopped.get(i, budgets[i]))
            generated = out[i, width:].tolist()[:end]
            stop_at = next((j for j, t in enumerate(generated) if t in loaded.eos_ids), None)
            if i in budget.looped and stop_at is None:
                logger.info("row %d ended after %d tokens: it repeats itself", i, len(generated))
            reason: Literal["stop", "length"]
            if stop_at is not None:
                text_ids, n, reason = generated[:stop_at], stop_at + 1, "stop"
            else:
                text_ids, n, reason = generated, len(generated), "length"
            text = tok.decode(text_ids, skip_special_tokens=True)
            cut = _stop_position(text, r.stop)
            if cut is not None:
                text, reason = text[:cut], "stop"
            results.append(_Result(text, len(ids), n, reason))
        self._add_stats(len(batch), results, elapsed)
        return results

    def _step(self) -> None:
        """The model made a token per row (worker thread): a call waiting on it is not
        stalled."""
        self._progress_at = time.monotonic()
        self._tokens_made += self._batch_rows


class _PerRowSampler:
    """Logits processor that samples each row with its own settings and generator.

    It returns scores that are ``-inf`` except at the chosen token, so greedy decoding
    (``do_sample=False``) then takes exactly that token. Rows at temperature <= 0 are left
    alone and decode greedily.
    """

    def __init__(self, rows: Sequence[tuple[float, float, int]]) -> None:
        import torch

        self.rows = [(t, p) for t, p, _ in rows]
        self.generators = [torch.Generator().manual_seed(seed) for _, _, seed in rows]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        out = scores.clone()
        for i, (temperature, top_p) in enumerate(self.rows):
            if temperature <= 0:
                continue
            logits = scores[i].float().cpu() / temperature
            probs = torch.softmax(logits, dim=-1)
            if top_p < 1.0:
                sorted_probs, order = torch.sort(probs, descending=True)
                keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p
                keep[0] = True
                filtered = torch.zeros_like(probs)
                filtered[order[keep]] = sorted_probs[keep]
                probs = filtered
            token = int(torch.multinomial(probs, 1, generator=self.generators[i]).item())
            out[i] = float("-inf")
            out[i, token] = 0.0
        return out


class _GrammarMask:
    """Logits processor: rows with a matcher may only emit tokens their grammar allows."""

    def __init__(self, matchers: Sequence[Any], prompt_width: int) -> None:
        self.matchers = list(matchers)
        self.prompt_width = prompt_width
        self.bitmask: torch.Tensor | None = None
        self.reported: set[int] = set()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import llguidance.torch as lt
        import numpy as np
        import torch

        if self.bitmask is None:
            self.bitmask = lt.allocate_token_bitmask(len(self.matchers), scores.shape[-1])
        first = input_ids.shape[1] == self.prompt_width
        for i, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if not first and not matcher.is_stopped():
                matcher.consume_token(int(input_ids[i, -1]))
            if matcher.is_error():  # only after the row ended (padding): leave it alone
                continue
            lt.fill_next_token_bitmask(matcher, self.bitmask, i)
            if matcher.is_error() and i not in self.reported:
                # The grammar failed mid-row (e.g. too complex for the lexer): the mask
                # then allows only EOS and the row ends early; say why.
                self.reported.add(i)
                logger.warning("constrained decoding failed: %s", matcher.get_error())
            # Unpack the 32-bit words with numpy: llguidance's apply helper goes through
            # torch.compile, which took seconds per new shape on CPU.
            bits = np.unpackbits(self.bitmask[i].numpy().view(np.uint8), bitorder="little")
            banned = torch.from_numpy(bits[: scores.shape[-1]] == 0).to(scores.device)
            scores[i].masked_fill_(banned, float("-inf"))
        return scores


class _PerRowBudget:
    """Stopping criterion: row ``i`` is done after ``budgets[i]`` new tokens, at one of its
    stop sequences, or earlier when it has fallen into a loop; every row is done at once
    when ``abort`` is set (the client is closing, or gave up on a stalled batch).

    A loop is a row whose last ``loop_window`` tokens hold fewer than ``loop_distinct``
    distinct token ids (a table row or phrase repeated with a counter: ordinary text,
    code and JSON use far more). Static batching makes every row of a batch wait for the
    longest one, so one looping row would hold a whole batch for its full budget; it is
    ended at once, and :attr:`looped` records where, so the caller reports it as cut off.
    :attr:`stopped` records where a row met a stop sequence. ``on_step`` is called once
    per generated token of the batch (the client's progress clock).
    """

    def __init__(
        self,
        prompt_width: int,
        budgets: Sequence[int],
        *,
        loop_window: int = 192,
        loop_distinct: int = 24,
        stops: Sequence[Sequence[str]] = (),
        decode: Callable[[list[int]], str] | None = None,
        on_step: Callable[[], None] | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        self.prompt_width = prompt_width
        self.budgets = list(budgets)
        self.loop_window = loop_window
        self.loop_distinct = loop_distinct
        self.stops = [tuple(s) for s in stops] or [() for _ in self.budgets]
        self.decode = decode
        self.on_step = on_step
        self.abort = abort
        self.looped: dict[int, int] = {}
        self.stopped: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        if self.on_step is not None:
            self.on_step()
        produced = input_ids.shape[1] - self.prompt_width
        if self.abort is not None and self.abort.is_set():
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        limits = torch.tensor(self.budgets, device=input_ids.device)
        done = produced >= limits
        for i in self.stopped:
            done[i] = True
        if self.decode is not None:
            for i, stops in enumerate(self.stops):
                if not stops or i in self.stopped or bool(done[i]):
                    continue
                start = max(self.prompt_width, input_ids.shape[1] - _STOP_TAIL_TOKENS)
                tail = self.decode(input_ids[i, start:].tolist())
                if any(s in tail for s in stops):
                    self.stopped[i] = produced
                    done[i] = True
        if produced >= self.loop_window:
            tail_ids = input_ids[:, -self.loop_window :]
            for i in range(tail_ids.shape[0]):
                if i in self.looped or bool(done[i]):
                    continue
                if _loops(tail_ids[i].tolist(), self.loop_distinct):
                    self.looped[i] = produced
                    done[i] = True
        return done


def _row_grammar(row: _Request) -> tuple[str, Any] | None:
    """The llguidance grammar of ``row`` and what it came from ("grammar" or "JSON
    schema"), or None for a free row."""
    import llguidance

    if row.grammar is not None:
        return "grammar", llguidance.LLMatcher.grammar_from_lark(row.grammar)
    if row.schema is not None:
        return "JSON schema", llguidance.LLMatcher.grammar_from_json_schema(
            row.schema, defaults={"whitespace_flexible": False, "lenient": True}
        )
    return None


def _new_matcher(tokenizer: Any, what: str, grammar: Any) -> Any:
    """An llguidance matcher of ``grammar`` over ``tokenizer``.

    Raises:
        ModelError: the grammar cannot be used (names ``what`` it came from).
    """
    import llguidance

    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise ModelError(f"{what} not usable for constrained decoding: {matcher.get_error()}")
    return matcher


def _loops(tail: Sequence[int], distinct: int) -> bool:
    """Whether the token ids ``tail`` hold fewer than ``distinct`` different ones: a row
    repeating a phrase or table row (ordinary text, code and JSON use far more)."""
    return len(set(tail)) < distinct


def pick_dtype(device: str = "cpu", *, rounds: int = 3) -> str:
    """The faster of ``bfloat16`` and ``float32`` for a small model's matrix work on
    ``device``: bf16 on a GPU; on a CPU, a matrix product the shape of one MLP layer of a
    0.5B model on a short batch is timed in both (alternating, best of ``rounds``) and bf16
    is taken only if it is clearly faster (under 0.8 of fp32's time), fp32 being the more
    precise. About a tenth of a second; the ratio, not the absolute time, decides, so a
    busy machine still chooses right.
    """
    torch, _, _ = _import_torch()
    if not device.startswith("cpu"):
        return "bfloat16"
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name in ("float32", "bfloat16"):
            dtype = getattr(torch, name)
            a = torch.randn(16, 896, dtype=dtype)
            b = torch.randn(896, 4864, dtype=dtype)
            start = time.perf_counter()
            for _ in range(4):
                torch.matmul(a, b)
            took = time.perf_counter() - start
            best[name] = min(best.get(name, took), took)
    choice = "bfloat16" if best["bfloat16"] < 0.8 * best["float32"] else "float32"
    logger.info(
        "CPU matmul: bf16 %.2f ms, fp32 %.2f ms: loading the model in %s",
        best["bfloat16"] * 1e3,
        best["float32"] * 1e3,
        choice,
    )
    return choice


#: The in-process engines: ``llama.cpp`` (:class:`~genteach.models.llamacpp.LlamaCppModel`,
#: GGUF files, the default where llama-cpp-python is installed) and ``transformers``
#: (:class:`LocalModel`, Hugging Face folders and ids). ``auto`` picks llama.cpp for the
#: embedded model and ``.gguf`` files when it is installed, transformers otherwise.
LocalEngineName = Literal["auto", "llama.cpp", "transformers"]


def local_model_client(
    model: str | Path | None = None,
    *,
    engine: LocalEngineName = "auto",
    name: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **kwargs: Any,
) -> LocalEngine:
    """The in-process local model on ``engine`` (see :data:`LocalEngineName`), with
    defaults kept where ``temperature`` or ``max_tokens`` is ``None``; ``kwargs`` go to
    the engine's class.

    Example:
        >>> client = local_model_client()  # doctest: +SKIP
        >>> (await client.complete(ModelRequest([message("user", "Hi")]))).text  # doctest: +SKIP
    """
    if temperature is not None:
        kwargs["temperature"] = temperature
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if resolve_engine(model, engine) == "llama.cpp":
        from genteach.models.llamacpp import LlamaCppModel

        return LlamaCppModel(model, name=name, **kwargs)
    return LocalModel(model, name=name, **kwargs)


def resolve_engine(model: str | Path | None, engine: LocalEngineName = "auto") -> str:
    """The engine ``engine`` means for ``model``: itself unless ``auto``; ``auto`` is
    llama.cpp for the embedded model or a ``.gguf`` file if llama-cpp-python is
    installed, else transformers.

    Raises:
        ValueError: an unknown engine name.
    """
    if engine not in ("auto", "llama.cpp", "transformers"):
        raise ValueError(f"local engine {engine!r}: use 'auto', 'llama.cpp' or 'transformers'")
    if engine != "auto":
        return engine
    model = default_local_model() if model is None else model
    gguf = embedded_spec(model) is not None or str(model).endswith(".gguf")
    return "llama.cpp" if gguf and importlib.util.find_spec("llama_cpp") else "transformers"


# --------------------------------------------------------------------------- helpers
def _local_only(where: str) -> dict[str, Any]:
    """Never reach the hub for a folder that exists here."""
    return {"local_files_only": True} if Path(where).exists() else {}


def _import_torch() -> tuple[Any, Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LocalModelError(
            f"the transformers engine needs torch and transformers ({exc}): {TRANSFORMERS_HINT}"
        ) from exc
    return torch, AutoTokenizer, AutoModelForCausalLM


def _prompt_ids(
    tokenizer: Any, chat: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[int]:
    ids = tokenizer.apply_chat_template(
        chat, tools=tools, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    if isinstance(ids, Mapping) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(x) for x in ids]


def chat_message(m: Message) -> dict[str, Any]:
    """A genteach message as chat templates take it (OpenAI's shape, with a tool call's
    arguments as an object, which is what Hugging Face templates render)."""
    out: dict[str, Any] = {"role": m["role"], "content": m["content"]}
    calls = m.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": _arguments(c["arguments"])},
            }
            for c in calls
        ]
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id", "")
        if "name" in m:
            out["name"] = m["name"]
    return out


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _stop_position(text: str, stops: Sequence[str]) -> int | None:
    """Where the first of ``stops`` starts in ``text`` (None: none occurs)."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _choice(result: _Result, *, tools: bool) -> Choice:
    """A row's result as a :class:`Choice`; with tools offered, ``<tool_call>`` blocks
    holding ``{"name", "arguments"}`` become tool calls (a block that is not such JSON
    stays in the text)."""
    if not tools or "<tool_call>" not in result.text:
        return Choice(result.text, result.finish_reason)
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        try:
            data = json.loads(match.group(1))
            name = data["name"]
            arguments = data.get("arguments", {})
        except (ValueError, KeyError, TypeError):
            return match.group(0)
        if not isinstance(name, str):
            return match.group(0)
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append({"id": f"call_{len(calls)}", "name": name, "arguments": args})
        return ""

    text = _TOOL_CALL.sub(take, result.text).strip()
    if not calls:
        return Choice(result.text, result.finish_reason)
    finish = "tool_calls" if result.finish_reason == "stop" else result.finish_reason
    return Choice(text, finish, tuple(calls))


#: The first character of a string the embedded model writes in JSON: not ``<`` (an input
#: marker such as ``<<<SEED``, or a ``<placeholder>`` copied from the answer's shape), not
#: ``.`` or ``…`` (a ``...`` placeholder), not white space.
_FIRST_CHAR = r"[^<.…\s]"


def decoding_schema(schema: Any) -> Any:
    """``schema`` as the embedded model's constrained decoding uses it (its parser still
    validates against the original):

    - every object without ``additionalProperties`` is closed: an open object lets a small
      model wander into keys of its own until it runs out of tokens;
    - every free string (no ``const``, ``enum``, ``format`` or ``pattern`` of its own) must
      start with a character that cannot begin an echoed input marker or a copied
      placeholder (:data:`_FIRST_CHAR`), the 0.5B model's commonest misses. Its length
      bounds move into that pattern, since llguidance cannot intersect a pattern with a
      long ``minLength``.
    """
    if isinstance(schema, list):
        return [decoding_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: decoding_schema(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    free = not any(k in out for k in ("const", "enum", "format", "pattern"))
    if out.get("type") == "string" and free:
        low = int(out.pop("minLength", 0))
        high = out.pop("maxLength", None)
        rest = f"[\\s\\S]{{{max(low - 1, 0)},{'' if high is None else int(high) - 1}}}"
        body = f"{_FIRST_CHAR}{rest}"
        out["pattern"] = f"^{body}$" if low > 0 else f"^({body})?$"
    return out


__all__ = [
    "DEFAULT_MODEL_NAME",
    "BatchStats",
    "LocalEngine",
    "LocalEngineName",
    "LocalModel",
    "chat_message",
    "decoding_schema",
    "local_model_client",
    "pick_dtype",
    "resolve_engine",
]
