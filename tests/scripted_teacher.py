"""Scripted teacher answers for end-to-end tests: a router that answers each agent by
the role named in its system message, so concurrent calls cannot get the wrong answer."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

from genteach.models.base import Message

PASSAGE = (
    "The city of Lowmarsh claims that its new harbour tunnel cut commuting times by a third. "
    "The council points to traffic counts taken before and after the opening. Critics reply "
    "that a bus strike in the earlier year inflated the before figures, and that the tunnel "
    "toll pushed lorries onto the coast road, which the counts did not cover."
)
ANSWER = "The answer is (B): the critics' point about the bus strike undermines the comparison."


class Teacher:
    """Answers like a perfect teacher model, by agent role; counts calls per role."""

    def __init__(
        self, *, bad_first: Sequence[str] = (), tool_outcome: str = "final_answer"
    ) -> None:
        self.calls: Counter[str] = Counter()
        self.bad_first = set(bad_first)
        self.tool_outcome = tool_outcome

    def __call__(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        role = self.role(system)
        self.calls[role] += 1
        if role in self.bad_first and self.calls[role] == 1:
            return "I am sorry, I cannot produce JSON today."
        return getattr(self, role)(messages)

    @staticmethod
    def role(system: str) -> str:
        for marker, role in (
            ("content transformation agent", "transform"),
            ("You are an API designer", "api_list"),
            ("write user requests of exactly one family", "tool_task"),
            ("task-writing agent", "instruct"),
            ("You are the suggester", "suggest"),
            ("You are the editor", "edit"),
            ("You simulate an API", "simulate"),
            ("acting in a tool-use conversation", "assistant"),
            ("expert teacher", "respond"),
        ):
            if marker in system:
                return role
        raise AssertionError(f"unknown agent: {system[:200]}")

    def transform(self, messages: Sequence[Message]) -> str:
        return json.dumps({"title": "The Harbour Tunnel", "text": PASSAGE})

    def instruct(self, messages: Sequence[Message]) -> str:
        name = re.search(
            r'of the type "([^"]+)"',
            messages[-1]["content"] if messages[-1]["role"] == "user" else messages[1]["content"],
        )
        kind = name.group(1) if name else "task"
        user = messages[1]["content"]
        n = int(re.search(r"Write (\d+) task", user).group(1))  # type: ignore[union-attr]
        excerpt = PASSAGE.split(". ")[0] + "."
        return json.dumps(
            {
                "tasks": [
                    {
                        "instruction": f"[{kind} #{i}] What do the critics say about the traffic counts?",
                        "answer": "(B)",
                        "text": excerpt if "text_modification" in user or "Text" in kind else None,
                    }
                    for i in range(1, n + 1)
                ]
            }
        )

    def suggest(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        goals = re.findall(r"^- ([a-z_]+) \(", system, re.M)
        n = int(re.search(r"Propose (\d+) suggestion", messages[1]["content"]).group(1))  # type: ignore[union-attr]
        return json.dumps(
            {
                "suggestions": [
                    {
                        "goal": goals[i % len(goals)],
                        "suggestion": f"Change number {i + 1}: add a distractor about lorries.",
                    }
                    for i in range(n)
                ]
            }
        )

    def edit(self, messages: Sequence[Message]) -> str:
        n = len(re.findall(r"^\d+\. \[", messages[1]["content"], re.M))
        return json.dumps(
            {
                "edits": [
                    {
                        "suggestion": i,
                        "text": None if i % 2 else PASSAGE.replace("a third", "a half"),
                        "instruction": f"Refined version {i} of edit call {self.calls['edit']}: which option most weakens the claim?",
                        "answer": "(C)",
                    }
                    for i in range(1, n + 1)
                ]
            }
        )

    def respond(self, messages: Sequence[Message]) -> str:
        return ANSWER

    # -- tool use --------------------------------------------------------------------
    def api_list(self, messages: Sequence[Message]) -> str:
        return json.dumps(
            {
                "library": "harbour_api",
                "description": "Traffic data for the Lowmarsh harbour tunnel.",
                "apis": [
                    {
                        "name": "get_traffic_counts",
                        "description": "Vehicle counts for a road and year.",
                        "parameters": [
                            {
                                "name": "road",
                                "type": "string",
                                "description": "road name",
                                "required": True,
                            },
                            {
                                "name": "year",
                                "type": "integer",
                                "description": "year",
                                "required": True,
                            },
                        ],
                        "returns": "counts per vehicle class",
                    },
                    {
                        "name": "get_toll_price",
                        "description": "The tunnel toll for a vehicle class.",
                        "parameters": [
                            {
                                "name": "vehicle_class",
                                "type": "string",
                                "description": "car/lorry",
                                "required": True,
                            }
                        ],
                        "returns": "price in pounds",
                    },
                    {
                        "name": "list_roads",
                        "description": "All roads with counters.",
                        "parameters": [],
                        "returns": "names",
                    },
                ],
            }
        )

    def tool_task(self, messages: Sequence[Message]) -> str:
        n = int(re.search(r"Write (\d+)", messages[1]["content"]).group(1))  # type: ignore[union-attr]
        return json.dumps(
            {
                "tasks": [
                    {
                        "request": f"How many lorries used the coast road in 2023? (request {self.calls['tool_task']}.{i})",
                        "required_apis": ["get_traffic_counts"],
                        "withheld_apis": [],
                        "expected_outcome": "final_answer",
                        "answer": "Call get_traffic_counts(road='coast road', year=2023).",
                    }
                    for i in range(1, n + 1)
                ]
            }
        )

    def assistant(self, messages: Sequence[Message]) -> str:
        if (
            messages[-1]["content"].startswith("API_RESULT")
            or "API_RESULT" in messages[-1]["content"]
        ):
            if self.tool_outcome == "failed":
                return 'The data is not there.\nACTION_TYPE : STOP\nACTION: FAILED("no data")'
            return 'The counts are in.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("412 lorries")'
        return (
            "I need the 2023 counts for the coast road.\n"
            'ACTION_TYPE : API_CALL\nACTION: get_traffic_counts(road="coast road", year=2023)'
        )

    def simulate(self, messages: Sequence[Message]) -> str:
        return json.dumps({"status": "ok", "result": {"lorries": 412, "cars": 10230}, "error": ""})
