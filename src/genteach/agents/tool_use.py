"""Tool-use agents: API-list synthesis, task writing, the acting assistant and the
simulated API that answers its calls.

The assistant acts in one fixed format (the paper's), one action per turn::

    ACTION_TYPE : API_CALL
    ACTION: get_weather(city="Paris", unit="celsius")

    ACTION_TYPE : STOP
    ACTION: FINAL_ANSWER("It is 18 degrees in Paris.")      # or FAILED("reason")

:func:`parse_action` checks a turn against the API list; a malformed call is a
:class:`~genteach.agents.parsing.ParseError` with the reason.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from genteach.agents.base import Agent
from genteach.agents.instruct import InstructInput, SeedInstructionAgent, TaskDraft
from genteach.agents.parsing import ParseError, shares_words
from genteach.agents.refine import Edit, EditInput, Editor
from genteach.agents.transform import TransformInput
from genteach.keys import ToolOutcomeKey
from genteach.material import Audience, Material

if TYPE_CHECKING:
    from genteach.prompts import PromptLibrary

_IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_PARAM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A library name starts with a letter (``time_booking``, ``Acme Payments``, ``numpy.linalg``).
_LIBRARY_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\- ]*$"
#: Descriptions start with a word, not punctuation (empty allowed where optional).
_TEXT_PATTERN = r"^([A-Za-z0-9(\"'`][\s\S]*)?$"
_IDENT = re.compile(_IDENT_PATTERN)
#: How an API list is rendered as text (for agents and, without withheld APIs, students).
API_LIST_TEMPLATE = "tool_use/api_list_text.j2"


# -- API lists ----------------------------------------------------------------------------
class ApiParam(BaseModel):
    """One parameter of an API."""

    # The pattern goes into the JSON schema (constrained decoding, strict structured output);
    # the validator below gives the readable error.
    name: str = Field(json_schema_extra={"pattern": _PARAM_PATTERN})
    type: str = "string"
    description: str = ""
    required: bool = True

    @field_validator("name")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not re.fullmatch(_PARAM_PATTERN, v):
            raise ValueError(f"parameter name {v!r} is not an identifier")
        return v


class ApiSpec(BaseModel):
    """One API: a callable name, what it does, its parameters and what it returns."""

    name: str = Field(json_schema_extra={"pattern": _IDENT_PATTERN})
    description: str = Field(min_length=5, pattern=_TEXT_PATTERN)
    parameters: list[ApiParam] = Field(default_factory=list)
    returns: str = ""

    @field_validator("name")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"API name {v!r} is not a dotted identifier such as search_books")
        return v

    @property
    def required(self) -> list[str]:
        return [p.name for p in self.parameters if p.required]


class ApiList(BaseModel):
    """A transformer's answer for tool use, and the tool-use material: a library and its
    APIs. A task's copy names the APIs ``withheld`` from the assistant (task families
    where the needed API is missing): agents see every API with the withheld ones marked,
    the assistant sees the others."""

    # Patterns go into the JSON schema, so constrained decoding cannot write "," as a name.
    library: str = Field(
        min_length=1,
        max_length=80,
        pattern=_LIBRARY_PATTERN,
        description="a short library name",
    )
    description: str = Field(
        default="", pattern=_TEXT_PATTERN, description="what the library is for, one sentence"
    )
    apis: list[ApiSpec] = Field(min_length=2, max_length=25)
    # Set by code per task (never asked of a model).
    withheld: SkipJsonSchema[list[str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ApiList:
        """A repeated API name keeps its first definition (models sometimes loop); at least
        two distinct APIs must remain."""
        seen: set[str] = set()
        unique = []
        for api in self.apis:
            if api.name not in seen:
                seen.add(api.name)
                unique.append(api)
        if len(unique) < 2:
            raise ValueError(f"the list needs at least 2 distinct APIs, it has {len(unique)}")
        self.apis = unique
        return self

    @property
    def kind(self) -> str:
        return "api_list"

    @property
    def title(self) -> str:
        return self.library

    @property
    def shown(self) -> list[ApiSpec]:
        """The APIs the assistant is shown (all but the withheld ones)."""
        return [a for a in self.apis if a.name not in self.withheld]

    def names(self) -> list[str]:
        return [a.name for a in self.apis]

    def withholding(self, names: Sequence[str]) -> ApiList:
        """A copy with ``names`` withheld from the assistant."""
        return self.model_copy(update={"withheld": list(dict.fromkeys(names))})

    def material(self) -> Material:
        return self

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        return prompts.render(
            API_LIST_TEMPLATE,
            library=self.library,
            description=self.description,
            apis=[a.model_dump() for a in (self.apis if audience == "agent" else self.shown)],
            withheld=self.withheld if audience == "agent" else [],
        )


class ApiListBuilder(Agent[TransformInput, ApiList]):
    """Builds an API list from a seed: describes the APIs in code, extracts documented
    ones, or (library reconstruction) also invents the library's other plausible APIs.
    The parser enforces the prompt's bounds on the number of APIs (``min_items`` to
    ``max_items``)."""

    input_model = TransformInput
    output_model = ApiList
    default_system_template = "tool_use/api_list_system.j2"
    default_user_template = "tool_use/api_list_user.j2"

    def templates(self) -> list[str]:
        """Its prompts, and the template its material renders with."""
        return [self.system_template, self.user_template, API_LIST_TEMPLATE]

    def parse(self, text: str, inputs: TransformInput | None = None) -> ApiList:
        out = super().parse(text, inputs)
        if inputs is not None and not inputs.min_items <= len(out.apis) <= inputs.max_items:
            raise ParseError(
                f"the list has {len(out.apis)} distinct APIs; write between {inputs.min_items} "
                f"and {inputs.max_items}"
            )
        return out


# -- tasks --------------------------------------------------------------------------------
_REQUIRED = ToolOutcomeKey.model_fields["required_apis"].description
_EDIT_WITHHELD = (
    "the APIs to withhold from the assistant for the new request (the same as before unless "
    "the suggestion changes them)"
)
_WITHHELD = (
    "the APIs removed from the list the assistant is shown; empty unless the family says otherwise"
)


class ToolTaskDraft(TaskDraft):
    """A user request, its key (how a correct conversation ends, which APIs it calls) and
    the APIs to withhold from the assistant's list."""

    instruction: str = Field(
        min_length=15,
        description="the user's request, exactly as the assistant will see it",
    )
    key: ToolOutcomeKey
    withheld_apis: list[str] = Field(default_factory=list, description=_WITHHELD)

    @field_validator("withheld_apis")
    @classmethod
    def _drop_blank(cls, v: list[str]) -> list[str]:
        """An empty string names no API: drop it (small models write [""] for none)."""
        return [name.strip() for name in v if name.strip()]

    def material(self, base: Material) -> Material:
        assert isinstance(base, ApiList)
        return base.withholding(self.withheld_apis)


