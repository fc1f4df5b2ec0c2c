"""Program-tests keys: the response's last Python block runs with the key's tests in the
sandbox (never in this process)."""

from __future__ import annotations

import pytest

from genteach.flows.base import RunContext
from genteach.keys import Layout, ProgramTestsKey, TestSuiteKey, failing_line, last_code_block
from genteach.models import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.runtime import Sandbox, SandboxLimits, SandboxUnavailable

L = Layout()
KEY = ProgramTestsKey(
    tests="assert add(2, 3) == 5\n\ndef test_negative():\n    assert add(-1, -1) == -2\n",
    entry_point="add",
)
GOOD = "Plan: add them.\n\n```python\ndef add(a, b):\n    return a + b\n```\nLinear? Constant."


class Tools:
    """KeyTools over one sandbox (or none)."""

    def __init__(self, sandbox: Sandbox | None) -> None:
        self._sandbox = sandbox

    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise SandboxUnavailable("no bwrap, no unshare")
        return self._sandbox


@pytest.fixture(scope="module")
def tools() -> Tools:
    return Tools(Sandbox(SandboxLimits(wall_seconds=5, cpu_seconds=3)))


def test_the_last_python_block_is_the_solution() -> None:
    text = "```python\nx = 1\n```\nthen\n```js\nlet y\n```\n```python\ny = 2\n```"
    assert last_code_block(text, "python") == "y = 2\n"
    assert last_code_block("```\nz = 3\n```", "python") == "z = 3\n"  # untagged counts
    assert last_code_block("no code", "python") is None


def test_a_failure_is_quoted_by_its_line_and_error() -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/sandbox/main.py", line 3, in <module>\n'
        "    assert add(2, 3) == 5\n"
        "AssertionError\n"
    )
    assert failing_line(stderr) == "assert add(2, 3) == 5 -> AssertionError"
    assert failing_line("") == "the program failed without an error message"


def test_the_entry_point_is_named_and_tested() -> None:
    assert KEY.fit_task("Write add(a, b), which returns the sum.", None) is None
    assert KEY.fit_task("Write a function that sums.", None) == (
        'the entry point "add" is not named in the instruction'
    )
    untested = ProgramTestsKey(tests="assert True is True", entry_point="add")
    assert untested.fit_task("Write add(a, b).", None) == (
        'the tests never call the entry point "add"'
    )
    assert KEY.check(GOOD, L).status == "unchecked"  # only verify() runs code


@pytest.mark.slow
async def test_a_right_solution_passes_in_the_sandbox(tools: Tools) -> None:
    v = await KEY.verify(GOOD, L, tools)
    assert (v.status, v.detail) == ("passed", "the tests of add pass")


@pytest.mark.slow
async def test_wrong_missing_and_runaway_solutions_fail(tools: Tools) -> None:
    wrong = GOOD.replace("a + b", "a - b")
    v = await KEY.verify(wrong, L, tools)
    assert v.status == "failed"
    assert v.detail == "the tests fail: assert add(2, 3) == 5 -> AssertionError"
    only_negative = GOOD.replace("return a + b", "return a + b if a > 0 else 0")
    v = await KEY.verify(only_negative, L, tools)
    assert v.detail == "the tests fail: assert add(-1, -1) == -2 -> AssertionError"
    assert (await KEY.verify("It adds.", L, tools)).detail == "no ```python block in the answer"
    other = GOOD.replace("def add", "def plus")
    assert (await KEY.verify(other, L, tools)).detail == "the solution does not define add"
    quits = GOOD.replace("return a + b", "return a + b\n\nimport sys\nsys.exit(0)")
    assert (await KEY.verify(quits, L, tools)).status == "failed"  # exits before the tests
    loops = GOOD.replace("return a + b", "while True:\n        pass")
    v = await KEY.verify(loops, L, tools)
    assert v.status == "failed" and v.detail.startswith("the tests fail")


async def test_without_a_sandbox_the_answer_is_unchecked_never_run_here() -> None:
    v = await KEY.verify(GOOD, L, Tools(None))
    assert (v.status, v.detail) == ("unchecked", "no sandbox here: no bwrap, no unshare")
    js = ProgramTestsKey(language="javascript", tests="assert(add(1, 2) === 3)")
    assert (await js.verify(GOOD, L, Tools(None))).detail == "javascript code is not run"


def test_the_run_context_makes_its_sandbox_once() -> None:
    given = Sandbox(SandboxLimits(wall_seconds=3), isolation="none")
    ctx = RunContext(
        client=ScriptedModel([]), prompts=PromptLibrary(), teacher="t", code_sandbox=given
    )
    assert ctx.sandbox() is given and ctx.sandbox() is given


# -- test-writing tasks: the student's tests must fail on mutants --------------------------
GRADE = (
    "def grade(score):\n"
    "    if score < 0 or score > 100:\n"
    "        raise ValueError('score out of range')\n"
    "    if score >= 90:\n"
    "        return 'A'\n"
    "    if score >= 75:\n"
    "        return 'B'\n"
    "    return 'C'\n"
)
SUITE_KEY = TestSuiteKey(
    tests="assert grade(0) == 'C'\nassert grade(100) == 'A'\nassert grade(90) == 'A'\n"
    "assert grade(89) == 'B'\nassert grade(75) == 'B'\nassert grade(74) == 'C'\n",
    entry_point="grade",
)
GOOD_TESTS = (
    "def test_bands():\n    assert grade(95) == 'A'\n    assert grade(80) == 'B'\n"
    "    assert grade(10) == 'C'\n\n"
    "def test_boundaries():\n    assert grade(90) == 'A'\n    assert grade(89) == 'B'\n"
    "    assert grade(75) == 'B'\n    assert grade(74) == 'C'\n"
    "    assert grade(0) == 'C'\n    assert grade(100) == 'A'\n\n"
    "def test_out_of_range():\n    for bad in (-1, 101):\n        try:\n"
    "            grade(bad)\n        except ValueError:\n            continue\n"
    "        raise AssertionError(bad)\n"
)


def _answer(tests: str) -> str:
    return f"Here are the tests.\n\n```python\n{GRADE}\n{tests}```"


@pytest.mark.slow
async def test_tests_that_pin_every_boundary_kill_the_mutants(tools: Tools) -> None:
    v = await SUITE_KEY.verify(_answer(GOOD_TESTS), L, tools)
    assert v.status == "passed", v.detail
    assert "fail on" in v.detail and "mutants" in v.detail


@pytest.mark.slow
async def test_tests_of_the_common_case_only_let_a_mutant_through(tools: Tools) -> None:
    weak = "def test_bands():\n    assert grade(95) == 'A'\n    assert grade(10) == 'C'\n"
    v = await SUITE_KEY.verify(_answer(weak), L, tools)
    assert v.status == "failed"
    assert "the tests pass on a mutant of grade: line" in v.detail


async def test_an_answer_without_test_functions_fails(tools: Tools) -> None:
    v = await SUITE_KEY.verify(_answer("assert grade(95) == 'A'\n"), L, tools)
    assert (v.status, v.detail) == ("failed", "the answer defines no test_ function")


@pytest.mark.slow
async def test_a_changed_function_fails_the_keys_own_tests(tools: Tools) -> None:
    changed = _answer(GOOD_TESTS).replace("score >= 75", "score > 75")
    v = await SUITE_KEY.verify(changed, L, tools)
    assert v.status == "failed" and "the tests fail" in v.detail
