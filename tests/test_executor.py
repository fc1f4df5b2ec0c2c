"""Tool use against the user's own executor module (issue 13, point 4): the API list read
from a module's functions, the environment that runs them, and a whole unit with the
scripted teacher against examples/executor/workshop.py, whose record's observations are
the functions' real results."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import pytest
from pydantic import BaseModel

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.agents.tool_use import ApiSpec
from genteach.flows import ApiModuleFlow
from genteach.flows.base import FlowBuild, RunContext, WorkItem
from genteach.models.base import Message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.runtime import (
    Action,
    ApiTask,
    EnvironmentFailure,
    ExecutorEnvironment,
    ExecutorError,
    ModuleApiList,
    ModuleExecutor,
    load_executor,
)
from genteach.runtime.executor import clip, describe_type, parse_docstring, to_json
from scripted_teacher import Teacher
from tool_conversation import SIMULATOR_MARKER, run_conversation

REPO = Path(__file__).resolve().parent.parent
WORKSHOP = REPO / "examples" / "executor" / "workshop.py"
TAXONOMY = REPO / "examples" / "executor" / "taxonomy.yaml"

SAMPLE = '''"""Booking helpers for tests.

More about the module.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from json import dumps  # imported: not an API
from typing import Literal, Optional

from pydantic import BaseModel

RELEASE = threading.Event()


@dataclass
class Slot:
    room: str
    seats: int


class Price(BaseModel):
    amount: float
    currency: str


def book(
    room: str,
    seats: int,
    tags: list[str],
    extras: dict[str, int] | None = None,
    kind: Literal["meeting", "talk"] = "meeting",
    paid: bool = False,
    budget: Optional[float] = None,
) -> Slot:
    """Book a room for a number of seats.

    The second paragraph is not part of the description.

    Args:
        room (str): the room's name,
            as printed on its door.
        seats: how many seats.
        tags: labels for the booking.
        extras: extra items by name.
        kind: what the booking is for.
        paid: whether it is paid.
        budget: the most to spend.

    Returns:
        The slot booked.
    """
    return Slot(room=room, seats=seats)


async def price(room: str) -> Price:
    """Price of a room, looked up asynchronously."""
    await asyncio.sleep(0)
    return Price(amount=12.5, currency="EUR")


def fail(reason: str) -> str:
    """Always raises, with the reason given."""
    raise ValueError(f"cannot do it: {reason}")


def slow() -> str:
    """Blocks until the test releases it."""
    RELEASE.wait(30)
    return "late"


async def slow_async() -> str:
    """Never returns in time."""
    await asyncio.sleep(30)
    return "late"


def huge(n: int) -> str:
    """A long text of n characters."""
    return "x" * n


def odd() -> object:
    """A result that is not JSON data."""
    return object()


def _private(x: int) -> int:
    """Not an API."""
    return x