class ToolTaskAgent(SeedInstructionAgent):
    """Writes user requests of one task family (all parameters given, a missing required
    parameter, an API not in the list, ...). The parser checks the key against the list:
    every required and withheld API exists; FINAL_ANSWER needs its required APIs, none of
    them withheld."""

    draft_model: ClassVar[type[TaskDraft]] = ToolTaskDraft
    default_system_template = "tool_use/task_system.j2"
    default_user_template = "tool_use/task_user.j2"

    def __init__(self, name: str, **kwargs: Any) -> None:
        kwargs["key_kinds"] = [ToolOutcomeKey]
        super().__init__(name, **kwargs)

    def response_model(self, inputs: InstructInput) -> type[BaseModel]:
        """As the base's, with every API name (required or withheld) one of the list's:
        decoding cannot name an API the list lacks."""
        if not isinstance(inputs.material, ApiList) or not inputs.material.names():
            return super().response_model(inputs)
        return _named_batch(self.typed_draft, tuple(inputs.material.names()), inputs.count)

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)  # a request copying its line of values, ...
        assert isinstance(task, ToolTaskDraft) and isinstance(task.key, ToolOutcomeKey)
        material = inputs.material if inputs is not None else None
        check_tool_task(f"task {i}", task.key, task.withheld_apis, material)


@functools.lru_cache(maxsize=64)
def _named_batch(draft: type[TaskDraft], names: tuple[str, ...], count: int) -> type[BaseModel]:
    """The decoding schema of a batch of tool tasks whose API names are ``names`` only."""
    api = Literal[names]  # type: ignore[valid-type]
    task = create_model(
        "ToolTaskDraft_named",
        __base__=draft,
        key=(_named_key(names), ...),
        withheld_apis=(list[api], Field(default_factory=list, description=_WITHHELD)),
    )
    return create_model(
        "ToolTaskBatch_named",
        __config__=ConfigDict(extra="forbid"),
        tasks=(list[task], Field(min_length=1, max_length=count)),  # type: ignore[valid-type]
    )


