"""An in-process transformers model as an AutoGen ``ChatCompletionClient``, with batching.

:class:`LocalChatCompletionClient` runs a small chat model (by default the embedded
Qwen2.5-Coder-0.5B-Instruct, see :mod:`genteach.models.local_assets`) in bf16 on the CPU.
Concurrent ``create()`` calls that arrive within a few milliseconds of each other are run
as one left-padded batched ``generate`` in a worker thread: on 2 CPU cores a batch of 8
gives several times the tokens/s of 8 calls in a row, and genteach's flows issue many
calls at once.

Every request in a batch keeps its own settings: a per-row logits processor samples each
row with its own temperature, top-p and random generator (so a ``seed`` reproduces a
sampled answer whatever else is in the batch, up to bf16 padding noise), temperature 0 is
greedy, and a per-row stopping criterion ends each row at its own ``max_tokens``, or as soon
as it falls into a loop (reported as cut off, ``finish_reason == "length"``).

The default model is smoke-test quality: use it to run flows offline, not to make data.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from genteach.models._autogen_base import NonStreamingClient, text_chat
from genteach.models.autogen import AutoGenModel
from genteach.models.base import ModelError
from genteach.models.local_assets import (
    DEFAULT_LOCAL_MODEL,
    INSTALL_HINT,
    LocalModelError,
    default_model_dir,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = DEFAULT_LOCAL_MODEL.name
"""Name reported for the embedded model (records say ``local:<this>``)."""


@dataclass(frozen=True)
class BatchStats:
    """What the client has done so far; read :attr:`LocalChatCompletionClient.stats`."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_seconds: float = 0.0


@dataclass
class _Request:
    """One queued ``create()`` call, as the worker thread needs it."""

    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    future: asyncio.Future[_Result]
    schema: dict[str, Any] | None = None
    grammar: str | None = None


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