'''


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[ModuleExecutor]:
    path = tmp_path / "booking.py"
    path.write_text(SAMPLE)
    executor = load_executor(str(path))
    yield executor
    module = sys.modules[executor.functions["book"].function.__module__]
    module.RELEASE.set()  # let a blocked thread end


def write(tmp_path: Path, body: str, name: str = "mod.py") -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


# -- the API list ---------------------------------------------------------------------------
def test_the_example_module_becomes_an_api_list() -> None:
    executor = load_executor(str(WORKSHOP))
    apis = executor.api_list()
    assert isinstance(apis, ModuleApiList) and apis.executor == str(WORKSHOP)
    assert apis.library == "workshop"
    assert apis.description.startswith("Workshop stores: convert lengths and weights")
    assert apis.names() == [
        "convert_length",
        "convert_weight",
        "find_parts",
        "get_part",
        "quote_order",
    ]  # __all__'s functions, in its order; the dataclasses are not APIs
    quote = next(a for a in apis.apis if a.name == "quote_order")
    assert [(p.name, p.type, p.required) for p in quote.parameters] == [
        ("sku", "string", True),
        ("quantity", "integer", True),
        ("express", "boolean", False),
    ]
    assert quote.parameters[2].description == "next-day delivery. Default false."
    assert quote.returns == "sku, quantity, total_eur, total_weight_kg and delivery_days."
    length = apis.apis[0]
    assert length.parameters[1].description == (
        'the unit of ``value``. One of "mm", "cm", "m", "km", "in", "ft".'
    )
    assert length.parameters[0].type == "number"


def test_signatures_hints_and_args_sections(sample: ModuleExecutor) -> None:
    assert sample.library == "booking"
    assert sample.description == "Booking helpers for tests."
    assert list(sample.functions) == ["book", "price", "fail", "slow", "slow_async", "huge", "odd"]
    book = sample.functions["book"].spec
    assert book.description == "Book a room for a number of seats."
    assert book.returns == "The slot booked."
    assert [(p.name, p.type, p.required, p.description) for p in book.parameters] == [
        ("room", "string", True, "the room's name, as printed on its door."),
        ("seats", "integer", True, "how many seats."),
        ("tags", "array", True, "labels for the booking."),
        ("extras", "object", False, "extra items by name. Default null."),
        ("kind", "string", False, 'what the booking is for. One of "meeting", "talk". Default "meeting".'),
        ("paid", "boolean", False, "whether it is paid. Default false."),
        ("budget", "number", False, "the most to spend. Default null."),
    ]  # fmt: skip
    price = sample.functions["price"].spec
    assert price.parameters[0].description == "" and price.returns == "Price"


@pytest.mark.parametrize(
    ("hint", "kind", "choices", "nullable"),
    [
        (str, "string", (), False),
        (int, "integer", (), False),
        (float, "number", (), False),
        (bool, "boolean", (), False),
        (list, "array", (), False),
        (list[int], "array", (), False),
        (dict, "object", (), False),
        (dict[str, float], "object", (), False),
        (Optional[int], "integer", (), True),  # noqa: UP045 (the typing spelling is read too)
        (str | None, "string", (), True),
        (Literal["a", "b"], "string", ("a", "b"), False),
        (Literal[1, 2] | None, "integer", (1, 2), True),
    ],
)
def test_type_hints_map_to_json_types(
    hint: Any, kind: str, choices: tuple[Any, ...], nullable: bool
) -> None:
    described = describe_type(hint)
    assert described is not None
    assert (described.kind, described.choices, described.nullable) == (kind, choices, nullable)


@pytest.mark.parametrize(
    "hint", [set, tuple[int, int], dict[int, str], int | str, Literal["a", 1], Any, bytes, object]
)
def test_types_an_api_cannot_describe(hint: Any) -> None:
    assert describe_type(hint) is None


def test_a_docstring_without_sections_is_all_summary() -> None:
    doc = parse_docstring("Find things\nacross two lines.\n\nMore.")
    assert doc.summary == "Find things across two lines." and not doc.args and not doc.returns
    assert parse_docstring(None).summary == ""


_ONE = '''
def ok(a: int) -> int:
    """Fine."""
    return a