@functools.lru_cache(maxsize=64)
def _named_key(names: tuple[str, ...]) -> type[BaseModel]:
    """The tool-outcome key whose required APIs are ``names`` only (for decoding)."""
    api = Literal[names]  # type: ignore[valid-type]
    return create_model(
        "ToolOutcomeKey_named",
        __base__=ToolOutcomeKey,
        required_apis=(list[api], Field(default_factory=list, description=_REQUIRED)),
    )


@functools.lru_cache(maxsize=64)
def _named_edit(edit: type[Edit], names: tuple[str, ...]) -> type[Edit]:
    """A tool-task edit whose API names are ``names`` only, with its key required: every
    edit of a tool task gives the new request's outcome and APIs."""
    api = Literal[names]  # type: ignore[valid-type]
    key = Field(description="the new key: the outcome and required_apis of the new request")
    return create_model(
        f"{edit.__name__}_named",
        __base__=edit,
        key=(_named_key(names), key),
        withheld_apis=(list[api] | None, Field(default=None, description=_EDIT_WITHHELD)),
    )


def check_tool_task(where: str, key: ToolOutcomeKey, withheld: Sequence[str], apis: Any) -> None:
    """Check a tool task's key and withheld APIs against its API list. Raises ParseError."""
    key.required_apis = [a.strip() for a in key.required_apis if a.strip()]
    if key.outcome == "final_answer" and not key.required_apis:
        raise ParseError(f"{where}: a task that ends with FINAL_ANSWER needs required_apis")
    if not isinstance(apis, ApiList):
        return
    listed = set(apis.names())
    for field, names in (("required_apis", key.required_apis), ("withheld_apis", withheld)):
        unknown = sorted(set(names) - listed)
        if unknown:
            raise ParseError(
                f"{where}: {field} {unknown} are not in the API list ({', '.join(apis.names())})"
            )
    if key.outcome == "final_answer":
        blocked = sorted(set(key.required_apis) & set(withheld))
        if blocked:
            raise ParseError(
                f"{where}: {blocked} are required but withheld, so the task cannot end with "
                "FINAL_ANSWER: withhold nothing it needs, or make it end with FAILED"
            )


class ToolEdit(Edit):
    """A revised tool-use task: its request and key, and the APIs withheld for it."""

    withheld_apis: list[str] | None = Field(default=None, description=_EDIT_WITHHELD)


class ToolEditor(Editor):
    """The tool-use editor: each revised request recomputes which APIs it needs and which
    are withheld, and keeps the original's expected outcome."""

    edit_model = ToolEdit

    def __init__(self, name: str, **kwargs: Any) -> None:
        kwargs["key_kinds"] = [ToolOutcomeKey]
        super().__init__(name, **kwargs)

    def decoding_edit(self, inputs: EditInput) -> type[Edit]:
        """The base's edit, with every API name (required or withheld) one of the list's."""
        material = inputs.material
        if not isinstance(material, ApiList) or not material.names():
            return super().decoding_edit(inputs)
        return _named_edit(self._edit, tuple(material.names()))

    def revise_material(
        self, where: str, edit: Edit, material: Material, inputs: EditInput
    ) -> Material:
        assert isinstance(edit, ToolEdit) and isinstance(material, ApiList)
        if edit.key is None:
            raise ParseError(
                f"{where}: give the new key: the outcome and required_apis of the new request"
            )
        key = edit.key
        assert isinstance(key, ToolOutcomeKey)
        if isinstance(inputs.key, ToolOutcomeKey) and key.outcome != inputs.key.outcome:
            raise ParseError(
                f"{where}: keep the original's expected outcome ({inputs.key.outcome}): the "
                "refinement must not change how a correct conversation ends"
            )
        withheld = material.withheld if edit.withheld_apis is None else edit.withheld_apis
        check_tool_task(where, key, withheld, material)
        return material.withholding(withheld)


# -- actions ------------------------------------------------------------------------------
class Action(BaseModel):
    """One parsed assistant turn."""

    kind: Literal["api_call", "final_answer", "failed"]
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    value: str = ""
    text: str


_ACTION = re.compile(
    r"ACTION_TYPE\s*:\s*(?P<type>[A-Z_]+)\s*\n?\s*ACTION\s*:\s*(?P<call>.+)\Z", re.DOTALL
)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null", "True", "False", "None"):
        return {"true": True, "True": True, "false": False, "False": False}.get(node.id)
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(k) if k is not None else None: _literal(v)
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        if isinstance(value, int | float):
            return -value
    if isinstance(node, ast.Constant):
        return node.value
    raise ParseError(f"argument value {ast.unparse(node)!r} is not a literal")


