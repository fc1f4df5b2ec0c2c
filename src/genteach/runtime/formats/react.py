"""AgentTuning's ReAct text formats, as AgentBench's OS and DB tasks use them.

OS style (a thought, then one of three actions)::

    Think: I need the number of files, not their names.

    Act: bash

    ```bash
    ls -1 /etc | wc -l
    ```

    Think: The output is the count.

    Act: answer(220)

    Think: The permissions are set.

    Act: finish

DB style (an explanation, then an operation or the answer)::

    The total is the sum of the sales of John Doe.
    Action: Operation
    ```sql
    SELECT SUM(total_price) FROM sales WHERE emp_id = 3;
    ```

    The query returned 1250.
    Action: Answer
    Final Answer: [1250]

Parsing is tolerant of blank space and strict about the action: exactly one action line,
a closed code block with nothing after it, a final answer that is a list.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from genteach.agents.parsing import ParseError
from genteach.models.base import Completion, Message, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, Observation, Placement, StepResult, TurnContext
from genteach.runtime.formats._text import (
    TextFormat,
    check_thought,
    fenced_block,
    from_last_marker,
    marker_lines,
    truncate,
)

#: Lark terminals shared by the two grammars: a one-line thought (bounded in tokens).
_THOUGHT = "THOUGHT: /[^\\n]+/ & ~/.*(Act|Action)[ \\t]*:.*/"


class ReactOsFormat(TextFormat):
    """AgentBench's OS format: ``Think: ...`` then ``Act: bash`` with a bash block,
    ``Act: answer(...)`` or ``Act: finish``; observations start with "The output of the
    OS:".

    A bash action is ``Action(kind="call", name="bash", text=<script>)``, an answer
    ``Action(kind="answer", text=...)``, finish ``Action(kind="finish")``.

    Args:
        placement: ``"user"`` (AgentBench: the instructions open the first user turn) or
            ``"system"``.
        output_limit / output_keep: command output longer than ``output_limit``
            characters is cut to its first ``output_keep`` with a note (AgentBench: 800
            and 780); ``output_limit=None`` never cuts.
        require_thought: a turn without a ``Think:`` line is malformed.
        thought_tokens: the grammar's bound on the thought line, in tokens.
        stop: stop sequences (by default a line that opens an observation, so a model
            that goes on to invent the output is cut there; a thought that mentions "the
            output of the OS" is not).
    """

    name = "react_os"

    def __init__(
        self,
        *,
        placement: Placement = "user",
        output_limit: int | None = 800,
        output_keep: int = 780,
        require_thought: bool = True,
        thought_tokens: int = 200,
        stop: tuple[str, ...] = ("\nThe output of the OS:",),
        instructions_template: str = "runtime/react_os/instructions.j2",
        hint_template: str = "runtime/react_os/hint.j2",
        task_template: str | None = "runtime/react_os/task.j2",
        observation_template: str = "runtime/react_os/observation.j2",
    ) -> None:
        super().__init__(
            placement=placement,
            stop=stop,
            instructions_template=instructions_template,
            hint_template=hint_template,
            task_template=task_template,
        )
        if output_limit is not None and not 0 < output_keep <= output_limit:
            raise ValueError(
                f"output_keep must be in 1..output_limit ({output_limit}), got {output_keep}"
            )
        self.output_limit = output_limit
        self.output_keep = output_keep
        self.require_thought = require_thought
        self.thought_tokens = thought_tokens
        self.observation_template = observation_template

    def variables(self, first: Observation) -> dict[str, Any]:
        return {"limit": self.output_limit}

    def write(self, action: Action) -> str:
        if action.kind == "call":
            act = f"Act: bash\n\n```bash\n{action.text}\n```"
        elif action.kind == "answer":
            act = f"Act: answer({action.text})"
        elif action.kind == "finish":
            act = "Act: finish"
        else:
            raise ValueError(f"the OS format has no {action.kind} action")
        return f"Think: {action.thought}\n\n{act}" if action.thought else act

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        text = completion.text.strip()
        acts = marker_lines("Act", text)
        if not acts:
            raise ParseError(
                "no 'Act:' line: end the turn with one action (bash, answer(...) or finish)"
            )
        if len(acts) > 1:
            raise ParseError("more than one 'Act:' line: take exactly one action per turn")
        act = acts[0]
        before = text[: act.start()].strip()
        think = re.match(r"Think[ \t]*:\s*", before)
        thought = before[think.end() :].strip() if think else before
        if self.require_thought and (think is None or not thought):
            raise ParseError("no 'Think:' line before the action: write your thought, then act")
        check_thought(thought)
        rest, after = act.group("rest"), text[act.end() :]
        if rest == "bash":
            code = fenced_block(after, "bash", "'Act: bash'")
            return Action(kind="call", name="bash", text=code, thought=thought)
        if rest == "finish":
            if after.strip():
                raise ParseError("write nothing after 'Act: finish'")
            return Action(kind="finish", thought=thought)
        if rest.startswith("answer"):
            whole = (rest + after).strip()
            if not whole.startswith("answer("):
                raise ParseError("write the answer inside the parentheses: answer(...)")
            m = re.fullmatch(r"answer\((?P<answer>.*)\)", whole, re.DOTALL)
            if m is None:
                if ")" in whole:
                    raise ParseError("write nothing after answer(...)")
                raise ParseError("answer( is not closed with ')' (cut off?)")
            answer = m.group("answer").strip()
            if not answer:
                raise ParseError("answer() is empty: put the answer inside the parentheses")
            return Action(kind="answer", text=answer, thought=thought)
        if not rest:
            raise ParseError("'Act:' names no action: use bash, answer(...) or finish")
        raise ParseError(f"unknown action {rest!r}: use bash, answer(...) or finish")

    def grammar(self, ctx: TurnContext) -> str | None:
        """One thought line, then a bash block (no ``` inside), ``answer(...)`` on one
        line, or ``finish``; nothing after."""
        return "\n".join(
            [
                r'start: "Think: " thought "\n\nAct: " act',
                "act: bash | answer | finish",
                r'bash: "bash\n\n```bash\n" CODE',
                'answer: "answer(" ANSWER',
                'finish: "finish"',
                f"thought[max_tokens={self.thought_tokens}]: THOUGHT",
                _THOUGHT,
                # the block's code and its closing fence: one lexeme (lexemes are greedy)
                r"CODE: /[^\n`](.|\n)*\n```/ & ~/(.|\n)*```(.|\n)+/",
                r"ANSWER: /[^\n]{0,499}[^\n)]\)/",
            ]
        )

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        output, cut = truncate(result.observation, self.output_limit, self.output_keep)
        return message(
            "user",
            prompts.render(
                self.observation_template,
                output=output,
                truncated=cut,
                limit=self.output_limit,
                error=result.error,
            ),
        )

    def action_span(self, completion: Completion) -> str:
        return from_last_marker(completion.text, "Act")