'''


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _ONE + 'def f(*names: str) -> None:\n    """Takes many."""\n',
            "mod.py: f: *names cannot be an API parameter; name each one",
        ),
        (
            _ONE + 'def f(**options: str) -> None:\n    """Takes any."""\n',
            "mod.py: f: **options cannot be an API parameter; name each one",
        ),
        (
            _ONE + 'def f(s: set[int]) -> None:\n    """Takes a set."""\n',
            "mod.py: f: parameter s: cannot describe type set[int] as an API parameter (use "
            "str, int, float, bool, list, dict, Optional or Literal)",
        ),
        (
            _ONE + 'def f(x) -> None:\n    """No hint."""\n',
            "mod.py: f: parameter x has no type hint",
        ),
        (
            _ONE + "def f(x: int) -> None:\n    pass\n",
            "mod.py: f: no docstring; its first paragraph is the API's description",
        ),
        (
            _ONE + 'def f(x: int, /) -> None:\n    """Positional."""\n',
            "mod.py: f: parameter x is positional-only",
        ),
        ("X = 1\n", "mod.py: the executor module has no public function"),
        (_ONE, "mod.py: not a valid API list: apis: "),
        (
            '"""Doc."""\nimport math\n\nVALUE = 1\nVALUE = VALUE / 0\n',
            "mod.py:5: cannot import the executor module: ZeroDivisionError: division by zero",
        ),
        (
            "def f(:\n",
            "mod.py:1: cannot import the executor module: SyntaxError: ",
        ),
    ],
)
def test_what_cannot_be_an_api_is_one_clear_error(tmp_path: Path, body: str, message: str) -> None:
    spec = write(tmp_path, body)
    with pytest.raises(ExecutorError) as caught:
        load_executor(spec)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / message.split(":", 1)[0])), text
    assert message.split("mod.py", 1)[1] in text, text


def test_missing_modules(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match=r"^nowhere/x\.py: executor module not found$"):
        load_executor("nowhere/x.py")
    with pytest.raises(ExecutorError, match=r"^no_such_executor_module: no executor module"):
        load_executor("no_such_executor_module")


def test_a_dotted_module_and_a_path_beside_the_taxonomy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "my_tools"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shop.py").write_text(
        '"""Shop."""\n__all__ = ["a", "b"]\n\n'
        'def a(x: int) -> int:\n    """First one."""\n    return x\n\n'
        'def b(x: int) -> int:\n    """Second one."""\n    return x\n\n'
        'def c(x: int) -> int:\n    """Not in __all__."""\n    return x\n'
    )
    (package / "broken.py").write_text('"""Broken."""\nimport json\nraise RuntimeError("boom")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        executor = load_executor("my_tools.shop")
        assert executor.library == "my_tools.shop" and list(executor.functions) == ["a", "b"]
        with pytest.raises(
            ExecutorError, match=r"broken\.py:3: cannot import .*RuntimeError: boom$"
        ):
            load_executor("my_tools.broken")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "my_tools"]:
            del sys.modules[name]
    # a relative path not found in the working directory is looked for in the folder given
    assert load_executor("shop.py", folder=package).library == "shop"


# -- the environment ------------------------------------------------------------------------
def task_of(executor: ModuleExecutor, request: str = "Book it.") -> ApiTask:
    apis = executor.api_list()
    return ApiTask(request, apis.library, tuple(apis.apis), apis.description)


def call(name: str, **arguments: Any) -> Action:
    return Action(kind="call", name=name, arguments=arguments)


def steps(env: ExecutorEnvironment, task: ApiTask, *actions: Action) -> list[Any]:
    async def go() -> list[Any]:
        first = await env.reset(task)
        return [first] + [await env.step(a) for a in actions]

    return asyncio.run(go())


def test_calls_run_the_functions(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary())
    first, booked, priced = steps(
        env,
        task_of(sample),
        call("book", room="Blue", seats=4, tags=["team"], kind="talk"),
        call("price", room="Blue"),
    )
    assert first.text == "Book it." and 'library "booking"' in first.system
    assert [t.name for t in first.tools] == list(sample.functions)
    assert booked.observation == '{"room": "Blue", "seats": 4}' and not booked.error
    assert booked.info == {"status": "ok", "truncated": False}
    assert priced.observation == '{"amount": 12.5, "currency": "EUR"}'  # async, pydantic
    assert [(c.api, c.status, c.result) for c in env.calls] == [
        ("book", "ok", {"room": "Blue", "seats": 4}),
        ("price", "ok", {"amount": 12.5, "currency": "EUR"}),
    ]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"room": "Blue", "tags": []}, "book is missing required parameter seats"),
        ({"room": "Blue", "seats": 2, "tags": [], "floor": 3}, "book has no parameter floor"),
        ({"room": "Blue", "seats": "2", "tags": []}, "book: parameter seats expects integer, got string"),
        ({"room": "Blue", "seats": True, "tags": []}, "book: parameter seats expects integer, got boolean"),
        ({"room": None, "seats": 2, "tags": []}, "book: parameter room expects string, got null"),
        ({"room": "Blue", "seats": 2, "tags": [1]}, "book: parameter tags item 1: expects string, got integer"),
        ({"room": "Blue", "seats": 2, "tags": [], "kind": "party"}, 'book: parameter kind must be one of "meeting", "talk"'),
        ({"room": "Blue", "seats": 2, "tags": [], "extras": {"x": 1.5}}, "book: parameter extras item 1.5: expects integer, got number"),
    ],
)  # fmt: skip
def test_bad_arguments_are_error_observations(
    sample: ModuleExecutor, arguments: dict[str, Any], error: str
) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary())
    _, result = steps(env, task_of(sample), call("book", **arguments))
    assert result.error and result.observation == error and not result.done
    assert env.calls[0].status == "error" and env.calls[0].error == error


def test_accepted_values_of_optional_and_number_parameters(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary())
    _, result = steps(
        env,
        task_of(sample),
        call("book", room="Blue", seats=2, tags=[], budget=3, extras=None, paid=True),
    )
    assert not result.error  # an int is a number; null is an Optional's value


def test_a_raising_function_and_the_episode_goes_on(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary())
    _, failed, ok, stop = steps(
        env,
        task_of(sample),
        call("fail", reason="closed"),
        call("huge", n=3),
        Action(kind="answer", text="Done."),
    )
    assert failed.error and failed.observation == "error: ValueError: cannot do it: closed"
    assert ok.observation == '"xxx"'
    assert stop.done and stop.reward == 1.0


def test_timeouts_sync_and_async(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary(), timeout=0.05)
    _, blocked, sleeping = steps(env, task_of(sample), call("slow"), call("slow_async"))
    assert blocked.error
    assert blocked.observation == "error: TimeoutError: slow gave no result within 0.05 s"
    assert sleeping.observation == "error: TimeoutError: slow_async gave no result within 0.05 s"


def test_long_results_are_cut_with_a_marker(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary(), max_chars=100)
    _, result = steps(env, task_of(sample), call("huge", n=500))
    assert result.observation == '"' + "x" * 99 + " ... [truncated: 402 more characters]"
    assert result.info["truncated"] is True
    assert env.calls[0].result == "x" * 500  # the exchange keeps the whole result
    assert clip("short", 10) == "short"


def test_results_that_are_not_json_data(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary())
    _, result = steps(env, task_of(sample), call("odd"))
    assert result.error
    assert result.observation == "error: TypeError: a result of type object is not JSON data"

    class Colour(BaseModel):
        name: str

    @dataclasses.dataclass
    class Box:
        colour: Colour
        sizes: tuple[int, ...]

    assert to_json(Box(Colour(name="red"), (1, 2))) == {"colour": {"name": "red"}, "sizes": [1, 2]}


def test_calls_outside_the_task(sample: ModuleExecutor) -> None:
    apis = sample.api_list()
    shown = tuple(a for a in apis.apis if a.name != "fail")
    env = ExecutorEnvironment(sample, PromptLibrary())
    task = ApiTask("Book it.", apis.library, shown)
    with pytest.raises(EnvironmentFailure, match="fail is not an API of this task"):
        steps(env, task, call("fail", reason="x"))
    other = ApiSpec(name="elsewhere", description="Not in the module.")
    with pytest.raises(EnvironmentFailure, match="elsewhere is not a function of the executor"):
        steps(env, ApiTask("Go.", apis.library, (other,)), call("elsewhere"))


def test_the_stop_reward_is_the_check_given(sample: ModuleExecutor) -> None:
    env = ExecutorEnvironment(sample, PromptLibrary(), reward=lambda t, a, c: float(len(c) == 1))
    *_, stop = steps(env, task_of(sample), call("huge", n=1), Action(kind="fail", text="no"))
    assert stop.done and stop.reward == 1.0 and stop.info == {"outcome": "fail"}


# -- the material stage and a whole unit ----------------------------------------------------
def test_the_material_stage_makes_no_model_call() -> None:
    skill = load_taxonomy(TAXONOMY).skill("tool_use")
    settings = ApiModuleFlow.Settings(executor="workshop.py")  # found beside the taxonomy
    flow = ApiModuleFlow.from_config(skill, settings, FlowBuild(prompts=PromptLibrary()))
    model = ScriptedModel([])
    item = WorkItem(seed=Seed.from_text("A seed."), skill=skill, rng=random.Random(0))
    asyncio.run(flow(item, RunContext(client=model, prompts=PromptLibrary(), teacher="t")))
    assert isinstance(item.material, ModuleApiList) and item.material.library == "workshop"
    assert model.calls == [] and flow.expected_calls(3.0) == (0.0, 3.0)


def test_a_bad_executor_stops_the_run_before_any_call(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match=r"^missing\.py: executor module not found$"):
        workshop_pipeline(WorkshopTeacher(), executor="missing.py")


class WorkshopTeacher(Teacher):
    """The scripted teacher, writing requests for the workshop module and acting on its
    real results: the SKU it quotes and the total it answers are read from them."""

    KEY: ClassVar[dict[str, object]] = {
        "kind": "tool_outcome",
        "outcome": "final_answer",
        "required_apis": ["find_parts", "quote_order"],
        "reference": 'find_parts(query="oak board") -> quote_order(sku, quantity=2) -> total',
    }

    def tool_task(self, messages: Sequence[Message]) -> str:
        written = json.loads(super().tool_task(messages))
        for i, task in enumerate(written["tasks"], 1):
            task["instruction"] = (
                f"What would two oak boards cost me with standard delivery? (request "
                f"{self.calls['tool_task']}.{i})"
            )
            task["key"] = dict(self.KEY)
        return json.dumps(written)

    def edit(self, messages: Sequence[Message]) -> str:
        edited = json.loads(super().edit(messages))
        for edit in edited["edits"]:
            edit["instruction"] = (
                f"Price two oak boards, standard delivery, and give the total weight too "
                f"(revised {self.calls['edit']}.{edit['suggestion']})."
            )
            edit["key"] = dict(self.KEY)
        return json.dumps(edited)

    def assistant(self, messages: Sequence[Message]) -> str:
        last = messages[-1]["content"]
        if last.startswith("API_RESULT quote_order: "):
            quote = json.loads(last.split(": ", 1)[1])
            total = quote["total_eur"]
            return f'Priced.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("{total} EUR")'
        if last.startswith("API_RESULT find_parts: "):
            sku = json.loads(last.split(": ", 1)[1])[0]["sku"]
            return (
                f"The board is {sku}.\n"
                f'ACTION_TYPE : API_CALL\nACTION: quote_order(sku="{sku}", quantity=2)'
            )
        return (
            'Find the board first.\nACTION_TYPE : API_CALL\nACTION: find_parts(query="oak board")'
        )


def workshop_pipeline(teacher: Teacher, executor: str) -> Pipeline:
    return Pipeline(
        ScriptedModel(teacher, name="scripted-teacher"),
        taxonomy=load_taxonomy(TAXONOMY),
        skills=["tool_use"],
        prompts=PromptLibrary(),
        settings=RunSettings(seed=3, overrides={"executor": executor}),
    )


def test_a_unit_against_the_example_module(tmp_path: Path) -> None:
    teacher = WorkshopTeacher()
    pipe = workshop_pipeline(teacher, str(WORKSHOP))
    summary = pipe.run([Seed.from_text("A joiner fits oak shelves in a workshop.")], tmp_path / "o")
    assert summary.rejects == 0 and summary.records == 2 + 2 * 2  # originals + refined
    assert teacher.calls["simulate"] == 0 and teacher.calls["api_list"] == 0

    functions = load_executor(str(WORKSHOP)).functions
    found = json.dumps(to_json(functions["find_parts"].function("oak board")))
    quoted = json.dumps(to_json(functions["quote_order"].function("TB-120", 2)))
    for record in read_records(tmp_path / "o" / "records.jsonl"):
        observations = [m["content"] for m in record.messages if m["role"] == "user"][1:]
        assert observations == [
            f"API_RESULT find_parts: {found}",
            f"API_RESULT quote_order: {quoted}",
        ]
        assert record.messages[-1]["content"].endswith('FINAL_ANSWER("77.0 EUR")')
        assert record.meta.verification is not None
        assert record.meta.verification.status == "passed"
        assert "api_simulator" not in record.meta.agents


def test_a_teacher_written_list_still_goes_to_the_simulator() -> None:
    record, model = run_conversation(load_taxonomy().skill("tool_use"), PromptLibrary())
    assert record.meta.agents.count("api_simulator") == 3  # one per call, as before
    assert sum(SIMULATOR_MARKER in c[0]["content"] for c in model.calls) == 3
