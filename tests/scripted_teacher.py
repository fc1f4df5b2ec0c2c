"""Scripted teacher answers for end-to-end tests: a router that answers each agent by the
role named in its system message, so concurrent calls cannot get the wrong answer.

It plays a perfect teacher: every answer has the shape its prompt asks for (read from the
prompt: the length bounds, the key kinds allowed, the goals of each suggestion), and the
responder answers from the keys the same teacher wrote, so verification passes unless a
test asks for wrong answers (``wrong``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genteach.models.base import Message

PASSAGE = (
    "The city of Lowmarsh claims that its new harbour tunnel cut commuting times by a third. "
    "The council points to traffic counts taken before and after the opening. Critics reply "
    "that a bus strike in the earlier year inflated the before figures, and that the tunnel "
    "toll pushed lorries onto the coast road, which the counts did not cover."
)
#: Further sentences a transformed passage is padded with to reach its length bounds.
FILLER = [
    "The tunnel opened in March after four years of construction under the estuary.",
    "Its two bores carry one lane each, with a service gallery between them.",
    "Season tickets for residents were introduced in the second month of operation.",
    "Local businesses on the old quay report fewer deliveries since the opening.",
    "A review by the regional transport board is due at the end of next year.",
    "Cyclists are not allowed in the tunnel and use a ferry that runs every half hour.",
]
ANSWER = "The critics' point about the bus strike undermines the comparison."
CHOICE = {
    "kind": "choice",
    "correct": ["A bus strike inflated the earlier traffic counts."],
    "distractors": [
        "The tunnel toll is lower than the ferry fare.",
        "Commuting times rose on the coast road.",
        "The council counted lorries on every road.",
    ],
    "explanation": "The strike makes the before figures unrepresentative.",
}
KEYS: dict[str, dict[str, Any]] = {
    "choice": CHOICE,
    "exact": {"kind": "exact", "value": "a third", "aliases": ["one third"]},
    "numeric": {"kind": "numeric", "value": 3, "unit": "", "tolerance": 0},
    # Its instruction names the entry point (``kind_tag``); the answer defines it.
    "program_tests": {
        "kind": "program_tests",
        "language": "python",
        "tests": "assert count_critics() == 2\n\ndef test_twice():\n    assert count_critics() == 2\n",
        "entry_point": "count_critics",
    },
    # Tests of count_critics: the answer repeats it and adds its own test_ functions.
    "test_suite": {
        "kind": "test_suite",
        "language": "python",
        "tests": "assert count_critics() == 2\n",
        "entry_point": "count_critics",
    },
    "estimate": {
        "kind": "estimate",
        "value": 240,
        "unit": "",
        "low": 80,
        "high": 800,
        "assumptions": ["buses on the coast road: 30", "trips a bus makes a day: 8"],
    },
    "list": {"kind": "list", "items": ["a bus strike", "the coast road"], "ordered": False},
    "ordering": {
        "kind": "ordering",
        "items": [
            "The bus strike cuts the earlier counts.",
            "The tunnel opens.",
            "The council publishes the counts.",
            "Critics question the figures.",
        ],
    },
    "matching": {
        "kind": "matching",
        "pairs": [
            {"left": "council", "right": "points to the counts"},
            {"left": "critics", "right": "cite the bus strike"},
            {"left": "lorries", "right": "use the coast road"},
        ],
    },
    "labels": {
        "kind": "labels",
        "label_set": ["True", "False"],
        "items": [
            {"statement": "The council relies on traffic counts.", "label": "True", "note": ""},
            {
                "statement": "The counts covered the coast road.",
                "label": "False",
                "note": "they did not",
            },
            {"statement": "Critics mention a bus strike.", "label": "True", "note": ""},
        ],
    },
    "free_text": {
        "kind": "free_text",
        "rubric": ["Mentions the bus strike.", "Mentions the coast road."],
        "reference": "",
    },
    "unanswerable": {"kind": "unanswerable", "missing": "the size of the time saving"},
    # Its instruction states these constraints (``kind_tag``); ``CONSTRAINED_ANSWER`` meets them.
    "constraints": {
        "kind": "constraints",
        "include": ["traffic counts"],
        "max_words": 120,
        "rubric": ["Keeps the critics' two objections."],
    },
}
#: The passage's words a cited key quotes (``instruct`` finds the document that holds them).
CITED_QUOTE = "a bus strike in the earlier year inflated the before figures"
KEYS["cited"] = {
    "kind": "cited",
    "answer": "a bus strike",
    "support": [{"id": "1", "quote": CITED_QUOTE}],
    "cite_all": False,
}
KEYS["fields"] = {
    "kind": "fields",
    "fields": [{"name": "critics", "value": "a bus strike", "copied": False}],
}
CONSTRAINED_ANSWER = (
    "The critics say the traffic counts overstate the saving: a bus strike inflated them."
)
TOOL_KEY = {
    "kind": "tool_outcome",
    "outcome": "final_answer",
    "required_apis": ["get_traffic_counts"],
    "reference": "get_traffic_counts(road='coast road', year=2023) -> FINAL_ANSWER: the count",
}


def _block(text: str, name: str) -> str:
    m = re.search(rf"<<<{name}\n(.*?)\n{name}>>>", text, re.S)
    return m.group(1) if m else ""


class Teacher:
    """Answers like a perfect teacher model, by agent role; counts calls per role.

    Args:
        bad_first: roles whose first answer is unusable (not JSON), to test repairs.
        tool_outcome: how the tool-use assistant ends its conversations.
        wrong: instructions (substrings) the responder answers wrongly, to test
            verification; ``"*"`` answers every closed task wrongly.
        rotate_kinds: write each task's key in the next of the kinds its type allows
            (default: always the first), so a run exercises every kind.
    """

    def __init__(
        self,
        *,
        bad_first: Sequence[str] = (),
        tool_outcome: str = "final_answer",
        wrong: Sequence[str] = (),
        rotate_kinds: bool = False,
    ) -> None:
        self.calls: Counter[str] = Counter()
        self.bad_first = set(bad_first)
        self.tool_outcome = tool_outcome
        self.wrong = list(wrong)
        self.rotate_kinds = rotate_kinds
        self.web = WebTeacher(wrong=bool(self.wrong))

    def __call__(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        low = system.lower()
        if "web designer" in low or "web agent" in low or "web-agent" in low:
            self.calls["web"] += 1
            return self.web(messages)
        role = self.role(system)
        self.calls[role] += 1
        if role in self.bad_first and self.calls[role] == 1:
            return "I am sorry, I cannot produce JSON today."
        answer: Callable[[Sequence[Message]], str] = getattr(self, role)
        return answer(messages)

    @staticmethod
    def role(system: str) -> str:
        for marker, role in (
            ("You play the user in a conversation", "user_simulator"),
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

    # -- content ---------------------------------------------------------------------
    def transform(self, messages: Sequence[Message]) -> str:
        m = re.search(r"between (\d+) and (\d+) words", messages[0]["content"])
        low, high = (int(m.group(1)), int(m.group(2))) if m else (0, 10_000)
        target = (low + high) // 2
        sentences = [PASSAGE]
        i = 0
        while len(" ".join(sentences).split()) < target:
            sentences.append(f"{FILLER[i % len(FILLER)]} (Note {i + 1}.)")
            i += 1
        return json.dumps({"title": "The Harbour Tunnel", "text": " ".join(sentences)})

    # Texts that make each task distinct (a subclass may make them depend on the request
    # instead of call counts).
    def task_instruction(self, label: str, i: int, messages: Sequence[Message]) -> str:
        return f"[{label} #{i}] What do the critics say about the traffic counts?"

    @staticmethod
    def kind_tag(kind: str) -> str:
        """How an instruction names its key kind, so the responder needs no memory (and,
        for a constraints key, the constraints it checks, which an instruction must state)."""
        if kind == "constraints":
            return ' <constraints> Use "traffic counts", stay under 120 words, avoid "tunnel".'
        if kind == "fields":
            return ' <fields> Reply with JSON with the key "critics".'
        if kind == "cited":
            return ' <cited> Answer as JSON: {"answer": ..., "relevant_passages": [...]}.'
        if kind == "program_tests":
            return " <program_tests> Write count_critics() in Python."
        if kind == "test_suite":
            return " <test_suite> Write tests of count_critics() in Python."
        return f" <{kind}>"

    def edit_instruction(self, i: int, messages: Sequence[Message]) -> str:
        return f"Refined version {i} of edit call {self.calls['edit']}: which option most weakens the claim?"

    def edit_marker(self, i: int, messages: Sequence[Message]) -> str:
        return f"(revised {self.calls['edit']}.{i})"

    def tool_request(self, i: int, messages: Sequence[Message]) -> str:
        return (
            f"How many lorries used the coast road in 2023? (request {self.calls['tool_task']}.{i})"
        )

    def instruct(self, messages: Sequence[Message]) -> str:
        system, user = messages[0]["content"], messages[1]["content"]
        kinds = re.findall(r"^- ([a-z_]+): ", system.split("Answer keys allowed")[1], re.M)
        name = re.search(r'of the type "([^"]+)"', user)
        label = name.group(1) if name else "task"
        turn = self.calls[f"instruct {label}"]
        self.calls[f"instruct {label}"] += 1
        kind = kinds[turn % len(kinds)] if self.rotate_kinds else kinds[0]
        n = int(re.search(r"Write (\d+) task", user).group(1))  # type: ignore[union-attr]
        passage = _block(user, "PASSAGE")
        excerpt = '"start": "<' in system
        tasks = []
        for i in range(1, n + 1):
            instruction = self.task_instruction(label, i, messages) + self.kind_tag(kind)
            task: dict[str, Any] = {"instruction": instruction, "key": dict(KEYS[kind])}
            if kind == "cited":  # quote a document; the instruction carries the quote
                doc, quote = cited_quote(user)
                task["key"]["support"] = [{"id": doc, "quote": quote}]
                task["key"]["answer"] = "a bus strike" if quote == CITED_QUOTE else quote
                task["instruction"] += f" «{quote}»"
            if excerpt:  # the first 60 words, named by their first and last eight
                words = passage.split()[:60]
                task["start"], task["end"] = " ".join(words[:8]), " ".join(words[-8:])
            tasks.append(task)
        return json.dumps({"tasks": tasks})

    def suggest(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        goals = re.findall(r"^\d+\. ", system.split("The goals, one suggestion each")[1], re.M)
        return json.dumps(
            {
                "suggestions": [
                    f"Change number {i + 1}: add a distractor about the lorries on the coast road."
                    for i in range(len(goals))
                ]
            }
        )

    def edit(self, messages: Sequence[Message]) -> str:
        user = messages[1]["content"]
        key_text = _block(user, "ANSWER_KEY") or _block(user, "KEY")
        old = json.loads(key_text) if key_text else {}
        lines = re.findall(r"^(\d+)\. \[([^\]]*)\]", user, re.M)
        edits = []
        for number, tags in lines:
            i = int(number)
            marker = self.edit_marker(i, messages)
            edit: dict[str, Any] = {
                "suggestion": i,
                "edits": None,
                "instruction": None,
                "key": None,
                "missing": None,
            }
            if "tool_outcome" in old.get("kind", ""):
                edit["instruction"] = (
                    f"{self.edit_instruction(i, messages)} How many lorries used the coast road?"
                )
                edit["key"] = dict(TOOL_KEY)
                edit["withheld_apis"] = []
            elif "edits the passage" in tags:
                find = unique_phrase(_block(user, "PASSAGE"))
                if "unanswerable" in tags:
                    edit["edits"] = [{"find": find, "replace": f"something {marker} [gone]"}]
                    edit["missing"] = "the size of the time saving"
                else:
                    edit["edits"] = [{"find": find, "replace": f"another thing {marker} [flip]"}]
                    edit["key"] = flipped(old)
            else:
                kind = old.get("kind", "free_text")
                edit["instruction"] = self.edit_instruction(i, messages) + self.kind_tag(kind)
                quoted = re.search(r" «.+?»", user)  # a cited task keeps the words it quotes
                if quoted:
                    edit["instruction"] += quoted.group(0)
                if "the answer must change" in tags:
                    # a changed task with another answer: the responder reads "[flip]"
                    edit["instruction"] += " [flip]"
                    edit["key"] = flipped(old)
                elif kind == "unanswerable":
                    edit["key"] = None  # the task stays unanswerable (its key is code's)
                else:
                    edit["key"] = harder(old)
            edits.append(edit)
        return json.dumps({"edits": edits})

    def respond(self, messages: Sequence[Message]) -> str:
        follow_up = re.search(r"follow-up (\d+)\)", messages[-1]["content"])
        if follow_up is not None:  # a later turn of a conversation (``user_simulator``)
            return self.follow_up_reply(int(follow_up.group(1)))
        # the student's message (a repair request may follow it)
        user = next(m["content"] for m in messages if m["role"] == "user")
        key = self.key_for(user)
        if key is None:
            return ANSWER
        wrong = any(w == "*" or w in user for w in self.wrong)
        return f"Let me work through it.\n\n{self.final(key, user, wrong)}"

    @staticmethod
    def key_for(user: str) -> dict[str, Any] | None:
        """The key of the task in a student message, worked out from the message alone:
        the kind its instruction names, and the marks its passage edits left."""
        m = re.search(r" <([a-z_]+)>", user)
        if m is None or m.group(1) not in KEYS:
            return None
        if "[gone]" in user:
            return KEYS["unanswerable"]
        key = dict(KEYS[m.group(1)])
        return flipped(key) if "[flip]" in user else key

    @staticmethod
    def final(key: dict[str, Any], user: str, wrong: bool) -> str:
        kind = key["kind"]
        labelled = dict(
            (text.strip(), label)
            for label, text in re.findall(r"^(\(?[A-Za-z0-9]{1,2}[).]\)?) (.+)$", user, re.M)
        )
        if kind == "choice":
            pick = key["distractors"][0] if wrong else key["correct"][0]
            return f"Final answer: {labelled[pick]}"
        if kind == "exact":
            return f"Final answer: {'two thirds' if wrong else key['value']}"
        if kind == "numeric":
            return f"Final answer: {key['value'] + (1 if wrong else 0)}"
        if kind == "program_tests":  # a solution the key's tests run against in the sandbox
            n = int(re.findall(r"== (\d+)", key["tests"])[0]) + (1 if wrong else 0)
            return f"```python\ndef count_critics():\n    return {n}\n```"
        if kind == "test_suite":  # the function repeated, and a test that pins its result
            n = int(re.findall(r"== (\d+)", key["tests"])[0])
            check = "count_critics() >= 0" if wrong else f"count_critics() == {n}"
            return (
                f"```python\ndef count_critics():\n    return {n}\n\n\n"
                f"def test_count():\n    assert {check}\n```"
            )
        if kind == "estimate":  # two steps the calculator checks, then the estimate
            v = key["value"]
            steps = f"{v / 4:g} × 2 = {v / 2:g}\n{v / 2:g} × 2 = {v:g}\n"
            return steps + f"Final answer: about {v * 100 if wrong else v:g}"
        if kind == "list":
            items = key["items"][:-1] if wrong else key["items"]
            return "Final answer: " + "; ".join(items)
        if kind == "ordering":
            seq = [labelled[t].strip("().") for t in key["items"]]
            return "Final answer: " + ", ".join(reversed(seq) if wrong else seq)
        if kind == "matching":
            rights = [labelled[p["right"]].strip("().") for p in key["pairs"]]
            if wrong:
                rights = rights[1:] + rights[:1]
            return "Final answer: " + ", ".join(f"{i + 1}-{r}" for i, r in enumerate(rights))
        if kind == "labels":
            labels = [it["label"] for it in key["items"]]
            if wrong:
                labels = ["False" if x == "True" else "True" for x in labels]
            return "Final answer: " + "; ".join(f"{i + 1} {x}" for i, x in enumerate(labels))
        if kind == "constraints":
            return "A tunnel." if wrong else CONSTRAINED_ANSWER
        if kind == "fields":
            return json.dumps(
                {f["name"]: "the toll" if wrong else f["value"] for f in key["fields"]}
            )
        if kind == "cited":  # the document that holds the quote, if the student sees it
            quoted = re.search(r"«(.+?)»", user)
            doc = document_with(user, quoted.group(1)) if quoted else None
            if doc is None:
                reply = {"answer": "The documents do not say what the critics argue.", "ids": []}
            else:
                cite = str(int(doc) % 9 + 1) if wrong else doc
                reply = {"answer": quoted.group(1) if quoted else "", "ids": [cite]}
            return json.dumps({"answer": reply["answer"], "relevant_passages": reply["ids"]})
        if kind == "unanswerable":
            return (
                "Final answer: (A)"
                if wrong
                else "Final answer: cannot be determined from the passage"
            )
        return ANSWER

    # -- conversations ---------------------------------------------------------------
    def user_simulator(self, messages: Sequence[Message]) -> str:
        """The next user message: one per move, numbered, with a word limit and a required
        phrase when the move sets a limit (``follow_up_reply`` meets both)."""
        user = messages[1]["content"]
        n = int(re.search(r"Write user message (\d+) of", user).group(1))  # type: ignore[union-attr]
        move = re.search(r"The move to make: ([^.]+)\.", user).group(1)  # type: ignore[union-attr]
        if "This move sets a limit" in user:
            limit = 20 + 5 * n
            return json.dumps(
                {
                    "message": f'Now {limit} words at most, with "traffic counts" '
                    f"({move.lower()}, follow-up {n}).",
                    "constraints": {"max_words": limit, "include": ["traffic counts"]},
                }
            )
        return json.dumps(
            {"message": f"Tell me more: {move.lower()} (follow-up {n}).", "constraints": None}
        )

    @staticmethod
    def follow_up_reply(n: int) -> str:
        """A reply to follow-up ``n``: short, distinct per turn, with "traffic counts"."""
        return (
            f"On your point {n}: the traffic counts missed the coast road, and the bus strike "
            "inflated the earlier figures."
        )

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
                    {
                        "name": "get_journey_time",
                        "description": "Average journey time on a road for a month.",
                        "parameters": [
                            {
                                "name": "road",
                                "type": "string",
                                "description": "road name",
                                "required": True,
                            },
                            {
                                "name": "month",
                                "type": "string",
                                "description": "YYYY-MM",
                                "required": True,
                            },
                        ],
                        "returns": "minutes",
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
                        "instruction": self.tool_request(i, messages),
                        "key": dict(TOOL_KEY),
                        "withheld_apis": [],
                    }
                    for i in range(1, n + 1)
                ]
            }
        )

    def assistant(self, messages: Sequence[Message]) -> str:
        if "API_RESULT" in messages[-1]["content"]:
            if self.tool_outcome == "failed":
                return 'The data is not there.\nACTION_TYPE : STOP\nACTION: FAILED("no data")'
            return 'The counts are in.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("412 lorries")'
        return (
            "I need the 2023 counts for the coast road.\n"
            'ACTION_TYPE : API_CALL\nACTION: get_traffic_counts(road="coast road", year=2023)'
        )

    def simulate(self, messages: Sequence[Message]) -> str:
        return json.dumps({"status": "ok", "result": {"lorries": 412, "cars": 10230}, "error": ""})


WEB_SITE = (Path(__file__).resolve().parent / "data" / "web_site.json").read_text()
EMAIL = "dana.kerr@example.org"
#: Per task type (by its name): the user's request, the goal, and the teacher's actions.
WEB_TASKS: dict[str, tuple[str, dict[str, object], list[str]]] = {
    "Form Filling": (
        f"Please place my order: my email is {EMAIL}, my postcode is PL1 2AB and I was born on "
        "04/11/1987. Express (next day) delivery, please.",
        {
            "start": "/checkout",
            "outcome": "submitted",
            "values": {
                "e17": EMAIL,
                "e18": "PL1 2AB",
                "e19": "04/11/1987",
                "e20": "Express (next day)",
            },
            "submit": "e23",
        },
        [
            f'type [e17] "{EMAIL}"',
            'type [e18] "PL1 2AB"',
            'type [e19] "04/11/1987"',
            'select [e20] "Express (next day)"',
            "click [e23]",
            'stop "The order is placed."',
        ],
    ),
    "Question About the Page": (
        "How long do I have to send a sensor back?",
        {"start": "/", "outcome": "answered", "answer": "30 days", "evidence": "e5"},
        ['answer "Returns are accepted within 30 days of delivery."'],
    ),
    "Multi-page Navigation": (
        "Take me to the page where I enter my delivery details after choosing a sensor.",
        {"start": "/", "outcome": "reached", "page": "/checkout"},
        ["click [e2]", "click [e14]", 'stop "This is the checkout page."'],
    ),
    "Search and Select": (
        "I want the best-rated sensor you actually have in stock, 2 of them please.",
        {
            "start": "/",
            "outcome": "submitted",
            "values": {"e11": "2", "e12": "Tidewatch S2"},
            "submit": "e14",
        },
        [
            "click [e2]",
            'type [e11] "2"',
            'select [e12] "Tidewatch S2"',
            "click [e14]",
            'stop "Two Tidewatch S2 are in the cart."',
        ],
    ),
    "Settings Change": (
        "Stop emailing me about new sensors, text me delivery updates instead, and save it as "
        "a draft.",
        {
            "start": "/checkout",
            "outcome": "submitted",
            "values": {"e21": "unchecked", "e22": "checked"},
            "submit": "e24",
        },
        ["click [e21]", "click [e22]", "click [e24]", 'stop "Saved."'],
    ),
    "Infeasible Request": (
        f"Place my order with Express (next day) delivery; my email is {EMAIL} and my postcode "
        "is PL1 2AB.",
        {
            "start": "/checkout",
            "outcome": "infeasible",
            "missing": "Date of birth",
            "submit": "e23",
        },
        ['stop "The form needs your date of birth, which you did not give."'],
    ),
    "Quick Action": (
        "Show me your tide sensors.",
        {"start": "/", "outcome": "reached", "page": "/sensors"},
        ["click [e2]", 'stop "Here are the sensors."'],
    ),
    "Compare and Answer": (
        "Which sensor that is in stock has the best rating?",
        {"start": "/", "outcome": "answered", "answer": "Tidewatch S2", "evidence": "e9"},
        ["click [e2]", 'answer "Tidewatch S2 (4.7 / 5)"'],
    ),
}


class WebTeacher:
    """A perfect web teacher by agent role (``wrong``: the acting teacher clicks the
    checkout's "Save draft" instead of finishing its task, which no goal accepts)."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.wrong = wrong

    def __call__(self, messages: Sequence[Message]) -> str:
        system = messages[0]["content"]
        user = messages[1]["content"] if len(messages) > 1 else ""
        if "You are a web designer" in system:
            self.calls["site"] += 1
            return WEB_SITE
        if "task-writing agent" in system:
            self.calls["instruct"] += 1
            name = re.search(r'of the type "([^"]+)"', user).group(1)  # type: ignore[union-attr]
            n = int(re.search(r"Write (\d+) task", user).group(1))  # type: ignore[union-attr]
            request, goal, _ = WEB_TASKS[name]
            task = {"instruction": request, "key": {"kind": "web_goal", **goal}}
            return json.dumps({"tasks": [task] * n})
        if "You are the suggester" in system:
            self.calls["suggest"] += 1
            goals = system.split("The goals, one suggestion each")[1]
            n = len(re.findall(r"^\d+\. ", goals, re.M))
            return json.dumps(
                {"suggestions": [f"Add a polite closing sentence ({i})." for i in range(n)]}
            )
        if "You are the editor" in system:
            self.calls["edit"] += 1
            request = user.split("<<<REQUEST\n")[1].split("\nREQUEST>>>")[0]
            n = len(re.findall(r"^(\d+)\. \[", user, re.M))
            edits = [
                {
                    "suggestion": i,
                    "edits": None,
                    "instruction": f"{request} Thanks a lot ({i}).",
                    "key": None,
                    "missing": None,
                }
                for i in range(1, n + 1)
            ]
            return json.dumps({"edits": edits})
        if "expert web agent" in system:
            self.calls["act"] += 1
            first = next(m["content"] for m in messages if m["role"] == "user")
            done = sum(1 for m in messages if m["role"] == "assistant")
            for request, _, actions in WEB_TASKS.values():
                if request in first:
                    if self.wrong:
                        actions = ['stop "I could not find it."']
                    action = actions[min(done, len(actions) - 1)]
                    return f"Thought: step {done + 1} of the plan.\nAction: {action}"
            raise AssertionError("unknown task: " + first[:200])
        raise AssertionError("unknown agent: " + system[:200])


def document_with(text: str, phrase: str) -> str | None:
    """The id of the document of a rendered document set whose snippet holds ``phrase``."""
    for doc_id, snippet in re.findall(
        r"^Document Id: (\S+)\nTitle: .*\nSnippet: (.*)$", text, re.M
    ):
        if phrase in snippet:
            return str(doc_id)
    return None


def cited_quote(text: str) -> tuple[str, str]:
    """A document of a rendered set and words of it to quote: :data:`CITED_QUOTE` where a
    document holds it, else the first eight words of the first document."""
    doc = document_with(text, CITED_QUOTE)
    if doc is not None:
        return doc, CITED_QUOTE
    m = re.search(r"^Document Id: (\S+)\nTitle: .*\nSnippet: (.*)$", text, re.M)
    if m is None:
        return "1", CITED_QUOTE
    words = [w for w in m.group(2).split() if w.strip("#*")]
    return m.group(1), " ".join(words[2:10])


def unique_phrase(passage: str, n: int = 6) -> str:
    """The first run of ``n`` words that occurs exactly once in ``passage``."""
    words = passage.split()
    for i in range(len(words) - n + 1):
        phrase = " ".join(words[i : i + n])
        if passage.count(phrase) == 1:
            return phrase
    raise AssertionError("no unique phrase in the passage")


def flipped(key: dict[str, Any]) -> dict[str, Any]:
    """The same key kind with another answer (for answer_flip)."""
    kind = key.get("kind")
    if kind == "choice":
        return {
            **key,
            "correct": key["distractors"][:1],
            "distractors": [*key["correct"], *key["distractors"][1:]],
        }
    if kind == "exact":
        return {**key, "value": "a quarter", "aliases": []}
    if kind == "numeric":
        return {**key, "value": key["value"] + 2}
    if kind in ("program_tests", "test_suite"):
        return {**key, "tests": key["tests"].replace("== 2", "== 3")}
    if kind == "estimate":
        return {**key, "value": key["value"] * 10, "low": key["low"] * 10, "high": key["high"] * 10}
    if kind == "list":
        return {**key, "items": [*key["items"], "the ferry"]}
    if kind == "ordering":
        items = list(key["items"])
        items[0], items[1] = items[1], items[0]
        return {**key, "items": items}
    if kind == "matching":
        pairs = key["pairs"]
        rights = [p["right"] for p in pairs]
        rights = rights[1:] + rights[:1]
        return {
            **key,
            "pairs": [{"left": p["left"], "right": r} for p, r in zip(pairs, rights, strict=True)],
        }
    if kind == "free_text":
        return {**key, "rubric": ["States the opposite conclusion."]}
    if kind == "fields":
        return {**key, "fields": [{**f, "value": "the coast road"} for f in key["fields"]]}
    if kind == "labels":
        items = [dict(it) for it in key["items"]]
        items[0]["label"] = "False" if items[0]["label"] == "True" else "True"
        return {**key, "items": items}
    return dict(key)


def harder(key: dict[str, Any]) -> dict[str, Any]:
    """The same key with a changed option set or constraint (for complexify)."""
    if key.get("kind") == "choice":
        return {
            **key,
            "distractors": [*key["distractors"][:2], "The tunnel shortened the coast road."],
        }
    if key.get("kind") == "free_text":
        return {**key, "rubric": [*key["rubric"], "Stays under 120 words."]}
    if key.get("kind") == "constraints":
        return {**key, "exclude": ["tunnel"]}
    return dict(key)