def parse_action(text: str, apis: list[ApiSpec] | None = None) -> Action:
    """Parse one assistant turn in the ACTION format.

    The turn may start with free text (the assistant's reasoning); it must end with one
    ``ACTION_TYPE`` / ``ACTION`` pair. API calls take keyword arguments with literal
    values (JSON's true/false/null accepted). With ``apis`` given, the call must name a
    listed API, use only its parameters and give every required one.
    """
    stripped = text.strip()
    idx = stripped.rfind("ACTION_TYPE")
    if idx < 0:
        raise ParseError("no 'ACTION_TYPE : ...' line: every turn must end with one action")
    m = _ACTION.match(stripped[idx:])
    if not m:
        raise ParseError("'ACTION_TYPE' must be followed by an 'ACTION: ...' line")
    action_type, call = m.group("type"), m.group("call").strip()
    if stripped[:idx].count("ACTION_TYPE") or call.count("ACTION_TYPE"):
        raise ParseError("more than one action in one turn")
    if action_type == "STOP":
        sm = re.fullmatch(r"(FINAL_ANSWER|FAILED)\s*\((?P<v>.*)\)\s*", call, re.DOTALL)
        if not sm:
            raise ParseError("a STOP action must be FINAL_ANSWER(...) or FAILED(...)")
        value = sm.group("v").strip()
        try:
            parsed = ast.literal_eval(value)
            if isinstance(parsed, str):
                value = parsed
        except (ValueError, SyntaxError):
            pass
        if not value:
            raise ParseError(f"{sm.group(1)}(...) needs a value")
        kind: Literal["final_answer", "failed"] = (
            "final_answer" if sm.group(1) == "FINAL_ANSWER" else "failed"
        )
        return Action(kind=kind, name=sm.group(1), value=value, text=stripped)
    if action_type != "API_CALL":
        raise ParseError(f"unknown ACTION_TYPE {action_type!r} (use API_CALL or STOP)")
    try:
        tree = ast.parse(call, mode="eval")
    except SyntaxError as exc:
        raise ParseError(
            f"the API call is not of the form name(param=value, ...): {exc.msg}"
        ) from exc
    node = tree.body
    if not isinstance(node, ast.Call):
        raise ParseError("the API call is not of the form name(param=value, ...)")
    name = ast.unparse(node.func)
    if node.args:
        raise ParseError(f"{name}: pass parameters by name (param=value), not by position")
    arguments = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    if len(arguments) != len(node.keywords):
        raise ParseError(f"{name}: **kwargs are not allowed in an API call")
    if apis is not None:
        spec = next((a for a in apis if a.name == name), None)
        if spec is None:
            listed = ", ".join(a.name for a in apis)
            raise ParseError(f"{name} is not in the API list ({listed})")
        known = {p.name for p in spec.parameters}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ParseError(f"{name} has no parameter {', '.join(unknown)}")
        missing = [p for p in spec.required if p not in arguments]
        if missing:
            raise ParseError(
                f"{name} is missing required parameter {', '.join(missing)}: ask for it or stop "
                "with FAILED"
            )
    return Action(kind="api_call", name=name, arguments=arguments, text=stripped)


#: Value tokens of the action grammar, by parameter type (anything else: any literal).
_VALUE_RULES = {
    "string": "STRING",
    "str": "STRING",
    "integer": "INT",
    "int": "INT",
    "number": "NUMBER",
    "float": "NUMBER",
    "boolean": "BOOL",
    "bool": "BOOL",
    "array": "list",
    "list": "list",
    "object": "object",
    "dict": "object",
}

_GRAMMAR_TAIL = r"""
value: STRING | NUMBER | BOOL | "null" | list | object
list: "[" (value (", " value)*)? "]"
object: "{" (STRING ": " value (", " STRING ": " value)*)? "}"
STRING: /"([^"\\\n]|\\["\\n]){0,%(value_chars)d}"/
INT: /-?(0|[1-9][0-9]{0,15})/
NUMBER: /-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,10})?/
BOOL: "true" | "false"
THOUGHT: /[^\n]+/ & ~/.*ACTION.*/
ANSWER: /"([^"\\\n]|\\["\\n]){1,%(answer_chars)d}"/
"""