class LocalChatCompletionClient(NonStreamingClient):
    """A transformers chat model run in this process, batching concurrent requests.

    Args:
        model: an HF-format folder, a ``.gguf`` file, or a Hugging Face model id; ``None``
            uses the embedded model (:func:`~genteach.models.local_assets.default_model_dir`,
            built on first use).
        model_name: name reported in results; default the folder name or
            ``qwen2.5-coder-0.5b-instruct`` for the embedded model.
        max_batch_size: most requests run in one ``generate``.
        batch_window_ms: how long the first queued request waits for company.
        max_tokens: default completion budget when a call gives none.
        temperature: default temperature when a call gives none (0 means greedy).
        top_p: default nucleus sampling mass.
        repetition_penalty: applied to every row (it depends on the row alone).
        dtype: torch dtype name for the weights; bf16 is ~2x faster than fp32 on CPU.
        device: torch device.
        cache_dir: cache for the embedded model; default ``$GENTEACH_CACHE``.
        constrained_json: constrain ``json_output`` requests with llguidance; ``None`` means
            "if it is installed".

    Recognised ``extra_create_args``: ``max_tokens`` (or ``max_completion_tokens``),
    ``temperature``, ``top_p``, ``seed``, and ``grammar``: a Lark grammar (llguidance's
    dialect) the answer must match, e.g. the tool-use ACTION format. Tools and images are
    not supported.

    ``json_output`` (``True`` or a pydantic model) constrains decoding to valid JSON (to the
    model's JSON schema) when ``llguidance`` is installed, row by row inside the batch;
    ``model_info`` then reports ``json_output``/``structured_output``. A reply cut off by
    ``max_tokens`` still does not parse (``finish_reason == "length"``): budget tokens and
    validate on the caller's side. Without ``llguidance`` the request is accepted and
    decoding is not constrained.

    The model loads lazily, in the worker thread, on the first call (or :meth:`load`).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        model_name: str | None = None,
        max_batch_size: int = 8,
        batch_window_ms: float = 5.0,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        top_p: float = 0.8,
        repetition_penalty: float = 1.0,
        dtype: str = "bfloat16",
        device: str = "cpu",
        cache_dir: Path | None = None,
        constrained_json: bool | None = None,
    ) -> None:
        super().__init__()
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self._model_spec = model
        self.model_name = model_name or _default_name(model)
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window_ms / 1000.0
        self.default_max_tokens = max_tokens
        self.default_temperature = temperature
        self.default_top_p = top_p
        self.repetition_penalty = repetition_penalty
        self.dtype = dtype
        self.device = device
        self.cache_dir = cache_dir
        available = importlib.util.find_spec("llguidance") is not None
        if constrained_json and not available:
            raise LocalModelError("constrained_json=True needs llguidance: pip install llguidance")
        self.constrained_json = available if constrained_json is None else constrained_json
        self._loaded: _Loaded | None = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._stats = BatchStats()
        self._stats_lock = threading.Lock()

    # ----------------------------------------------------------------- public API
    @property
    def stats(self) -> BatchStats:
        """Counters of batches and tokens (a snapshot)."""
        return self._stats

    async def load(self) -> None:
        """Load the model now (in the worker thread) instead of on the first call."""
        self._check_open()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._get_executor(), self._ensure_loaded)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """Queue one chat completion; it runs in the next batch. See the class docstring."""
        self._check_open()
        if tools:
            raise ValueError(f"{type(self).__name__} does not support tools")
        request = self._make_request(messages, extra_create_args, json_output)
        queue = self._ensure_dispatcher()
        await queue.put(request)
        if cancellation_token is not None:
            cancellation_token.link_future(request.future)
        result = await request.future
        usage = RequestUsage(
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens
        )
        self._count(usage)
        return CreateResult(
            finish_reason=result.finish_reason, content=result.text, usage=usage, cached=False
        )

    async def close(self) -> None:
        """Stop batching, fail queued calls, and release the model."""
        if self._closed:
            return
        self._closed = True
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

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Prompt tokens of ``messages`` under the chat template (loads the tokenizer)."""
        tokenizer = self._get_tokenizer()
        return len(_prompt_ids(tokenizer, text_chat(messages, "the local model")))

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Context length left after ``messages``."""
        tokenizer = self._get_tokenizer()
        limit = _context_length(self._loaded, tokenizer)
        return limit - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return {
            "vision": False,
            "function_calling": False,
            "json_output": self.constrained_json,
        }

    @property
    def supports_grammar(self) -> bool:
        """Whether ``extra_create_args["grammar"]`` constrains decoding (llguidance present)."""
        return self.constrained_json

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=False,
            function_calling=False,
            json_output=self.constrained_json,
            family=ModelFamily.UNKNOWN,
            structured_output=self.constrained_json,
            multiple_system_messages=False,
        )

    # ----------------------------------------------------------------- event-loop side
    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("local model client is closed")

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genteach-local")
        return self._executor

    def _make_request(
        self,
        messages: Sequence[LLMMessage],
        args: Mapping[str, Any],
        json_output: bool | type[BaseModel] | None,
    ) -> _Request:
        max_tokens = args.get("max_tokens", args.get("max_completion_tokens"))
        temperature = args.get("temperature")
        top_p = args.get("top_p")
        seed = args.get("seed")
        mt = int(max_tokens) if max_tokens is not None else self.default_max_tokens
        if mt < 1:
            raise ValueError(f"max_tokens must be >= 1, got {mt}")
        loop = asyncio.get_running_loop()
        return _Request(
            messages=text_chat(messages, "the local model"),
            max_new_tokens=mt,
            temperature=float(temperature) if temperature is not None else self.default_temperature,
            top_p=float(top_p) if top_p is not None else self.default_top_p,
            seed=int(seed) if seed is not None else None,
            future=loop.create_future(),
            schema=_json_schema(json_output) if self.constrained_json else None,
            grammar=_grammar(args.get("grammar")) if self.constrained_json else None,
        )

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
        """Collect requests into batches and run them, one batch at a time."""
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
        if spec is None:
            return str(default_model_dir(self.cache_dir)), None
        path = Path(spec)
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
            torch, tokenizer_cls, model_cls = _import_torch()
            where, gguf = self._resolve_path()
            start = time.perf_counter()
            tokenizer = self._tokenizer or tokenizer_cls.from_pretrained(
                where, gguf_file=gguf, **_local_only(where)
            )
            tokenizer.padding_side = "left"
            model = model_cls.from_pretrained(
                where, gguf_file=gguf, dtype=getattr(torch, self.dtype), **_local_only(where)
            )
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
            logger.info("loaded %s in %.1fs", where, time.perf_counter() - start)
            self._loaded = loaded
            self._tokenizer = tokenizer
            return loaded

    def _matchers(self, loaded: _Loaded, batch: list[_Request]) -> list[Any]:
        """One llguidance matcher per row with a grammar or schema (None for free rows)."""
        import llguidance
        import llguidance.hf

        if loaded.guidance_tokenizer is None:
            loaded.guidance_tokenizer = llguidance.hf.from_tokenizer(
                loaded.tokenizer,
                n_vocab=int(loaded.model.config.vocab_size),
                eos_token=loaded.im_end,
            )
        matchers: list[Any] = []
        for r in batch:
            if r.grammar is not None:
                what = "grammar"
                grammar = llguidance.LLMatcher.grammar_from_lark(r.grammar)
            elif r.schema is not None:
                what = "JSON schema"
                grammar = llguidance.LLMatcher.grammar_from_json_schema(
                    r.schema, defaults={"whitespace_flexible": False, "lenient": True}
                )
            else:
                matchers.append(None)
                continue
            matcher = llguidance.LLMatcher(loaded.guidance_tokenizer, grammar, log_level=0)
            if matcher.is_error():
                raise ModelError(
                    f"{what} not usable for constrained decoding: {matcher.get_error()}"
                )
            matchers.append(matcher)
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
        prompts = [_prompt_ids(tok, r.messages) for r in batch]
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
        budget = _PerRowBudget(width, budgets)
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
        for i, ids in enumerate(prompts):
            generated = out[i, width:].tolist()[: budget.looped.get(i, budgets[i])]
            stop_at = next((j for j, t in enumerate(generated) if t in loaded.eos_ids), None)
            if i in budget.looped and stop_at is None:
                logger.info("row %d ended after %d tokens: it repeats itself", i, len(generated))
            if stop_at is not None:
                text_ids, n, reason = generated[:stop_at], stop_at + 1, "stop"
            else:
                text_ids, n, reason = generated, len(generated), "length"
            text = tok.decode(text_ids, skip_special_tokens=True)
            results.append(_Result(text, len(ids), n, reason))  # type: ignore[arg-type]
        with self._stats_lock:
            s = self._stats
            self._stats = BatchStats(
                batches=s.batches + 1,
                requests=s.requests + len(batch),
                largest_batch=max(s.largest_batch, len(batch)),
                prompt_tokens=s.prompt_tokens + sum(r.prompt_tokens for r in results),
                completion_tokens=s.completion_tokens + sum(r.completion_tokens for r in results),
                generate_seconds=s.generate_seconds + elapsed,
            )
        return results


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
    """Stopping criterion: row ``i`` is done after ``budgets[i]`` new tokens, or earlier
    when it has fallen into a loop.

    A loop is a row whose last ``loop_window`` tokens hold fewer than ``loop_distinct``
    distinct token ids (a table row or phrase repeated with a counter: ordinary text,
    code and JSON use far more). Static batching makes every row of a batch wait for the
    longest one, so one looping row would hold a whole batch for its full budget; it is
    ended at once, and :attr:`looped` records where, so the caller reports it as cut off.
    """

    def __init__(
        self,
        prompt_width: int,
        budgets: Sequence[int],
        *,
        loop_window: int = 192,
        loop_distinct: int = 24,
    ) -> None:
        self.prompt_width = prompt_width
        self.budgets = list(budgets)
        self.loop_window = loop_window
        self.loop_distinct = loop_distinct
        self.looped: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        produced = input_ids.shape[1] - self.prompt_width
        limits = torch.tensor(self.budgets, device=input_ids.device)
        done = produced >= limits
        if produced >= self.loop_window:
            tail = input_ids[:, -self.loop_window :]
            for i in range(tail.shape[0]):
                if i in self.looped or bool(done[i]):
                    continue
                if int(torch.unique(tail[i]).numel()) < self.loop_distinct:
                    self.looped[i] = produced
                    done[i] = True
        return done


def local_model_client(
    model: str | Path | None = None,
    *,
    name: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **client_kwargs: Any,
) -> AutoGenModel:
    """The in-process local model as a genteach :class:`~genteach.models.base.ModelClient`.

    Args:
        model: folder, ``.gguf`` file or HF id; ``None`` for the embedded model.
        name: teacher name written into records; default ``local:<model name>``.
        temperature / max_tokens: per-call defaults of the adapter.
        client_kwargs: passed to :class:`LocalChatCompletionClient`.

    Example:
        >>> client = local_model_client(max_batch_size=8)  # doctest: +SKIP
        >>> (await client.complete([message("user", "Hi")])).text  # doctest: +SKIP
    """
    inner = LocalChatCompletionClient(model, **client_kwargs)
    return AutoGenModel(
        inner,
        name=name or f"local:{inner.model_name}",
        temperature=temperature,
        max_tokens=max_tokens,
    )


# --------------------------------------------------------------------------- helpers
def _default_name(model: str | Path | None) -> str:
    if model is None:
        return DEFAULT_MODEL_NAME
    path = Path(model)
    return path.stem if path.suffix == ".gguf" else (path.name or str(model))


def _local_only(where: str) -> dict[str, Any]:
    """Never reach the hub for a folder that exists here."""
    return {"local_files_only": True} if Path(where).exists() else {}


def _import_torch() -> tuple[Any, Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LocalModelError(
            f"the in-process local model needs torch and transformers ({exc}): {INSTALL_HINT}"
        ) from exc
    return torch, AutoTokenizer, AutoModelForCausalLM


def _prompt_ids(tokenizer: Any, chat: list[dict[str, str]]) -> list[int]:
    ids = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    if isinstance(ids, Mapping) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(x) for x in ids]


def _context_length(loaded: _Loaded | None, tokenizer: Any) -> int:
    if loaded is not None:
        return loaded.context_length
    limit = getattr(tokenizer, "model_max_length", 32768)
    return int(limit) if isinstance(limit, int) and limit < 10**9 else 32768


def _json_schema(json_output: bool | type[BaseModel] | None) -> dict[str, Any] | None:
    """The JSON schema to constrain to: any object for ``True``, the model's for a class."""
    if json_output is None or json_output is False:
        return None
    if json_output is True:
        return {"type": "object"}
    return _close_objects(json_output.model_json_schema())


def _grammar(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError("extra_create_args['grammar'] must be a non-empty Lark grammar string")
    return value


def _close_objects(schema: Any) -> Any:
    """Forbid extra keys in every object of ``schema`` unless it says otherwise.

    An open object lets a small model wander into keys of its own until it runs out of tokens.
    """
    if isinstance(schema, dict):
        out = {k: _close_objects(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_close_objects(v) for v in schema]
    return schema


__all__ = [
    "DEFAULT_MODEL_NAME",
    "BatchStats",
    "LocalChatCompletionClient",
    "local_model_client",
]
