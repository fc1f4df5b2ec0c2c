"""Your own executor: the tool-use skill's APIs as the functions of a Python module.

:func:`load_executor` reads a module (a ``.py`` file or a dotted module name) and makes
each public function an API: its name, the first paragraph of its docstring, its
parameters from the signature and type hints, their descriptions from a Google-style
``Args:`` section. :class:`ExecutorEnvironment` then answers the assistant's calls by
running those functions, so a conversation's results are real, not invented by a model.

The functions are the user's own, trusted code and run in this process (a synchronous one
in a worker thread): nothing here sandboxes them. The model never writes code that runs
here; it only supplies JSON arguments, which are checked against the signature first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import decimal
import enum
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
import threading
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from genteach.agents.tool_use import ApiExchange, ApiList, ApiParam, ApiSpec
from genteach.prompts import PromptLibrary
from genteach.runtime.base import EnvironmentFailure, StepResult
from genteach.runtime.simulated_api import (
    SYSTEM_TEMPLATE,
    ApiEnvironment,
    ApiTask,
    RewardCheck,
    final_answer_reward,
)

#: JSON type of a parameter, as :class:`~genteach.agents.tool_use.ApiParam` names it.
JsonKind = Literal["string", "integer", "number", "boolean", "array", "object"]
_SCALARS: dict[Any, JsonKind] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_SUPPORTED = "str, int, float, bool, list, dict, Optional or Literal"
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)"
                      r"\s*:\s*$")  # fmt: skip
_ENTRY = re.compile(r"^\*{0,2}(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


class ExecutorError(ValueError):
    """The executor module cannot be used: not found, failed to import, or a function that
    cannot be described as an API. The message is one line naming the file and function."""


# -- parameter types ----------------------------------------------------------------------
@dataclass(frozen=True)
class ParamType:
    """What one parameter accepts, read from its type hint.

    Attributes:
        kind: the JSON type (the API parameter's ``type``).
        choices: the allowed values of a ``Literal`` (empty: any value of ``kind``).
        nullable: ``None`` (JSON null) is accepted (``Optional``).
        items: the type of a ``list[X]``'s items or a ``dict[str, X]``'s values.
    """

    kind: JsonKind
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    items: ParamType | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this type (``None``: nothing)."""
        if value is None:
            return None if self.nullable else f"expects {self.kind}, got null"
        if not _is_kind(value, self.kind):
            return f"expects {self.kind}, got {_json_kind(value)}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(json.dumps(c) for c in self.choices)}"
        if self.items is not None:
            values = value if isinstance(value, list) else list(value.values())
            for inner in values:
                bad = self.items.problem(inner)
                if bad is not None:
                    return f"item {json.dumps(inner, default=str)[:40]}: {bad}"
            if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
                return "expects string keys"
        return None


def _is_kind(value: Any, kind: JsonKind) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _json_kind(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if _is_kind(value, kind):
            return kind
    return type(value).__name__


def describe_type(hint: Any) -> ParamType | None:
    """The :class:`ParamType` of a type hint, or ``None`` when it is not one of str, int,
    float, bool, list[...], dict[str, ...], ``X | None`` and ``Literal[...]``."""
    if hint in _SCALARS:
        return ParamType(_SCALARS[hint])
    if hint is list:
        return ParamType("array")
    if hint is dict:
        return ParamType("object")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        kinds = {_json_kind(a) for a in args}
        if len(kinds) != 1 or not kinds <= {"string", "integer", "boolean"}:
            return None
        return ParamType(kinds.pop(), choices=tuple(args))  # type: ignore[arg-type]
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(rest) == len(args):
            return None
        inner = describe_type(rest[0])
        return None if inner is None else dataclasses.replace(inner, nullable=True)
    if origin is list and len(args) == 1:
        items = describe_type(args[0])
        return None if items is None else ParamType("array", items=items)
    if origin is dict and len(args) == 2 and args[0] is str:
        values = describe_type(args[1])
        return None if values is None else ParamType("object", items=values)
    return None


# -- docstrings ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Docstring:
    """The parts of a Google-style docstring that make an API: the first paragraph, the
    ``Args:`` entries and the ``Returns:`` text (each joined on one line)."""

    summary: str = ""
    args: Mapping[str, str] = dataclasses.field(default_factory=dict)
    returns: str = ""


def parse_docstring(doc: str | None) -> Docstring:
    """Read ``doc`` (already dedented, as :func:`inspect.getdoc` gives it)."""
    if not doc:
        return Docstring()
    lines = doc.strip().splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        summary.append(line.strip())
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        m = _SECTION.match(line)
        if m:
            current = sections.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    args: dict[str, str] = {}
    body = sections.get("Args") or sections.get("Arguments") or sections.get("Parameters") or []
    indent = min((_indent(x) for x in body if x.strip()), default=0)
    name = ""
    for line in body:
        if not line.strip():
            continue
        entry = _ENTRY.match(line.strip()) if _indent(line) == indent else None
        if entry:
            name = entry.group("name")
            args[name] = entry.group("text").strip()
        elif name:
            args[name] = f"{args[name]} {line.strip()}".strip()
    returns = sections.get("Returns") or sections.get("Return") or []
    return Docstring(
        summary=" ".join(summary),
        args=args,
        returns=" ".join(x.strip() for x in returns if x.strip()),
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# -- the module ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiFunction:
    """One function of the module and the API made of it.

    Attributes:
        spec: the API (name, description, parameters, returns).
        function: the function itself.
        types: each parameter's :class:`ParamType`.
    """

    spec: ApiSpec
    function: Callable[..., Any]
    types: Mapping[str, ParamType]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def problem(self, arguments: Mapping[str, Any]) -> str | None:
        """What is wrong with a call's ``arguments`` (``None``: nothing): an unknown name,
        a missing required parameter, or a value of the wrong type."""
        unknown = sorted(set(arguments) - set(self.types))
        if unknown:
            return f"{self.name} has no parameter {', '.join(unknown)}"
        missing = [p for p in self.spec.required if p not in arguments]
        if missing:
            return f"{self.name} is missing required parameter {', '.join(missing)}"
        for name, value in arguments.items():
            bad = self.types[name].problem(value)
            if bad is not None:
                return f"{self.name}: parameter {name} {bad}"
        return None


class ModuleApiList(ApiList):
    """An API list read from an executor module: the tool-use material whose calls run the
    module's functions. ``executor`` is the module as the run named it."""

    executor: SkipJsonSchema[str] = ""


@dataclass(frozen=True)
class ModuleExecutor:
    """A loaded executor module: its APIs and the functions behind them.

    Attributes:
        spec: the module as it was named (a path or a dotted name).
        source: the file it was read from (for messages).
        library: the library's name (the module's).
        description: the library's description (the module docstring's first paragraph).
        functions: the APIs by name, in the module's order.
    """

    spec: str
    source: str
    library: str
    description: str
    functions: Mapping[str, ApiFunction]

    def api_list(self) -> ModuleApiList:
        """The module's APIs as the tool-use material."""
        return ModuleApiList(
            library=self.library,
            description=self.description,
            apis=[f.spec for f in self.functions.values()],
            executor=self.spec,
        )


#: Executor files imported by this process: module name -> sha256 of the text it ran.
_IMPORTED: dict[str, str] = {}
_IMPORT_LOCK = threading.Lock()


def load_executor(spec: str, *, folder: Path | None = None) -> ModuleExecutor:
    """Load an executor module and describe its public functions as APIs.

    A module is imported once per process while its text is unchanged, so its top level
    (opening a connection, writing a log line) runs once per run, however many stages load
    it; a file whose text changed is imported again. A dotted name is imported once, as
    Python imports any module.

    Args:
        spec: a ``.py`` file (or any path with a ``/``) or a dotted module name. A relative
            path is looked for in the working directory, then in ``folder``.
        folder: where else a relative path may be (a taxonomy's folder).

    Returns:
        The functions (those in ``__all__`` when the module has one, else every function
        defined in it whose name does not start with ``_``) as APIs.

    Raises:
        ExecutorError: the module is missing or its import fails (with the module's own
            line and exception), it has fewer than two functions, or a function cannot be
            described (no docstring, ``*args``/``**kwargs``, a parameter without a type hint
            or with one outside str, int, float, bool, list, dict, Optional and Literal).
    """
    module, source = _import(spec, folder)
    where = source or spec
    names = getattr(module, "__all__", None)
    if names is not None:
        candidates = [getattr(module, n, None) for n in names]
        functions = [f for f in candidates if inspect.isfunction(f)]
    else:
        functions = [
            f
            for n, f in vars(module).items()
            if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == module.__name__
        ]
    if not functions:
        raise ExecutorError(f"{where}: the executor module has no public function")
    apis = {f.__name__: _api_function(f, where) for f in functions}
    library = Path(spec).stem if _is_path(spec) else spec
    description = parse_docstring(inspect.getdoc(module)).summary
    executor = ModuleExecutor(
        spec=spec, source=where, library=library, description=description, functions=apis
    )
    try:
        executor.api_list()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ExecutorError(
            f"{where}: not a valid API list: {loc}: {first['msg']}"
            + (" (an executor module needs at least 2 public functions)" if loc == "apis" else "")
        ) from None
    return executor


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _import(spec: str, folder: Path | None) -> tuple[types.ModuleType, str]:
    """The module named by ``spec`` and its file."""
    if not _is_path(spec):
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ExecutorError(f"{spec}: no executor module of that name")
        file = Path(found.origin).resolve() if found.origin else None
        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            raise _import_error(str(file or spec), file, exc) from None
        return module, str(file or spec)
    path = Path(spec)
    beside = folder / path if folder is not None and not path.is_absolute() else None
    if not path.is_file() and beside is not None and beside.is_file():
        path = beside
    if not path.is_file():
        raise ExecutorError(f"{spec}: executor module not found")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    name = f"_genteach_executor_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    try:
        content = hashlib.sha256(resolved.read_bytes()).hexdigest()
    except OSError as exc:
        raise ExecutorError(f"{path}: cannot read the executor module: {exc.strerror}") from None
    with _IMPORT_LOCK:
        known = sys.modules.get(name)
        if known is not None and _IMPORTED.get(name) == content:
            return known, str(path)  # imported before, unchanged: its top level ran once
        loader_spec = importlib.util.spec_from_file_location(name, resolved)
        if loader_spec is None or loader_spec.loader is None:
            raise ExecutorError(f"{path}: not a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module  # dataclasses and pickling look classes up by module name
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            _IMPORTED.pop(name, None)
            raise _import_error(str(path), resolved, exc) from None
        _IMPORTED[name] = content
    return module, str(path)


def _import_error(where: str, file: Path | None, exc: BaseException) -> ExecutorError:
    """One line: the module's own line that raised (when found) and the exception."""
    line = None
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        line = exc.lineno
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if file is not None and Path(f.filename) == file]
        if own:
            line = own[-1].lineno
    at = f"{where}:{line}" if line is not None else where
    return ExecutorError(
        f"{at}: cannot import the executor module: {type(exc).__name__}: {_one_line(exc)}"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _api_function(function: Callable[..., Any], where: str) -> ApiFunction:
    """Describe one function as an API."""
    name = function.__name__
    at = f"{where}: {name}"
    doc = parse_docstring(inspect.getdoc(function))
    if not doc.summary:
        raise ExecutorError(f"{at}: no docstring; its first paragraph is the API's description")
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:
        raise ExecutorError(
            f"{at}: cannot read its type hints: {type(exc).__name__}: {_one_line(exc)}"
        ) from None
    params: list[ApiParam] = []
    kinds: dict[str, ParamType] = {}
    for p in inspect.signature(function).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind == p.VAR_POSITIONAL else "**"
            raise ExecutorError(f"{at}: {star}{p.name} cannot be an API parameter; name each one")
        if p.kind == p.POSITIONAL_ONLY:
            raise ExecutorError(f"{at}: parameter {p.name} is positional-only; APIs take names")
        if p.name not in hints:
            raise ExecutorError(f"{at}: parameter {p.name} has no type hint ({_SUPPORTED})")
        kind = describe_type(hints[p.name])
        if kind is None:
            raise ExecutorError(
                f"{at}: parameter {p.name}: cannot describe type {_type_name(hints[p.name])} "
                f"as an API parameter (use {_SUPPORTED})"
            )
        kinds[p.name] = kind
        required = p.default is p.empty
        params.append(
            ApiParam(
                name=p.name,
                type=kind.kind,
                description=_param_text(doc.args.get(p.name, ""), kind, p.default, required),
                required=required,
            )
        )
    returns = doc.returns or (_type_name(hints["return"]) if "return" in hints else "")
    try:
        spec = ApiSpec(name=name, description=doc.summary, parameters=params, returns=returns)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ExecutorError(f"{at}: not a valid API: {loc}: {first['msg']}") from None
    return ApiFunction(spec=spec, function=function, types=kinds)


def _param_text(text: str, kind: ParamType, default: Any, required: bool) -> str:
    """The parameter's description, with its allowed values and default (the API list
    has no field for them)."""
    parts = [text.strip().rstrip(".") + "." if text.strip() else ""]
    if kind.choices:
        parts.append(f"One of {', '.join(json.dumps(c) for c in kind.choices)}.")
    if kind.nullable and (required or default is not None):
        parts.append("May be null.")
    if not required:
        parts.append(f"Default {json.dumps(default, default=str)}.")
    return " ".join(p for p in parts if p)


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


# -- results ------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses and pydantic models as objects, tuples and
    sets as arrays, dates as ISO text, enums as their values, decimals, UUIDs and paths as
    text.

    Raises:
        TypeError: a value of another type (its type is named).
    """
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, decimal.Decimal | uuid.UUID | PurePath):
        return str(value)
    raise TypeError(f"a result of type {type(value).__name__} is not JSON data")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... [truncated: {len(text) - limit} more characters]"


async def _in_thread(function: Callable[..., Any], arguments: Mapping[str, Any]) -> Any:
    """Run ``function(**arguments)`` in a daemon thread: one that outlives a timeout never
    holds up the event loop's shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # timed out and cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def target() -> None:
        try:
            value, error = function(**arguments), None
        except Exception as exc:  # handed to the caller, who reports it
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name=f"executor:{function.__name__}", daemon=True).start()
    return await future


# -- the environment ----------------------------------------------------------------------
class ExecutorEnvironment(ApiEnvironment):
    """The tool-use environment whose APIs are the functions of an executor module.

    A ``call`` action checks its arguments against the function's signature (an unknown
    name, a missing required parameter or a wrong type is an error observation, as a
    simulated API's error is), then runs the function (a synchronous one in a worker
    thread, an async one awaited) within ``timeout`` seconds. Its result comes back as
    JSON text cut to ``max_chars`` characters with a marker; an exception it raises, or
    the timeout, is the error observation ``error: <Type>: <message>`` and the episode
    goes on. ``answer``, ``fail`` and ``finish`` end the episode with the reward of
    ``reward``. :attr:`calls` holds the exchanges so far, as the simulator's do.

    A function that outlives its timeout cannot be stopped: its thread runs on, detached.

    Args:
        executor: the module (:func:`load_executor`).
        prompts: renders the environment's context (``system_template``).
        reward: the check that scores a stop action
            (:data:`~genteach.runtime.simulated_api.RewardCheck`).
        timeout: seconds one call may take.
        max_chars: the most characters of a result shown to the model.
        system_template: the context before the format's instructions (the library).
    """

    def __init__(
        self,
        executor: ModuleExecutor,
        prompts: PromptLibrary,
        *,
        reward: RewardCheck = final_answer_reward,
        timeout: float = 10.0,
        max_chars: int = 2000,
        system_template: str = SYSTEM_TEMPLATE,
    ) -> None:
        super().__init__(prompts, reward=reward, system_template=system_template)
        self.executor = executor
        self.timeout = timeout
        self.max_chars = max_chars

    async def call(self, task: ApiTask, api: ApiSpec, arguments: dict[str, Any]) -> StepResult:
        function = self.executor.functions.get(api.name)
        if function is None:
            raise EnvironmentFailure(
                f"{api.name} is not a function of the executor {self.executor.source}"
            )
        error = function.problem(arguments)
        value: Any = None
        if error is None:
            value, error = await self._run(function, arguments)
        self.calls.append(
            ApiExchange(
                api=function.name,
                arguments=arguments,
                status="ok" if error is None else "error",
                result=value,
                error=error or "",
            )
        )
        if error is not None:
            return StepResult(observation=error, error=True, info={"status": "error"})
        text = json.dumps(value, ensure_ascii=False)
        shown = clip(text, self.max_chars)
        return StepResult(
            observation=shown, info={"status": "ok", "truncated": len(shown) != len(text)}
        )

    async def _run(self, api: ApiFunction, arguments: Mapping[str, Any]) -> tuple[Any, str | None]:
        """The function's result as JSON data, or the error observation."""
        try:
            if api.is_async:
                running = api.function(**arguments)
            else:
                running = _in_thread(api.function, arguments)
            value = await asyncio.wait_for(running, self.timeout)
            return to_json(value), None
        except TimeoutError:
            return None, f"error: TimeoutError: {api.name} gave no result within {self.timeout:g} s"
        except Exception as exc:
            return None, f"error: {type(exc).__name__}: {_one_line(exc)}"


__all__ = [
    "ApiFunction",
    "Docstring",
    "ExecutorEnvironment",
    "ExecutorError",
    "JsonKind",
    "ModuleApiList",
    "ModuleExecutor",
    "ParamType",
    "clip",
    "describe_type",
    "load_executor",
    "parse_docstring",
    "to_json",
]