class ReactDbFormat(TextFormat):
    """AgentBench's DB format: an explanation, then ``Action: Operation`` with a one-line
    ```sql block, or ``Action: Answer`` and ``Final Answer: [...]`` (a list); the
    observation is the database's raw answer.

    An operation is ``Action(kind="call", name="sql", text=<one statement>)`` (a statement
    written over several lines is joined into one); an answer is
    ``Action(kind="answer", text=<the list as written>)``.

    Args:
        placement: ``"user"`` (AgentBench: the instructions are a user turn that a
            scripted "Ok." acknowledges) or ``"system"``.
        require_thought: a turn without an explanation before ``Action:`` is malformed.
        thought_tokens: the grammar's bound on the explanation, in tokens.
        stop: stop sequences (none by default: observations have no marker).
        acknowledgement_template: the scripted reply to the instructions; ``None`` for
            none.
    """

    name = "react_db"

    def __init__(
        self,
        *,
        placement: Placement = "user",
        require_thought: bool = True,
        thought_tokens: int = 200,
        stop: tuple[str, ...] = (),
        instructions_template: str = "runtime/react_db/instructions.j2",
        hint_template: str = "runtime/react_db/hint.j2",
        task_template: str | None = None,
        acknowledgement_template: str | None = "runtime/react_db/acknowledgement.j2",
        observation_template: str = "runtime/react_db/observation.j2",
    ) -> None:
        super().__init__(
            placement=placement,
            stop=stop,
            instructions_template=instructions_template,
            hint_template=hint_template,
            task_template=task_template,
            acknowledgement_template=acknowledgement_template,
        )
        self.require_thought = require_thought
        self.thought_tokens = thought_tokens
        self.observation_template = observation_template

    def write(self, action: Action) -> str:
        if action.kind == "call":
            act = f"Action: Operation\n```sql\n{action.text}\n```"
        elif action.kind == "answer":
            act = f"Action: Answer\nFinal Answer: {action.text}"
        else:
            raise ValueError(f"the DB format has no {action.kind} action")
        return f"{action.thought}\n{act}" if action.thought else act

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        text = completion.text.strip()
        acts = marker_lines("Action", text)
        if not acts:
            raise ParseError(
                "no 'Action:' line: end the turn with 'Action: Operation' and a sql block, "
                "or 'Action: Answer' and 'Final Answer: [...]'"
            )
        if len(acts) > 1:
            raise ParseError("more than one 'Action:' line: take exactly one action per turn")
        act = acts[0]
        thought = text[: act.start()].strip()
        if self.require_thought and not thought:
            raise ParseError("no explanation before 'Action:': explain your reasoning, then act")
        check_thought(thought)
        rest, after = act.group("rest"), text[act.end() :]
        if rest == "Operation":
            code = fenced_block(after, "sql", "'Action: Operation'")
            sql = " ".join(line.strip() for line in code.splitlines() if line.strip())
            if _statements(sql) > 1:
                raise ParseError(
                    "one SQL statement per operation: run the next one in the next turn"
                )
            return Action(kind="call", name="sql", text=sql, thought=thought)
        if rest == "Answer":
            m = re.match(r"\s*Final Answer[ \t]*:[ \t]*(?P<value>.*)\Z", after, re.DOTALL)
            if m is None:
                raise ParseError(
                    "'Action: Answer' must be followed by a 'Final Answer: [...]' line"
                )
            value = m.group("value").strip()
            answer_list(value)
            return Action(kind="answer", text=value, thought=thought)
        if not rest:
            raise ParseError("'Action:' names no action: use Operation or Answer")
        raise ParseError(f"unknown action {rest!r}: use Operation or Answer")

    def grammar(self, ctx: TurnContext) -> str | None:
        """One explanation line, then a one-line SQL statement (backquoted names allowed,
        no ``;`` but a final one) or a final answer list of strings and numbers."""
        return "\n".join(
            [
                r'start: thought "\nAction: " act',
                "act: operation | answer",
                r'operation: "Operation\n```sql\n" SQL',
                r'answer: "Answer\nFinal Answer: " list',
                'list: "[" (item (", " item)*)? "]"',
                "item: STRING | NUMBER",
                f"thought[max_tokens={self.thought_tokens}]: THOUGHT",
                _THOUGHT,
                # the statement and the closing fence: one lexeme (lexemes are greedy)
                r"SQL: /[^\n;`]+(`[^\n;`]+`[^\n;`]*)*;?\n```/",
                r'STRING: /"([^"\\\n]|\\["\\n]){0,300}"/',
                r"NUMBER: /-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,10})?/",
            ]
        )

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        return message(
            "user",
            prompts.render(
                self.observation_template, output=result.observation, error=result.error
            ),
        )

    def action_span(self, completion: Completion) -> str:
        return from_last_marker(completion.text, "Action")


def answer_list(value: str) -> list[Any]:
    """The DB format's final answer ``value`` as a list (JSON or Python literal syntax).

    Raises:
        ParseError: not a list, or a list cut off.
    """
    if not value.startswith("["):
        raise ParseError('the final answer must be a list, such as ["Paris"] or [42]')
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            if value.count("[") > value.count("]"):
                raise ParseError("the final answer list is not closed with ] (cut off?)") from exc
            raise ParseError(
                'the final answer is not a list of literals, such as ["Paris"] or [42]'
            ) from exc
    if not isinstance(parsed, list):
        raise ParseError('the final answer must be one list, such as ["Paris"] or [42]')
    return parsed


def _statements(sql: str) -> int:
    """How many statements ``sql`` holds: semicolons outside quotes, a final one aside."""
    count, quote = 1, ""
    body = sql.rstrip().rstrip(";").rstrip()
    for ch in body:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            count += 1
    return count


__all__ = ["ReactDbFormat", "ReactOsFormat", "answer_list"]