def action_grammar(
    apis: Sequence[ApiSpec],
    *,
    thought_tokens: int = 120,
    answer_chars: int = 1200,
    value_chars: int = 300,
) -> str:
    """The ACTION turn format as a Lark grammar (llguidance dialect), for constrained
    decoding: one line of reasoning, then one call of a listed API with its required
    parameters and any of its optional ones, each once and in list order, or a STOP
    action. The grammar allows only what :func:`parse_action` accepts with these ``apis``
    (and the fixed order besides).
    The reasoning line is bounded in tokens (llguidance's ``max_tokens``, which may cut
    it anywhere: harmless for free text), the FINAL_ANSWER/FAILED string and each string
    argument in characters (the regex must still close the quote), so a rambling model is
    made to finish its turn instead of being cut off by the call's token budget.
    """
    rules: list[str] = []
    for i, api in enumerate(apis):
        for p in api.parameters:
            kind = _VALUE_RULES.get(p.type.strip().lower(), "value")
            rules.append(f'a{i}_{p.name}: "{p.name}=" {kind}')
        required = [f"a{i}_{p.name}" for p in api.parameters if p.required]
        optional = [f"a{i}_{p.name}" for p in api.parameters if not p.required]
        rules.append(f'api{i}: "{api.name}(" {_arguments(required, optional)} ")"')
    stop = r'"ACTION_TYPE : STOP\nACTION: " stop'
    call = r'"ACTION_TYPE : API_CALL\nACTION: " call'
    head = [
        r'start: thought "\n" action',
        f"action: {call} | {stop}" if apis else f"action: {stop}",
        'stop: "FINAL_ANSWER(" ANSWER ")" | "FAILED(" ANSWER ")"',
        f"thought[max_tokens={thought_tokens}]: THOUGHT",
    ]
    if apis:
        head.append("call: " + " | ".join(f"api{i}" for i in range(len(apis))))
    tail = _GRAMMAR_TAIL % {"answer_chars": answer_chars, "value_chars": value_chars}
    return "\n".join([*head, *rules]) + "\n" + tail


def _arguments(required: list[str], optional: list[str]) -> str:
    """Required parameters, then each optional one at most once, in list order."""

    def tail(rest: list[str]) -> str:
        return "".join(f' (", " {o})?' for o in rest)

    if required:
        return ' ", " '.join(required) + tail(optional)
    if not optional:
        return ""
    starts = [o + tail(optional[k + 1 :]) for k, o in enumerate(optional)]
    return f"({' | '.join(starts)})?"


#: The example actions of the ACTION format's instructions (the runtime's ToolUseFormat
#: writes them). They only show the format; a STOP message that repeats their wording was
#: copied, not written.
FORMAT_EXAMPLES: dict[str, str] = {
    "call": 'get_exchange_rate(base="EUR", target="JPY", date="2025-03-14")',
    "final_answer": "1 EUR was worth 161.2 JPY on 14 March 2025.",
    "failed": (
        "missing value for recipient_email of send_invoice: please tell me where to send "
        "the invoice"
    ),
}


def copies_format_example(value: str, n: int = 5) -> str | None:
    """The format example (:data:`FORMAT_EXAMPLES`) whose wording ``value`` repeats (a
    shared run of ``n`` words), else None."""
    for key in ("final_answer", "failed"):
        if shares_words(value, FORMAT_EXAMPLES[key], n):
            return key
    return None


class ApiExchange(BaseModel):
    """One earlier call in the conversation and what the simulated API returned."""

    api: str
    arguments: dict[str, Any]
    status: str
    result: Any = None
    error: str = ""


class ApiCallInput(BaseModel):
    """What the simulated API sees: the API, the call, the user's request, and the
    earlier calls of the same conversation (so its answers stay consistent)."""

    library: str
    api: ApiSpec
    arguments: dict[str, Any]
    request: str
    history: list[ApiExchange] = Field(default_factory=list)


class ApiResult(BaseModel):
    """The simulated API's response."""

    status: Literal["ok", "error"]
    result: Any = None
    error: str = ""


class SimulatedApi(Agent[ApiCallInput, ApiResult]):
    """Plays the API: returns a realistic, consistent JSON result for a call."""

    input_model = ApiCallInput
    output_model = ApiResult
    default_system_template = "tool_use/simulator_system.j2"
    default_user_template = "tool_use/simulator_user.j2"
    echo_words = 0  # results and errors may quote the API's description


__all__ = [
    "FORMAT_EXAMPLES",
    "Action",
    "ApiCallInput",
    "ApiExchange",
    "ApiList",
    "ApiListBuilder",
    "ApiParam",
    "ApiResult",
    "ApiSpec",
    "SimulatedApi",
    "ToolEdit",
    "ToolEditor",
    "ToolTaskAgent",
    "ToolTaskDraft",
    "action_grammar",
    "check_tool_task",
    "copies_format_example",
    "parse_action",
]
