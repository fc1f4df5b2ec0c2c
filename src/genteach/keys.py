"""Typed answer keys: what a task's correct answer is, and how a response is checked.

An instruction agent writes each task's key as structured JSON of one *kind* (the task
type names the kinds it allows in the taxonomy). A key holds what is correct and nothing
about how it is shown: the order of multiple-choice options and the labels the student
sees are drawn in code (:class:`Layout`), so options can be shuffled, the position of
the correct one balanced over a run, and a response scored later.

``key.check(response, layout)`` reads the response's ``Final answer:`` line and compares
it with the key (pure, no model). Kinds that code cannot settle (free text, program tests
before the sandbox exists) return ``status="unchecked"``; a judge can be plugged in for
them (:mod:`genteach.verify`).

Add a kind by subclassing :class:`AnswerKey` with a ``kind: Literal["..."]`` field and
passing it to the pipeline (``Pipeline(keys=[MyKey])``): see docs/adding-a-skill.md.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

if TYPE_CHECKING:
    from genteach.runtime.sandbox import Sandbox

Status = Literal["passed", "failed", "unchecked"]

#: Label styles of options and items, drawn per task (the taxonomy lists which ones).
LABEL_STYLES: dict[str, tuple[str, str]] = {
    # name: (alphabet, pattern with {} for the symbol)
    "upper_paren": (string.ascii_uppercase, "({})"),
    "lower_paren": (string.ascii_lowercase, "({})"),
    "upper_dot": (string.ascii_uppercase, "{}."),
    "upper_bracket": (string.ascii_uppercase, "{})"),
    "number_dot": ("123456789", "{}."),
    "number_paren": ("123456789", "({})"),
}

#: A final answer that says the material does not settle the question.
_UNSETTLED = re.compile(
    r"(can ?not|can't|unable to) be (determined|answered|known|settled|inferred)"
    r"|not (stated|given|mentioned|specified|provided|answerable|determinable)"
    r"|(not enough|insufficient|no) information|do(es)?(n't| not) (say|state|specify|mention|settle"
    r"|provide|give|indicate|contain)|unanswerable|impossible to (tell|determine|say|know)"
    r"|\b(is|are|was|were|remains?) (still |currently )?unknown\b|not (yet )?known\b"
    r"|no one knows|nobody knows",
    re.IGNORECASE,
)
_FINAL = re.compile(r"^[ \t>*_#-]*final answer[ \t*_]*[:：][ \t*_]*(?P<rest>.*)$", re.I | re.M)
#: An instruction that asks for several options ("select all that apply", "which two").
_SEVERAL = re.compile(
    r"\b(?:which|select|choose|pick|name|identify|mark)\s+(?:the\s+)?(?:two|three|four|all)\b|"
    r"\b(?:options|statements|answers|choices|ones)\s+(?:are|were)\b|"
    r"\ball (?:that|which) (?:apply|are)\b|\b(?:two|three|both|several|every|each|all)\b"
    r"[^.?!]*\b(?:options?|answers?|statements?|choices?|ones?)\b|\bmore than one\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[-−]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-−]?\.\d+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
#: An option label at the start of an answer: ``(B)``, ``B.``, ``b)``, ``[2]``.
_OPTION_LABEL = re.compile(r"^\s*[(\[]?\s*([A-Za-z]|\d{1,2})\s*[)\].:]?(?=\s|$)")


class Verification(BaseModel):
    """The outcome of checking one response against its key (stored in record metadata).

    ``status``: passed, failed (the response contradicts its key) or unchecked (no check
    by code is possible for this kind, and no judge ran); ``answer``: what the response's
    final answer said, as read; ``detail``: what was compared, in words.
    """

    kind: str
    status: Status
    detail: str = ""
    answer: str | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.status == "unchecked" else self.status == "passed"


class Layout(BaseModel):
    """How a task's key is shown to the student, drawn in code per task.

    ``order``: the display order of a key's options or items (indices into the key's own
    order); ``labels``: the label style (:data:`LABEL_STYLES`).
    """

    order: list[int] = Field(default_factory=list)
    labels: str = "upper_paren"

    def label(self, i: int) -> str:
        """The label of the i-th displayed option (0-based), e.g. ``(B)``."""
        alphabet, pattern = LABEL_STYLES[self.labels]
        return pattern.format(alphabet[i])

    def symbol(self, i: int) -> str:
        """The bare symbol of the i-th label (``B`` for ``(B)``)."""
        return LABEL_STYLES[self.labels][0][i]


# -- helpers ------------------------------------------------------------------------------
def final_answer(response: str) -> str | None:
    """The text after the last ``Final answer:`` line of ``response`` (with the lines that
    follow it, for lists), stripped; None when there is none."""
    matches = list(_FINAL.finditer(response))
    if not matches:
        return None
    m = matches[-1]
    rest = m.group("rest").strip()
    tail = response[m.end() :].strip()
    text = f"{rest}\n{tail}".strip() if tail else rest
    return text.strip("*_` \n") or None


def says_unsettled(text: str) -> bool:
    """Whether ``text`` says the material does not settle the question."""
    return bool(_UNSETTLED.search(text))


def normalize(text: str) -> str:
    """Normalised text for exact comparison: NFKC, case-folded, punctuation and the
    articles a/an/the removed, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in t)
    t = _ARTICLES.sub(" ", t)
    return " ".join(t.split())


#: Function words a ban taken from the text may not hold (no answer can avoid them).
_COMMON = frozenset(
    {"a", "an", "the", "and", "or", "but", "if", "of", "in", "on", "at", "to", "for", "by"}
    | {"with", "from", "as", "is", "are", "was", "were", "be", "been", "it", "its", "this"}
    | {"that", "these", "those", "he", "she", "they", "we", "you", "i", "not", "no", "so"}
    | {"than", "then", "there", "their", "his", "her"}
)

#: Words that turn a longer answer against the target it contains ("not urgent", "T3 or
#: T4", "isn't 1998": normalised, n't leaves a lone "t").
_NEGATIONS = frozenset({"not", "no", "never", "nor", "neither", "or", "without", "except", "t"})


def _matches(answer: str, target: str, slack: int = 4) -> bool:
    """Normalised equality, or the target's words appearing as one run in an answer at
    most ``slack`` words longer ("in 1998" matches "1998"), unless a word around the run
    negates it or offers an alternative ("not urgent", "T3 or T4")."""
    a, t = normalize(answer), normalize(target)
    if not t:
        return False
    if a == t:
        return True
    aw, tw = a.split(), t.split()
    if len(aw) > len(tw) + slack:
        return False
    for i in range(len(aw) - len(tw) + 1):
        if aw[i : i + len(tw)] == tw:
            around = set(aw[:i] + aw[i + len(tw) :]) - set(tw)
            return not around & _NEGATIONS
    return False


def parse_number(text: str) -> float | None:
    """The first number in ``text`` (thousands separators and a trailing % allowed)."""
    m = _NUMBER.search(text.replace("−", "-"))
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", "").replace("−", "-"))
    except ValueError:
        return None


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _label_tokens(text: str, layout: Layout, count: int) -> list[int] | None:
    """Read a sequence of labels of ``layout``'s style (e.g. ``C, A, (D) -> B``) as display
    positions; None if a token is not a label of this task."""
    alphabet = LABEL_STYLES[layout.labels][0][:count]
    cleaned = re.sub(r"->|→|=>|>|,|;|\band\b|\bthen\b", " ", text)
    positions: list[int] = []
    for token in cleaned.split():
        sym = token.strip("().[]:*`'\"")
        if not sym:
            continue
        hit = next((i for i, a in enumerate(alphabet) if a.casefold() == sym.casefold()), None)
        if hit is None:
            return None
        positions.append(hit)
    return positions or None


#: Parts of a key's view that give the answer away.
_SECRETS = frozenset({"answer", "explanation", "correct"})


def public_view(view: dict[str, Any]) -> dict[str, Any]:
    """A key's view (:meth:`AnswerKey.view`) without what gives the answer away: what an
    answerer may be told about the question's form and labels."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in _SECRETS}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return clean(view)


def code_set_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that code sets and a model never writes: those hidden from
    its JSON schema with ``SkipJsonSchema``."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        # SkipJsonSchema is a class at run time, an Annotated alias to type checkers
        if any(isinstance(m, SkipJsonSchema) for m in info.metadata)  # type: ignore[misc]
    )


# -- the base ------------------------------------------------------------------------------
def _kind_required(schema: dict[str, Any]) -> None:
    """JSON-schema hook of answer keys: ``kind`` is required (see :class:`AnswerKey`)."""
    required = schema.setdefault("required", [])
    if "kind" in schema.get("properties", {}) and "kind" not in required:
        required.insert(0, "kind")


class AnswerKey(BaseModel):
    """Base of every key kind. Subclasses add their fields and a ``kind`` literal.

    Class attributes:
        form: how the question is shown and answered (the responder's answer format and
            the student's question template): ``choice``, ``items`` (ordering),
            ``matching``, ``labels``, ``short`` (one final answer) or ``open`` (no final
            line).
        checkable: whether code can settle a response (False: needs a judge).
    """

    # ``kind`` has a default (code builds keys without naming it) but a model must write
    # it: required in the JSON schema, so constrained decoding never leaves it out.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_kind_required)

    kind: str
    form: ClassVar[str] = "short"
    checkable: ClassVar[bool] = True

    def layout(self, rng: random.Random, label_styles: Sequence[str]) -> Layout:
        """Draw how this key is shown (option order, label style). Default: no options."""
        return Layout(labels=rng.choice(list(label_styles)) if label_styles else "upper_paren")

    def view(self, layout: Layout) -> dict[str, Any]:
        """What templates need to show the question and the key: ``form``, the labelled
        options or items in display order, and the correct answer as shown."""
        return {"form": self.form, "kind": self.kind}

    async def verify(self, response: str, layout: Layout, tools: KeyTools) -> Verification:
        """Verify ``response``: :meth:`check` by default. Keys whose check needs more than
        pure code (running tests in a sandbox) override this; ``tools`` gives them what they
        need. The flows call this."""
        return self.check(response, layout)

    def check(self, response: str, layout: Layout) -> Verification:
        """Compare ``response`` with this key: its ``Final answer:`` line, read by
        :meth:`compare` (a response without one fails). Pure."""
        answer = final_answer(response)
        if answer is None:
            return self.result("failed", None, "no 'Final answer:' line")
        return self.compare(answer, layout)

    def compare(self, answer: str, layout: Layout) -> Verification:
        """Compare a final answer (the text after ``Final answer:``) with this key."""
        raise NotImplementedError

    def result(self, status: Status, answer: str | None, detail: str) -> Verification:
        """A verification of this key's kind."""
        return Verification(kind=self.kind, status=status, answer=answer, detail=detail)

    def summary(self, layout: Layout) -> str:
        """The key in a few words, for reject reasons and logs."""
        return self.kind

    def written(self) -> dict[str, Any]:
        """The key as a model writes it: its JSON without the fields code sets (those
        hidden from the JSON schema, such as an unanswerable key's ``shown``)."""
        return self.model_dump(exclude=set(code_set_fields(type(self))))

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        """Check this key against the task it keys, when the task is written or edited:
        its ``instruction`` and the ``source`` text it works on (None when unknown).
        Return what is wrong, in words the writer can act on, or None. A key may keep
        what it needs of them for :meth:`check`. Default: nothing to check."""
        return None

    def fit_material(self, material: object) -> str | None:
        """Check this key against the material its task works on (a document set, a web
        site), when the task is written or edited. Return what is wrong, in words the
        writer can act on, or None. A key may keep what it needs of the material for
        :meth:`check`. Default: nothing to check."""
        return None

    #: Fields that explain an answer without being part of it (ignored by :meth:`same_answer`).
    _notes: ClassVar[frozenset[str]] = frozenset({"explanation", "note", "reference"})

    def same_answer(self, other: AnswerKey) -> bool:
        """Whether ``other`` keys the same answer (a flipped answer must not): same kind
        and the same answer fields, compared after normalisation."""

        def norm(v: Any) -> Any:
            if isinstance(v, str):
                return normalize(v)
            if isinstance(v, list):
                return [norm(x) for x in v]
            if isinstance(v, dict):
                return {k: norm(x) for k, x in v.items() if k not in self._notes}
            return v

        return type(self) is type(other) and norm(self.model_dump()) == norm(other.model_dump())

    def _unsettled(self, answer: str, layout: Layout) -> Verification:
        return self.result(
            "failed",
            answer,
            f"the response says the material does not settle it; the key is {self.summary(layout)}",
        )


#: Labels an option must not start with ("A) ", "(b) ", "3. "): code adds them when shown.
_LABEL_CHARS = "A-Ha-h1-8"
#: The JSON-schema pattern of an option: not empty, not starting with white space, an input
#: marker or a placeholder (``<``, ``.``, ``…``), nor with a label. It goes in the schema
#: only, so constrained decoding cannot write what :class:`ChoiceKey` refuses; validation
#: keeps its own, clearer messages.
_UNLABELLED = rf"[{_LABEL_CHARS}]([^).][\s\S]*|[).](\S[\s\S]*)?)?"  # "A" not followed by ") "
OPTION_PATTERN = (
    rf"^([^({_LABEL_CHARS}\s<.…][\s\S]*|{_UNLABELLED}|\(([^{_LABEL_CHARS}][\s\S]*|{_UNLABELLED})?)$"
)
#: An option as written: never empty, never labelled (constrained decoding holds a model
#: to both).
Option = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": OPTION_PATTERN})]


class ChoiceKey(AnswerKey):
    """Multiple choice: the correct option(s) and the distractors, as written. Code
    shuffles them (:meth:`layout`) and labels them."""

    kind: Literal["choice"] = "choice"
    correct: list[Option] = Field(
        min_length=1,
        max_length=3,
        description="the correct option, written out in full (more than one only if the "
        "question asks to select all that apply)",
    )
    distractors: list[Option] = Field(
        min_length=2,
        max_length=6,
        description="the wrong options, each plausible to a careless reader and wrong for a "
        "stated reason",
    )
    explanation: str = Field(
        default="",
        description="why the correct option is right and, briefly, what is wrong with each "
        "distractor",
    )
    form: ClassVar[str] = "choice"

    @model_validator(mode="after")
    def _distinct(self) -> ChoiceKey:
        options = [normalize(o) for o in self.options]
        if any(not o for o in options):
            raise ValueError("an option is empty")
        if len(set(options)) != len(options):
            raise ValueError("two options are the same")
        for o in self.options:
            if re.match(rf"^\(?[{_LABEL_CHARS}][).]\s", o.strip()):
                raise ValueError(
                    f"option {_short(o, 40)!r} starts with a label: write the option text "
                    "only; labels are added when it is shown"
                )
        return self

    @property
    def options(self) -> list[str]:
        """All options in key order: the correct ones first."""
        return [*self.correct, *self.distractors]

    def layout(self, rng: random.Random, label_styles: Sequence[str]) -> Layout:
        order = list(range(len(self.options)))
        rng.shuffle(order)
        return Layout(order=order, labels=rng.choice(list(label_styles) or ["upper_paren"]))

    def same_answer(self, other: AnswerKey) -> bool:
        return isinstance(other, ChoiceKey) and {normalize(c) for c in self.correct} == {
            normalize(c) for c in other.correct
        }

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        if len(self.correct) > 1 and not _SEVERAL.search(instruction):
            return (
                f"the key has {len(self.correct)} correct options, but the instruction asks for "
                "one: keep one correct option, or ask to select all that apply"
            )
        return None

    def correct_positions(self, layout: Layout) -> list[int]:
        """Display positions (0-based) of the correct options."""
        return sorted(layout.order.index(i) for i in range(len(self.correct)))

    def view(self, layout: Layout) -> dict[str, Any]:
        opts = self.options
        return {
            "form": self.form,
            "kind": self.kind,
            "options": [
                {"label": layout.label(p), "text": opts[i], "correct": i < len(self.correct)}
                for p, i in enumerate(layout.order)
            ],
            "answer": ", ".join(layout.label(p) for p in self.correct_positions(layout)),
            "multiple": len(self.correct) > 1,
            "explanation": self.explanation,
        }

    def summary(self, layout: Layout) -> str:
        shown = self.correct_positions(layout)
        opts = [self.options[layout.order[p]] for p in shown]
        return "; ".join(
            f'{layout.label(p)} "{_short(o, 60)}"' for p, o in zip(shown, opts, strict=True)
        )

    def read(self, answer: str, layout: Layout) -> list[int] | None:
        """Display positions named by a final answer: labels (``(B)``, ``B``, ``b)``) or
        an option's exact text; None when it names none."""
        n = len(self.options)
        symbols = [a.casefold() for a in LABEL_STYLES[layout.labels][0][:n]]
        texts = [normalize(self.options[i]) for i in layout.order]
        # One option's text, with or without its label ("B. Rents rose, and wages fell."),
        # before the answer is split at commas and "and" that such a text may contain.
        line = answer.splitlines()[0] if answer.strip() else ""
        m = _OPTION_LABEL.match(line)
        if m and m.group(1).casefold() in symbols:
            pos = symbols.index(m.group(1).casefold())
            if normalize(line[m.end() :]) in ("", texts[pos]):
                return [pos]
        if normalize(line) in texts:
            return [texts.index(normalize(line))]
        parts = [p for p in re.split(r",|;|\band\b|&", answer) if p.strip()]
        found: list[int] = []
        for part in parts:
            m = _OPTION_LABEL.match(part)
            if m and m.group(1).casefold() in symbols:
                found.append(symbols.index(m.group(1).casefold()))
            elif normalize(part) in texts:
                found.append(texts.index(normalize(part)))
            else:
                return None
        return sorted(set(found)) or None

    def compare(self, answer: str, layout: Layout) -> Verification:
        picked = self.read(answer, layout)
        if picked is None:
            if says_unsettled(answer):
                return self._unsettled(answer, layout)
            return self.result(
                "failed",
                answer,
                f"the final answer names no option; the key is {self.summary(layout)}",
            )
        want = self.correct_positions(layout)
        named = ", ".join(layout.label(p) for p in picked)
        if picked == want:
            return self.result("passed", answer, named)
        return self.result(
            "failed",
            answer,
            f"the response chose {named}; the key is {self.summary(layout)}",
        )


class ExactKey(AnswerKey):
    """One short answer compared after normalisation (case, punctuation, articles)."""

    kind: Literal["exact"] = "exact"
    value: str = Field(min_length=1, description="the exact answer, as short as possible")
    aliases: list[str] = Field(
        default_factory=list, description="other ways to write the same answer, if any"
    )

    def compare(self, answer: str, layout: Layout) -> Verification:
        first = answer.splitlines()[0]
        if any(_matches(first, v) for v in (self.value, *self.aliases)):
            return self.result("passed", first, self.value)
        if says_unsettled(first):
            return self._unsettled(first, layout)
        return self.result(
            "failed",
            first,
            f'the response answered "{_short(first)}"; the key is "{_short(self.value)}"',
        )

    def summary(self, layout: Layout) -> str:
        return f'"{_short(self.value)}"'


class NumericKey(AnswerKey):
    """A number, with its unit and a tolerance."""

    kind: Literal["numeric"] = "numeric"
    value: float = Field(description="the number")
    unit: str = Field(default="", description="its unit, or an empty string")
    tolerance: float = Field(
        default=0.0,
        ge=0,
        description="the largest difference still counted right (0: exact; use it for "
        "rounded results)",
    )

    @model_validator(mode="after")
    def _finite(self) -> NumericKey:
        if not math.isfinite(self.value):
            raise ValueError("the value must be a finite number")
        return self

    def summary(self, layout: Layout) -> str:
        tol = f" ± {self.tolerance:g}" if self.tolerance else ""
        return f"{self.value:g}{tol}{' ' + self.unit if self.unit else ''}"

    def compare(self, answer: str, layout: Layout) -> Verification:
        first = answer.splitlines()[0]
        got = parse_number(first)
        if got is None:
            if says_unsettled(first):
                return self._unsettled(first, layout)
            return self.result(
                "failed",
                first,
                f"no number in the final answer; the key is {self.summary(layout)}",
            )
        # Half a unit in the last place the key shows, at least: 2.5 keyed, 2.50 answered.
        slack = max(self.tolerance, 1e-9 * max(1.0, abs(self.value)))
        if abs(got - self.value) <= slack:
            return self.result("passed", first, f"{got:g}")
        return self.result(
            "failed",
            first,
            f"the response gave {got:g}; the key is {self.summary(layout)}",
        )


class EstimateKey(AnswerKey):
    """A Fermi estimate: an order-of-magnitude band the final answer must fall in, and the
    arithmetic the response shows, each ``<expression> = <result>`` step recomputed by the
    calculator (:mod:`genteach.runtime.calculator`). It proves the arithmetic is right and
    the result lies in the teacher's band; not that the assumptions are sensible."""

    kind: Literal["estimate"] = "estimate"
    value: float = Field(gt=0, description="your own estimate, from the assumptions, in the unit")
    unit: str = Field(
        default="",
        description="the unit the instruction asks the answer in, as it writes it (empty for a "
        "plain count)",
    )
    low: float = Field(gt=0, description="the lowest estimate still counted sound")
    high: float = Field(gt=0, description="the highest estimate still counted sound")
    assumptions: list[str] = Field(
        min_length=2,
        max_length=8,
        description="each factor and the value assumed for it (households in the city: about "
        "1 million)",
    )
    #: Fewest arithmetic steps a response must show.
    min_steps: ClassVar[int] = 2
    #: Widest and narrowest band (high / low): wider proves nothing, narrower is a quiz.
    band_ratio: ClassVar[tuple[float, float]] = (3.0, 100.0)

    @model_validator(mode="after")
    def _band(self) -> EstimateKey:
        if not all(math.isfinite(v) for v in (self.value, self.low, self.high)):
            raise ValueError("value, low and high must be finite numbers")
        narrow, wide = self.band_ratio
        if not (self.low <= self.value <= self.high and narrow <= self.high / self.low <= wide):
            # A band that misses the value, or proves nothing, or is a quiz: one order of
            # magnitude around the value instead (small models rarely size it right).
            self.low, self.high = self.value / math.sqrt(10), self.value * math.sqrt(10)
        return self

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        unit = self.unit.strip()
        if unit and not (_contains(instruction, unit) or _contains(instruction, unit.rstrip("s"))):
            return f'the unit "{_short(unit, 30)}" is not named in the instruction'
        return None

    def summary(self, layout: Layout) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"about {self.value:g}{unit} (sound from {self.low:g} to {self.high:g})"

    def check(self, response: str, layout: Layout) -> Verification:
        answer = final_answer(response)
        if answer is None:
            return self.result("failed", None, "no 'Final answer:' line")
        first = answer.splitlines()[0]
        got = estimate_value(first)
        if got is None:
            return self.result(
                "failed", first, f"no number in the final answer; the key is {self.summary(layout)}"
            )
        steps, wrong = checked_steps(response)
        if wrong:
            return self.result("failed", first, f"a wrong step: {wrong}")
        if steps < self.min_steps:
            return self.result(
                "failed",
                first,
                f"{steps} arithmetic step(s) written as '<expression> = <result>'; at least "
                f"{self.min_steps} are needed to check the estimate",
            )
        if not self.low <= got <= self.high:
            return self.result(
                "failed", first, f"the estimate {got:g} is outside the key: {self.summary(layout)}"
            )
        return self.result("passed", first, f"{got:g}, {steps} steps checked")

    def same_answer(self, other: AnswerKey) -> bool:
        if not isinstance(other, EstimateKey):
            return False
        return other.low <= self.value <= other.high and self.low <= other.value <= self.high


#: A number as a final estimate writes it: digits with thousands separators and a
#: decimal part, then an exponent (``e6``, ``× 10^6``) or a scale word.
_ESTIMATE = re.compile(
    r"[-−]?\d[\d,]*(?:\.\d+)?"
    r"(?:\s*(?:[eE][-+]?\d+|[×x*]\s*10\s*(?:\^|\*\*)\s*[-+−]?\d+)"
    r"|\s+(?:thousand|million|billion|trillion)\b)?"
)


def estimate_value(text: str) -> float | None:
    """The first number of ``text`` with its scale (``3.2 million``, ``4×10^5``, ``2e6``),
    computed by the calculator; None when there is none."""
    from genteach.runtime.calculator import CalculatorError, evaluate

    m = _ESTIMATE.search(text.replace("−", "-"))
    if m is None:
        return None
    try:
        return float(evaluate(m.group(0)))
    except CalculatorError:
        return parse_number(m.group(0))


def checked_steps(response: str) -> tuple[int, str]:
    """How many ``<expression> = <result>`` steps ``response`` writes, and the first wrong
    one quoted with its correct result ("" when all are right). A result may be rounded
    to the significant digits it shows (``0.67`` for 2/3), at most 25%."""
    from genteach.runtime.calculator import find_steps

    steps = find_steps(response)
    for step in steps:
        verdict = step.check(rel_tol=_rounding(step.claimed))
        if not verdict.right:
            shown = response[step.start : step.end].strip()
            return len(steps), f'"{_short(shown, 60)}" (it is {verdict.computed})'
    return len(steps), ""


def _rounding(claimed: str) -> float:
    """The relative rounding a written result allows: half a unit in its last significant
    digit ("105 million" allows 0.5/105, "0.67" 0.5/67), kept between 1% and 25%. Trailing
    zeros of a whole number are not significant ("216,000" is read as 216)."""
    m = _NUMBER.search(claimed.replace("−", "-"))
    if m is None:
        return 0.01
    number = m.group(0).lstrip("-").replace(",", "").lower().split("e")[0]
    whole, _, fraction = number.partition(".")
    digits = (whole + fraction).lstrip("0")
    if not fraction:
        digits = digits.rstrip("0")
    mantissa = int(digits) if digits else 1
    return min(max(0.5 / mantissa, 0.01), 0.25)


class ListKey(AnswerKey):
    """A list of items, compared as a set (or in order when ``ordered``)."""

    kind: Literal["list"] = "list"
    items: list[str] = Field(min_length=2, max_length=20, description="every item, short")
    ordered: bool = Field(default=False, description="true only if the order matters")
    verbatim: bool = Field(
        default=False,
        description="true when every item is copied from the text (an extraction)",
    )

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        if self.verbatim and source is not None:
            absent = [i for i in self.items if not _contains(source, i)]
            if absent:
                return (
                    f'the item "{_short(absent[0], 40)}" is not in the text: copy items exactly, '
                    'or set "verbatim" to false'
                )
        return None

    def summary(self, layout: Layout) -> str:
        return "[" + "; ".join(_short(i, 30) for i in self.items) + "]"

    def compare(self, answer: str, layout: Layout) -> Verification:
        given = [
            re.sub(r"^\s*(?:[-*•]|\d+[.)]|\(?[a-z]\))\s*", "", part).strip()
            # commas split items, except in numbers (1,200) and inside parentheses
            for part in re.split(r"[;\n]|,(?!\d{3}\b)(?![^()]*\))", answer)
        ]
        given = [g for g in given if normalize(g)]
        if len(given) == 1 and says_unsettled(given[0]):
            return self._unsettled(given[0], layout)
        missing = [i for i in self.items if not any(_matches(g, i) for g in given)]
        extra = [g for g in given if not any(_matches(g, i) for i in self.items)]
        ok = not missing and not extra
        if ok and self.ordered:
            firsts = [next(j for j, g in enumerate(given) if _matches(g, i)) for i in self.items]
            ok = firsts == sorted(firsts)
        if ok:
            return self.result("passed", answer, "all items")
        parts = []
        if missing:
            parts.append("missing " + "; ".join(_short(m, 30) for m in missing))
        if extra:
            parts.append("extra " + "; ".join(_short(e, 30) for e in extra))
        if not parts:
            parts.append("items out of order")
        return self.result(
            "failed",
            answer,
            f"{', '.join(parts)}; the key is {self.summary(layout)}",
        )


class OrderingKey(AnswerKey):
    """Items to put in order, written in their correct order; code scrambles and labels
    them for the student."""

    kind: Literal["ordering"] = "ordering"
    items: list[str] = Field(
        min_length=3, max_length=8, description="the events or steps, in their correct order"
    )
    form: ClassVar[str] = "items"

    def layout(self, rng: random.Random, label_styles: Sequence[str]) -> Layout:
        n = len(self.items)
        order = list(range(n))
        # Neither the true order nor its reverse: the student must work it out.
        while order in (list(range(n)), list(range(n))[::-1]):
            rng.shuffle(order)
        return Layout(order=order, labels=rng.choice(list(label_styles) or ["upper_paren"]))

    def answer_positions(self, layout: Layout) -> list[int]:
        """The correct sequence as display positions."""
        return [layout.order.index(i) for i in range(len(self.items))]

    def view(self, layout: Layout) -> dict[str, Any]:
        return {
            "form": self.form,
            "kind": self.kind,
            "items": [
                {"label": layout.label(p), "text": self.items[i]}
                for p, i in enumerate(layout.order)
            ],
            "answer": ", ".join(layout.symbol(p) for p in self.answer_positions(layout)),
        }

    def summary(self, layout: Layout) -> str:
        return ", ".join(layout.symbol(p) for p in self.answer_positions(layout))

    def compare(self, answer: str, layout: Layout) -> Verification:
        first = answer.splitlines()[0]
        got = _label_tokens(first, layout, len(self.items))
        if got is None:
            if says_unsettled(first):
                return self._unsettled(first, layout)
            return self.result(
                "failed",
                first,
                f"could not read a sequence of labels; the key is {self.summary(layout)}",
            )
        if got == self.answer_positions(layout):
            return self.result("passed", first, self.summary(layout))
        return self.result(
            "failed",
            first,
            f"the response ordered {', '.join(layout.symbol(p) for p in got)}; the key "
            f"is {self.summary(layout)}",
        )


class Pair(BaseModel):
    """One matched pair."""

    model_config = ConfigDict(extra="forbid")
    left: str = Field(min_length=1, description="an item of the first column")
    right: str = Field(min_length=1, description="the item of the second column it goes with")


class MatchingKey(AnswerKey):
    """Pairs to match: the first column numbered, the second shuffled and lettered."""

    kind: Literal["matching"] = "matching"
    pairs: list[Pair] = Field(min_length=3, max_length=8, description="the correct pairs")
    unused: list[str] = Field(
        default_factory=list,
        max_length=3,
        description="items of the second column that match nothing (plausible ones, so the "
        "last pair does not follow by elimination); may be empty",
    )
    form: ClassVar[str] = "matching"

    @model_validator(mode="after")
    def _distinct(self) -> MatchingKey:
        for side in ("left", "right"):
            vals = [normalize(getattr(p, side)) for p in self.pairs]
            if side == "right":
                vals += [normalize(u) for u in self.unused]
            if len(set(vals)) != len(vals):
                raise ValueError(f"two items of the {side} column are the same")
        return self

    @property
    def right(self) -> list[str]:
        """The second column in key order: the pairs' items, then the unused ones."""
        return [*(p.right for p in self.pairs), *self.unused]

    def layout(self, rng: random.Random, label_styles: Sequence[str]) -> Layout:
        n = len(self.right)
        order = list(range(n))
        while order[: len(self.pairs)] == list(range(len(self.pairs))):
            rng.shuffle(order)
        return Layout(order=order, labels="upper_paren")

    def view(self, layout: Layout) -> dict[str, Any]:
        right = self.right
        return {
            "form": self.form,
            "kind": self.kind,
            "left": [{"label": f"{i + 1}.", "text": p.left} for i, p in enumerate(self.pairs)],
            "right": [
                {"label": layout.label(p), "text": right[i]} for p, i in enumerate(layout.order)
            ],
            "answer": self.summary(layout),
        }

    def summary(self, layout: Layout) -> str:
        return ", ".join(
            f"{i + 1}-{layout.symbol(layout.order.index(i))}" for i in range(len(self.pairs))
        )

    def compare(self, answer: str, layout: Layout) -> Verification:
        n = len(self.pairs)
        alphabet = LABEL_STYLES[layout.labels][0][: len(self.right)]
        got: dict[int, int] = {}
        for m in re.finditer(r"(\d+)\s*[-–—:→>=.)]+\s*\(?([A-Za-z])\)?", answer):
            left, sym = int(m.group(1)) - 1, m.group(2).upper()
            if 0 <= left < n and sym in alphabet:
                got[left] = alphabet.index(sym)
        want = {i: layout.order.index(i) for i in range(n)}
        if got == want:
            return self.result("passed", answer, self.summary(layout))
        shown = ", ".join(f"{k + 1}-{alphabet[v]}" for k, v in sorted(got.items())) or "no pairs"
        return self.result(
            "failed",
            answer,
            f"the response matched {shown}; the key is {self.summary(layout)}",
        )


class Judgement(BaseModel):
    """One statement and its label."""

    model_config = ConfigDict(extra="forbid")
    statement: str = Field(min_length=5, description="the statement, as the student reads it")
    label: str = Field(min_length=1, description="its correct label, one of the label set")
    note: str = Field(default="", description="why (for a false statement: the correction)")


class LabelsKey(AnswerKey):
    """Statements, each with a label from a fixed set (True/False; fact/opinion/...)."""

    kind: Literal["labels"] = "labels"
    label_set: list[str] = Field(
        min_length=2, max_length=6, description="the labels to choose from, such as True and False"
    )
    items: list[Judgement] = Field(min_length=2, max_length=10, description="the statements")
    form: ClassVar[str] = "labels"

    @model_validator(mode="after")
    def _known(self) -> LabelsKey:
        known = {normalize(x) for x in self.label_set}
        for i, item in enumerate(self.items, 1):
            if normalize(item.label) not in known:
                raise ValueError(
                    f"statement {i}: label {item.label!r} is not in the label set {self.label_set}"
                )
        if len({normalize(x.label) for x in self.items}) < 2:
            raise ValueError("use at least two different labels across the statements")
        return self

    def view(self, layout: Layout) -> dict[str, Any]:
        return {
            "form": self.form,
            "kind": self.kind,
            "label_set": self.label_set,
            "items": [
                {"label": f"{i + 1}.", "text": it.statement} for i, it in enumerate(self.items)
            ],
            "answer": self.summary(layout),
        }

    def summary(self, layout: Layout) -> str:
        return "; ".join(f"{i + 1} {it.label}" for i, it in enumerate(self.items))

    def _label_of(self, token: str) -> str | None:
        t = normalize(token)
        for label in self.label_set:
            if normalize(label) == t:
                return normalize(label)
        starts = [x for x in self.label_set if normalize(x).startswith(t)] if t else []
        return normalize(starts[0]) if len(starts) == 1 else None

    def compare(self, answer: str, layout: Layout) -> Verification:
        words = "|".join(re.escape(x) for x in sorted(self.label_set, key=len, reverse=True))
        got: dict[int, str] = {}
        for m in re.finditer(rf"(\d+)\s*[.:)\-–—=]?\s*\(?({words}|[A-Za-z])\b", answer, re.I):
            label = self._label_of(m.group(2))
            if label is not None:
                got.setdefault(int(m.group(1)) - 1, label)
        want = {i: normalize(it.label) for i, it in enumerate(self.items)}
        wrong = [i + 1 for i in want if got.get(i) != want[i]]
        if not wrong:
            return self.result("passed", answer, self.summary(layout))
        return self.result(
            "failed",
            answer,
            f"statement{'s' if len(wrong) > 1 else ''} {', '.join(map(str, wrong))} "
            f"labelled otherwise or not at all; the key is {self.summary(layout)}",
        )


class FreeTextKey(AnswerKey):
    """An open answer (an essay, a rewrite, an explanation): a reference and the points a
    good answer covers. Code checks only that an answer exists; a judge can do more."""

    kind: Literal["free_text"] = "free_text"
    rubric: list[str] = Field(
        min_length=1,
        max_length=8,
        description="the points a correct answer must cover or the constraints it must meet, "
        "each checkable",
    )
    reference: str = Field(default="", description="a short reference answer, if one helps")
    form: ClassVar[str] = "open"
    checkable: ClassVar[bool] = False

    def summary(self, layout: Layout) -> str:
        return "rubric: " + "; ".join(_short(r, 40) for r in self.rubric)

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "free text: no check by code (no judge)")


#: Structures a :class:`ConstraintsKey` can require of a whole answer.
TextFormat = Literal["any", "json", "bullet_list", "numbered_list", "markdown_table"]
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
_BULLET = re.compile(r"^\s*[-*•]\s+\S")
_NUMBERED = re.compile(r"^\s*(\d{1,2})[.)]\s+\S")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(?P<body>[\s\S]*?)\n\s*```\s*$")


def count_words(text: str) -> int:
    """Words as a reader counts them: runs of letters or digits, with inner apostrophes,
    hyphens and points ("don't", "well-known", "3.5") counted once; punctuation and
    Markdown marks are not words."""
    return len(_WORD.findall(text))


def _contains(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, after :func:`normalize`."""
    t, p = normalize(text), normalize(phrase)
    return bool(p) and f" {p} " in f" {t} "


def _distinct(phrases: list[str]) -> list[str]:
    """``phrases`` without those that repeat an earlier one after :func:`normalize`."""
    seen: dict[str, str] = {}
    for p in phrases:
        seen.setdefault(normalize(p), p)
    return list(seen.values())


def _numbers(text: str) -> list[float]:
    """Every number written with digits in ``text``, in order (thousands separators
    dropped), without repeats."""
    found: dict[float, None] = {}
    for m in _NUMBER.finditer(text.replace("−", "-")):
        try:
            found[abs(float(m.group(0).replace(",", "")))] = None
        except ValueError:
            continue
    return list(found)


def longest_shared_run(text: str, source: str) -> int:
    """The length, in words, of the longest run of consecutive words ``text`` shares with
    ``source`` (both normalised: case, punctuation and articles do not matter)."""
    a, b = normalize(text).split(), normalize(source).split()
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        row = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                row[j] = prev[j - 1] + 1
                best = max(best, row[j])
        prev = row
    return best


def _format_problem(text: str, form: str, json_keys: Sequence[str]) -> str | None:
    """What is wrong with ``text`` as the structure ``form``; None when it has it."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if form == "json":
        fenced = _FENCE.match(text)
        try:
            data = json.loads(fenced.group("body") if fenced else text)
        except ValueError:
            return "the answer is not valid JSON"
        objects = data if isinstance(data, list) else [data]
        if not objects or not all(isinstance(o, dict) for o in objects):
            return "the answer is JSON but not an object (or a list of objects)"
        missing = [k for k in json_keys if any(k not in o for o in objects)]
        if missing:
            return f"the JSON lacks the key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        return None
    if form == "bullet_list":
        bullets = sum(1 for ln in lines if _BULLET.match(ln))
        if bullets < 2 or bullets < len(lines) / 2:
            return f"{bullets} of its {len(lines)} lines are bullet points; a list was asked"
        return None
    if form == "numbered_list":
        numbers = [int(m.group(1)) for ln in lines if (m := _NUMBERED.match(ln))]
        if len(numbers) < 2 or numbers != list(range(1, len(numbers) + 1)):
            return "the answer is not a numbered list (lines 1., 2., 3. ... in order)"
        return None
    if form == "markdown_table":
        if not any(_TABLE_RULE.match(ln) for ln in lines[1:]) or "|" not in lines[0]:
            return "the answer has no Markdown table (a header row, then a |---| rule)"
        return None
    return None


class ConstraintsKey(AnswerKey):
    """An open answer (a rewrite, a piece of writing) with constraints that code checks:
    facts it must keep word for word, words it must use or avoid, a length, a structure,
    how much wording it may copy from its source. ``rubric`` holds what code cannot check
    (meaning kept, tone reached): a passed check proves the constraints hold, not that
    the answer is good.

    The constraints must be stated in the task's instruction, and the facts to keep must
    occur in the text the task works on (:meth:`fit_task`, run when the task is written).
    """

    kind: Literal["constraints"] = "constraints"
    keep: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="facts from the text (figures, names, terms) that a correct answer "
        "contains unchanged, each copied exactly from the text, 1 to 6 words",
    )
    include: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="words or phrases the instruction requires the answer to use",
    )
    exclude: list[str] = Field(
        default_factory=list,
        max_length=15,
        description="words or phrases the instruction forbids in the answer",
    )
    min_words: int | None = Field(default=None, ge=1, description="the fewest words, or null")
    max_words: int | None = Field(default=None, ge=1, description="the most words, or null")
    max_copied_words: int | None = Field(
        default=None,
        ge=2,
        description="the longest run of consecutive words the answer may share with the "
        "text, or null",
    )
    format: TextFormat = Field(
        default="any", description="the structure the whole answer must have"
    )
    json_keys: list[str] = Field(
        default_factory=list,
        max_length=12,
        description="for format json: the keys every object must have",
    )
    line_count: int | None = Field(
        default=None, ge=1, le=60, description="the exact number of non-empty lines, or null"
    )
    acrostic: str | None = Field(
        default=None,
        description="a word the first letters of the non-empty lines spell, or null",
    )
    no_new_numbers: bool = Field(
        default=False,
        description="true when every number in the answer must occur in the text",
    )
    rubric: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="what a correct answer must also do that code cannot check",
    )
    # Set by code when the task is written (never asked of a model): the text the task
    # works on, for ``max_copied_words`` and ``no_new_numbers``.
    source: SkipJsonSchema[str | None] = None
    form: ClassVar[str] = "open"
    _notes: ClassVar[frozenset[str]] = frozenset({"rubric", "source"})

    def _checks(self) -> list[str]:
        parts = []
        if self.keep:
            parts.append(f"keeps {len(self.keep)} fact{'s' if len(self.keep) > 1 else ''}")
        if self.include:
            parts.append("uses " + ", ".join(f'"{_short(w, 20)}"' for w in self.include))
        if self.exclude:
            parts.append("avoids " + ", ".join(f'"{_short(w, 20)}"' for w in self.exclude))
        if self.min_words and self.max_words:
            parts.append(f"{self.min_words}-{self.max_words} words")
        elif self.min_words:
            parts.append(f"at least {self.min_words} words")
        elif self.max_words:
            parts.append(f"at most {self.max_words} words")
        if self.max_copied_words:
            parts.append(f"copies at most {self.max_copied_words} words in a row")
        if self.format != "any":
            keys = f" with keys {', '.join(self.json_keys)}" if self.json_keys else ""
            parts.append(f"as {self.format.replace('_', ' ')}{keys}")
        if self.line_count:
            parts.append(f"{self.line_count} lines")
        if self.acrostic:
            parts.append(f'lines spelling "{self.acrostic}"')
        if self.no_new_numbers:
            parts.append("no number the text lacks")
        return parts

    def summary(self, layout: Layout) -> str:
        return "; ".join(self._checks()) or "no constraint"

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        """Fit the key to its task: a constraint the instruction does not state is dropped
        (the student is held only to what it was told), and so is a fact to keep that is not
        in the text; a key left with nothing to check, or with contradictory constraints, is
        refused with the reason."""
        if self.format != "json":
            self.json_keys = []  # keys without a JSON format check nothing (small models fill them)
        stated = " ".join(re.findall(r"\d+", instruction.replace(",", ""))).split()
        for name in ("min_words", "max_words", "max_copied_words", "line_count"):
            n = getattr(self, name)
            if n is not None and str(n) not in stated:
                setattr(self, name, None)
        # What the answer must use is named in the instruction; what it must avoid is
        # named there or is in the text it works on (names to mask, words to replace).
        seen = f"{instruction}\n{source or ''}"
        self.include = [w for w in self.include if _contains(instruction, w)]
        self.json_keys = [w for w in self.json_keys if _contains(instruction, w)]
        self.exclude = [
            w
            for w in self.exclude
            if _contains(instruction, w) or (_contains(seen, w) and normalize(w) not in _COMMON)
        ]
        if self.acrostic is not None and not (
            re.sub(r"[^\w]", "", self.acrostic) and _contains(instruction, self.acrostic)
        ):
            self.acrostic = None
        if source is not None:
            self.keep = [w for w in self.keep if _contains(source, w)]
            self.source = source
        # a fact or word listed twice is one constraint (the summary counts them)
        self.keep, self.include, self.exclude = (
            _distinct(self.keep),
            _distinct(self.include),
            _distinct(self.exclude),
        )
        if not self._checks():
            return (
                "the constraints key checks nothing the instruction states: give the facts to "
                "keep (copied from the text), a word range, required or banned words, or a "
                "format, each stated in the instruction"
            )
        if self.min_words and self.max_words and self.min_words > self.max_words:
            return f"min_words {self.min_words} is above max_words {self.max_words}"
        if self.acrostic is not None:
            letters = re.sub(r"[^\w]", "", self.acrostic)
            if self.line_count is not None and self.line_count != len(letters):
                return (
                    f"the acrostic has {len(letters)} letters but line_count is {self.line_count}"
                )
        if self.no_new_numbers and source is None:
            return "no_new_numbers needs the text the task works on"
        # A word both required and banned: a ban the instruction does not name is the
        # model's slip and goes; one it names contradicts the task.
        wanted = [*self.keep, *self.include]
        clash = [x for x in self.exclude if any(_contains(w, x) for w in wanted)]
        named = [
            x
            for x in clash
            if _contains(instruction, x) and not any(_contains(w, x) for w in self.include)
        ]
        if named:
            return f'"{_short(named[0], 40)}" is both kept and banned'
        self.exclude = [x for x in self.exclude if x not in clash]
        return None

    def check(self, response: str, layout: Layout) -> Verification:
        text = response.strip()
        failures: list[str] = []
        # the text handed back as it came (line breaks aside) does no task: a copy keeps
        # every fact and passes any key that asks only for facts kept
        if self.source is not None and text.split() == self.source.split():
            failures.append("repeats the text unchanged")
        lost = [w for w in self.keep if not _contains(text, w)]
        if lost:
            failures.append("lost " + ", ".join(f'"{_short(w, 30)}"' for w in lost))
        unused = [w for w in self.include if not _contains(text, w)]
        if unused:
            failures.append("does not use " + ", ".join(f'"{_short(w, 30)}"' for w in unused))
        banned = [w for w in self.exclude if _contains(text, w)]
        if banned:
            failures.append("uses the banned " + ", ".join(f'"{_short(w, 30)}"' for w in banned))
        words = count_words(text)
        if self.min_words and words < self.min_words:
            failures.append(f"{words} words, fewer than {self.min_words}")
        if self.max_words and words > self.max_words:
            failures.append(f"{words} words, more than {self.max_words}")
        if self.max_copied_words and self.source:
            run = longest_shared_run(text, self.source)
            if run > self.max_copied_words:
                failures.append(f"copies {run} words in a row from the text")
        wrong_form = _format_problem(text, self.format, self.json_keys)
        if wrong_form:
            failures.append(wrong_form)
        lines = [ln.strip("*_#>-• \t\"'“”‘’«»") for ln in text.splitlines() if ln.strip()]
        if self.line_count and len(lines) != self.line_count:
            failures.append(f"has {len(lines)} lines, not {self.line_count}")
        if self.acrostic:
            word = re.sub(r"[^\w]", "", self.acrostic).casefold()
            initials = "".join(ln[:1] for ln in lines).casefold()
            if initials != word:
                failures.append(f'line initials spell "{initials}", not "{word}"')
        if self.no_new_numbers and self.source is not None:
            known = _numbers(self.source)
            # list markers ("1.", "2)") number the lines, they are not figures
            unlisted = re.sub(r"(?m)^\s*\d{1,2}[.)]\s", "", text)
            new = [n for n in _numbers(unlisted) if n not in known]
            if new:
                failures.append(
                    "gives numbers the text lacks: " + ", ".join(f"{n:g}" for n in new[:5])
                )
        if failures:
            return self.result(
                "failed", None, f"the answer {'; '.join(failures)}; the key: {self.summary(layout)}"
            )
        n = len(self.rubric)
        unchecked = f"; not checked by code: {n} rubric point{'s' if n > 1 else ''}" if n else ""
        return self.result("passed", None, f"{'; '.join(self._checks())}{unchecked}")


class FieldValue(BaseModel):
    """One extracted field and its value."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="the field's name, as the instruction gives it")
    value: str = Field(min_length=1, description="its correct value, as short as possible")
    copied: bool = Field(
        default=True,
        description="true when the value is copied from the text as written; false when it is "
        "derived (a total, a converted date or unit)",
    )


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in ``text`` (fenced or bare; an object nested in it
    is part of it, not another), or None."""
    decoder = json.JSONDecoder()
    found, pos = None, text.find("{")
    while pos != -1:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found = obj
        pos = text.find("{", end)
    return found


class FieldsKey(AnswerKey):
    """Values extracted into named fields (text extraction): the answer is a JSON object
    with the fields the instruction names, each compared with the key's value after
    normalisation. Each ``copied`` value must occur in the text the task works on (checked
    when the task is written): an extraction, not an invention. A value that says the text
    does not give it ("not stated") is exempt; a derived value (``copied`` false) is
    checked against the answer only."""

    kind: Literal["fields"] = "fields"
    fields: list[FieldValue] = Field(
        min_length=1, max_length=20, description="every field the answer must give, in order"
    )
    form: ClassVar[str] = "open"

    def summary(self, layout: Layout) -> str:
        return "{" + ", ".join(f"{f.name}: {_short(f.value, 25)}" for f in self.fields) + "}"

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        names = [normalize(f.name) for f in self.fields]
        if len(set(names)) < len(names):
            return "two fields have the same name"
        unnamed = [f.name for f in self.fields if not _contains(instruction, f.name)]
        if unnamed:
            return f'the field "{_short(unnamed[0], 30)}" is not named in the instruction'
        if source is not None:
            absent = [
                f
                for f in self.fields
                if f.copied and not says_unsettled(f.value) and not _contains(source, f.value)
            ]
            if absent:
                return (
                    f'the value "{_short(absent[0].value, 40)}" of {absent[0].name} is not in '
                    'the text: copy it exactly, or set its "copied" to false if it is derived'
                )
        return None

    def check(self, response: str, layout: Layout) -> Verification:
        data = _last_json_object(response)
        if data is None:
            return self.result("failed", None, "no JSON object in the answer")
        given = {normalize(str(k)): v for k, v in data.items()}
        wrong = []
        for f in self.fields:
            value = given.get(normalize(f.name))
            if value is None:
                wrong.append(f"{f.name} missing")
            elif not _matches(str(value), f.value, slack=0):
                wrong.append(f'{f.name} "{_short(str(value), 30)}"')
        answer = json.dumps(data, ensure_ascii=False)
        if wrong:
            return self.result(
                "failed", answer, f"{'; '.join(wrong)}; the key is {self.summary(layout)}"
            )
        return self.result("passed", answer, f"{len(self.fields)} fields")


class UnanswerableKey(AnswerKey):
    """The material does not settle the question; ``missing`` names what it lacks.
    ``shown`` keeps the key the question is presented with (its options, for example),
    so the student still sees the options of a multiple-choice question."""

    kind: Literal["unanswerable"] = "unanswerable"
    missing: str = Field(min_length=5, description="the information the material lacks")
    # Set by code (never asked of a model): the key the question is presented with.
    shown: SkipJsonSchema[dict[str, Any] | None] = None

    def presented(self, kinds: KeyKinds) -> AnswerKey | None:
        return kinds.parse(self.shown) if self.shown else None

    def summary(self, layout: Layout) -> str:
        return f"not settled by the material (missing: {_short(self.missing, 60)})"

    def check(self, response: str, layout: Layout) -> Verification:
        answer = final_answer(response)
        text = answer if answer is not None else response[-400:]
        if says_unsettled(text):
            return self.result("passed", answer, "unsettled")
        return self.result(
            "failed",
            answer,
            f"the response answers as if the material settled it; the key: {self.summary(layout)}",
        )

    def same_answer(self, other: AnswerKey) -> bool:
        return isinstance(other, UnanswerableKey)


class Support(BaseModel):
    """One document that supports a cited answer, and the words of it that do."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, description="the document's id, as the set numbers it")
    quote: str = Field(
        min_length=10,
        description="4 to 40 words copied verbatim from that document that state the answer "
        "or a part of it",
    )


#: JSON fields an answer may list its cited document ids in (the release's name first).
CITATION_FIELDS = (
    "relevant_passages",
    "relevant_passage_ids",
    "citations",
    "sources",
    "document_ids",
)
_BRACKET_CITATION = re.compile(
    r"\[(?:\s*(?:doc(?:ument)?|passage)?\s*(?:id)?[\s:#]*)([\d][\d,;\s]*)\]", re.I
)


class CitedKey(AnswerKey):
    """An answer grounded in numbered documents (retrieval-augmented generation): the short
    ``answer`` a response must state and the documents that ``support`` it, each with a
    verbatim quote. Checked when written: every supporting id is a document of the task's
    set, its quote occurs in it, and the answer's words occur in the supporting documents.
    Checked in a response (a JSON object with an ``answer`` and a list of document ids, or
    prose citing ``[n]``): it cites at least one document, only supporting ones (all of
    them with ``cite_all``), and its answer contains the key's. It proves the cited
    documents state the answer, not that the prose around it is faithful to them."""

    kind: Literal["cited"] = "cited"
    answer: str = Field(
        min_length=1,
        description="the short answer the response must state: a name, a number with its "
        "unit, a date or a short phrase",
    )
    support: list[Support] = Field(
        min_length=1, max_length=4, description="the documents that state the answer"
    )
    cite_all: bool = Field(
        default=False, description="true when the response must cite every supporting document"
    )
    # Set by code (never asked of a model): the ids of the documents the task shows, and
    # whether the instruction asks for a JSON answer.
    ids: SkipJsonSchema[list[str]] = Field(default_factory=list)
    json_answer: SkipJsonSchema[bool] = False
    form: ClassVar[str] = "open"

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        self.json_answer = bool(re.search(r"\bjson\b", instruction, re.IGNORECASE))
        return None

    @property
    def support_ids(self) -> list[str]:
        return list(dict.fromkeys(s.id.strip().strip("[]").strip() for s in self.support))

    def fit_material(self, material: object) -> str | None:
        get = getattr(material, "get", None)
        ids = getattr(material, "ids", None)
        if not callable(get) or not isinstance(ids, list):
            return "a cited key needs a document set to cite"
        texts = []
        for s in self.support:
            doc = get(s.id)
            if doc is None:
                return f'document "{_short(s.id, 20)}" is not in the set (ids: {", ".join(ids)})'
            if not _verbatim(doc.snippet, s.quote):
                return (
                    f'the quote "{_short(s.quote, 60)}" does not occur in document {doc.id}: copy '
                    "the words exactly from that document"
                )
            texts.append(doc.snippet)
        if not grounded_in(self.answer, " ".join(texts)):
            return (
                f'the answer "{_short(self.answer, 60)}" is not stated in the supporting '
                "documents: cite the documents whose words give it"
            )
        self.ids = list(ids)
        return None

    def summary(self, layout: Layout) -> str:
        docs = ", ".join(self.support_ids)
        return f'"{_short(self.answer, 50)}" citing {"all of " if self.cite_all else ""}{docs}'

    def check(self, response: str, layout: Layout) -> Verification:
        answer, cited = read_citations(response)
        if self.json_answer and answer is response:
            return self.result(
                "failed", None, "the instruction asks for a JSON object; the response gives none"
            )
        if not cited:
            return self.result("failed", answer, "the response cites no document")
        unknown = [c for c in cited if self.ids and c not in self.ids]
        if unknown:
            return self.result(
                "failed",
                answer,
                f"the response cites document {unknown[0]}, which is not in the set",
            )
        support = self.support_ids
        stray = [c for c in cited if c not in support]
        if stray:
            return self.result(
                "failed",
                answer,
                f"the response cites document {stray[0]}, which does not support the answer; "
                f"the key is {self.summary(layout)}",
            )
        if self.cite_all and set(support) - set(cited):
            missing = ", ".join(sorted(set(support) - set(cited)))
            return self.result(
                "failed", answer, f"the response does not cite document {missing}, which it needs"
            )
        if not _states(answer, self.answer):
            return self.result(
                "failed",
                answer,
                f"the answer does not state the key's; the key is {self.summary(layout)}",
            )
        return self.result("passed", answer, f"cites {', '.join(cited)}")

    def same_answer(self, other: AnswerKey) -> bool:
        return (
            isinstance(other, CitedKey)
            and normalize(other.answer) == normalize(self.answer)
            and set(other.support_ids) == set(self.support_ids)
        )


def read_citations(response: str) -> tuple[str, list[str]]:
    """The answer and the cited document ids of ``response``: its last JSON object with an
    ``answer`` and a list under one of :data:`CITATION_FIELDS`, or else the prose itself
    and every id it cites in square brackets (``[3]``, ``[2, 5]``, ``[Document 3]``)."""
    obj = _last_json_object(response)
    if obj is not None and "answer" in obj:
        listed = next((obj[f] for f in CITATION_FIELDS if f in obj), None)
        if isinstance(listed, list | str | int):
            items = listed if isinstance(listed, list) else [listed]
            ids = [str(i).strip().strip("[]").strip() for i in items]
            ids = [
                re.sub(r"^(?:doc(?:ument)?|passage)\s*(?:id)?[\s:#]*", "", i, flags=re.I)
                for i in ids
            ]
            return str(obj["answer"]), list(dict.fromkeys(i for i in ids if i))
    ids = []
    for m in _BRACKET_CITATION.finditer(response):
        ids += [i for i in re.split(r"[,;\s]+", m.group(1)) if i]
    return response, list(dict.fromkeys(ids))


def _verbatim(text: str, quote: str) -> bool:
    """Whether ``quote`` occurs in ``text``, ignoring case, whitespace, quote marks and
    an ellipsis or full stop around it."""
    q = quote.strip().strip("\"'“”‘’…").removesuffix("...").strip()
    q = q.removesuffix(".")
    words = [re.escape(w) for w in q.split()]
    return bool(words) and re.search(r"\s+".join(words), text, re.I) is not None


def grounded_in(answer: str, text: str) -> bool:
    """Whether ``answer`` is stated in ``text``: the whole phrase, or every number and at
    least half of the other content words of it."""
    if _contains(text, answer):
        return True
    numbers = _numbers(answer)
    if numbers and not set(numbers) <= set(_numbers(text)):
        return False
    words = [w for w in normalize(answer).split() if w not in _COMMON and not w[0].isdigit()]
    if not words:
        return bool(numbers)
    present = set(normalize(text).split())
    return sum(w in present for w in words) * 2 >= len(words)


#: Words that, just before a stated answer, deny it ("not in 1966", "never 500 GWh").
_DENIALS = frozenset({"not", "no", "never", "t", "neither", "nor"})


def _states(answer: str, target: str) -> bool:
    """Whether ``answer`` states ``target``: the phrase occurs in it (normalised) and none
    of the three words before it denies it, or, for a numeric target, its numbers and
    most of its words occur."""
    if _matches(answer, target):
        return True
    a, t = normalize(answer).split(), normalize(target).split()
    for i in range(len(a) - len(t) + 1):
        if t and a[i : i + len(t)] == t and not set(a[max(0, i - 3) : i]) & _DENIALS:
            return True
    wanted = _numbers(target)
    if not wanted or not set(wanted) <= set(_numbers(answer)):
        return False
    first = next((i for i, w in enumerate(a) if w[0].isdigit()), 0)
    return not set(a[max(0, first - 3) : first]) & _DENIALS and grounded_in(target, answer)


class ProgramTestsKey(AnswerKey):
    """Code answers checked by running tests in the sandbox
    (:class:`~genteach.runtime.Sandbox`): the response's last fenced Python block is the
    solution (``solution.py``); the tests run beside it with the solution's names imported,
    module-level asserts first, then every ``test_*`` function. Exit status 0 passes; a
    failure quotes the failing line. It proves the solution passes these tests, not that the
    tests cover the spec."""

    kind: Literal["program_tests"] = "program_tests"
    language: str = Field(default="python", description="the programming language (python)")
    tests: str = Field(
        min_length=10,
        description="Python test code: plain asserts or test_ functions, standard library "
        "only, calling the solution's names; passes only on correct code",
    )
    entry_point: str = Field(
        default="", description="the function or class the tests call, as the instruction names it"
    )
    form: ClassVar[str] = "open"

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        name = self.entry_point.strip()
        if name.startswith("_"):
            return (
                f'the entry point "{_short(name, 40)}" starts with "_": the tests cannot import it'
            )
        if name and not _contains(instruction, name):
            return f'the entry point "{_short(name, 40)}" is not named in the instruction'
        if name and not re.search(rf"\b{re.escape(name)}\b", self.tests):
            return f'the tests never call the entry point "{_short(name, 40)}"'
        return None

    def summary(self, layout: Layout) -> str:
        return f"{self.language} tests of {self.entry_point or 'the solution'}"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "program tests run in a sandbox (verify)")

    async def verify(self, response: str, layout: Layout, tools: KeyTools) -> Verification:
        if self.language.strip().casefold() not in ("python", "python3", "py"):
            return self.result("unchecked", None, f"{self.language} code is not run")
        code = last_code_block(response, "python")
        if code is None:
            return self.result("failed", None, "no ```python block in the answer")
        name = self.entry_point.strip()
        if name and not re.search(
            rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|"
            rf"^{re.escape(name)}\s*=",
            code,
            re.MULTILINE,
        ):
            return self.result("failed", None, f"the solution does not define {name}")
        try:
            sandbox = tools.sandbox()
        except RuntimeError as exc:  # no isolation on this machine: never run it unisolated
            return self.result("unchecked", None, f"no sandbox here: {exc}")
        result = await sandbox.run_python(
            _TEST_RUNNER.format(tests=self.tests), files={"solution.py": code}
        )
        if result.ok and _TESTS_PASSED in result.stdout:
            return self.result("passed", None, f"the tests of {name or 'the solution'} pass")
        return self.result("failed", None, f"the tests fail: {failing_line(result.stderr)}")


class TestSuiteKey(ProgramTestsKey):
    """Tests the student writes for a given, correct function (test-writing tasks). The
    answer's last Python block repeats the function and adds ``test_*`` functions. Checked
    in the sandbox: the key's ``tests`` pass on the answer's copy of the function (it was
    not changed) and the answer's own tests pass on it; then code-made mutants of the
    function (:mod:`genteach.mutation`: one operator, constant or call changed) are kept
    when the key's tests detect them, and the answer's tests must fail on every kept one.
    It proves the tests detect those changes, not that they cover every behaviour."""

    __test__ = False  # not a pytest class, despite its name
    kind: Literal["test_suite"] = "test_suite"  # type: ignore[assignment]
    #: Mutants drawn per answer.
    mutant_limit: ClassVar[int] = 3

    def summary(self, layout: Layout) -> str:
        return f"tests of {self.entry_point or 'the function'} that fail on its mutants"

    async def verify(self, response: str, layout: Layout, tools: KeyTools) -> Verification:
        from genteach.mutation import mutant_program, mutants

        base = await super().verify(response, layout, tools)
        if base.status != "passed":
            return base
        code = last_code_block(response, "python") or ""
        name = self.entry_point.strip()
        if not re.search(r"^\s*def test_\w*\s*\(\s*\)", code, re.MULTILINE):
            return self.result("failed", None, "the answer defines no test_ function")
        seed = int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "big")
        drawn = mutants(code, name, limit=self.mutant_limit, seed=seed)
        sandbox = tools.sandbox()
        kept = 0
        for mutant in drawn:
            program = mutant_program(code, mutant)
            key_run = await sandbox.run_python(
                _KEY_ONLY_RUNNER.format(tests=self.tests), files={"solution.py": program}
            )
            if key_run.ok and _TESTS_PASSED in key_run.stdout:
                continue  # the key's tests do not detect it: maybe equivalent, not graded
            kept += 1
            own_run = await sandbox.run_python(_OWN_TESTS_RUNNER, files={"solution.py": program})
            if own_run.ok and _TESTS_PASSED in own_run.stdout:
                return self.result(
                    "failed", None, f"the tests pass on a mutant of {name}: {mutant.description}"
                )
        if not kept:
            return self.result(
                "failed",
                None,
                f"no mutant of {name} that the key's tests detect ({len(drawn)} drawn): the "
                "tests cannot be graded",
            )
        return self.result(
            "passed", None, f"the tests pass on {name} and fail on {kept} of its mutants"
        )


#: Runs only the key's tests against solution.py: the answer's own test_ functions stay
#: importable (a key may count them) but are not called.
_KEY_ONLY_RUNNER = """from solution import *

{tests}

for _name, _test in sorted(dict(globals()).items()):
    if _name.startswith("test_") and callable(_test) and _test.__module__ == __name__:
        _test()
print("genteach: all tests passed")
"""
#: Runs the answer's own test_ functions (against whatever solution.py defines last).
_OWN_TESTS_RUNNER = """import solution as _solution

for _name in sorted(dir(_solution)):
    if _name.startswith("test_") and callable(getattr(_solution, _name)):
        getattr(_solution, _name)()
print("genteach: all tests passed")
"""

#: What the runner prints when every test passed (a solution that exits early does not).
_TESTS_PASSED = "genteach: all tests passed"
#: The program the sandbox runs: the solution's names, the key's tests, its test functions.
_TEST_RUNNER = """from solution import *

{tests}

for _name, _test in sorted(dict(globals()).items()):
    if _name.startswith("test_") and callable(_test):
        _test()
print("genteach: all tests passed")
"""
_CODE_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def last_code_block(text: str, language: str = "") -> str | None:
    """The last fenced code block of ``text`` tagged ``language`` (or untagged), or None."""
    blocks = [
        body
        for tag, body in _CODE_FENCE.findall(text)
        if not language or tag.casefold() in ("", language.casefold(), f"{language}3")
    ]
    return blocks[-1] if blocks else None


def failing_line(stderr: str) -> str:
    """What a failed test run says: the last source line of its traceback and the error
    ("assert add(2, 2) == 4 -> AssertionError"), else stderr's last line."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "the program failed without an error message"
    error = lines[-1].strip()
    source = [
        ln.strip()
        for i, ln in enumerate(lines[:-1])
        if ln.startswith("    ") and i and lines[i - 1].lstrip().startswith("File ")
    ]
    return _short(f"{source[-1]} -> {error}" if source else error, 200)


class KeyTools(Protocol):
    """What :meth:`AnswerKey.verify` may use besides the response."""

    def sandbox(self) -> Sandbox:
        """The run's sandbox for model-written code (made on first use).

        Raises:
            RuntimeError: no isolation works on this machine
                (:class:`~genteach.runtime.SandboxUnavailable`).
        """
        ...


class EnvironmentKey(AnswerKey):
    """An answer an environment checks (its reward): e.g. a database state or an OS
    check script. ``expected`` is what the environment's check compares with."""

    kind: Literal["environment"] = "environment"
    check_name: str = Field(min_length=1, description="the environment check that decides")
    expected: Any = Field(default=None, description="what the check compares with")
    form: ClassVar[str] = "open"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "decided by the environment's reward")


class ToolOutcomeKey(AnswerKey):
    """How a correct tool-use conversation ends, and which APIs it calls: checked against
    the conversation (its actions), not against a final line."""

    kind: Literal["tool_outcome"] = "tool_outcome"
    outcome: Literal["final_answer", "failed"] = Field(
        description="how a correct conversation ends: with FINAL_ANSWER or with FAILED"
    )
    required_apis: list[str] = Field(
        default_factory=list, description="the APIs a complete solution calls, in call order"
    )
    reference: str = Field(default="", description="the reference solution on one line")
    form: ClassVar[str] = "open"

    def summary(self, layout: Layout) -> str:
        apis = f" after {', '.join(self.required_apis)}" if self.required_apis else ""
        return f"{self.outcome.upper()}{apis if self.outcome == 'final_answer' else ''}"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "checked against the conversation")

    def check_conversation(
        self, outcome: str, called: Sequence[str], shown: Iterable[str]
    ) -> Verification:
        """Check a finished conversation: its ``outcome`` (final_answer/failed) and the APIs
        it ``called``; for a final answer, every required API that the assistant was
        ``shown`` must have been called."""
        if outcome != self.outcome:
            return self.result(
                "failed",
                outcome,
                f"the conversation ended with {outcome.upper()}, the task expects "
                f"{self.outcome.upper()}",
            )
        available = set(shown)
        if outcome == "final_answer":
            missing = [
                a for a in dict.fromkeys(self.required_apis) if a in available and a not in called
            ]
            if missing:
                return self.result(
                    "failed",
                    outcome,
                    f"FINAL_ANSWER without calling {', '.join(missing)}, which the solution needs",
                )
        return self.result("passed", outcome, self.summary(Layout()))


#: How a web episode ends well: a form sent, a question answered, a page reached, or a
#: stop that names what the request lacks.
WebOutcome = Literal["submitted", "answered", "reached", "infeasible"]
_ELEMENT_ID = re.compile(r"\[?\be\d+\b\]?")


class WebGoalKey(AnswerKey):
    """The end state of a successful web episode (the web-agent skill): which values the
    page's fields hold, which button was clicked after they were set, which page the
    agent is on, what it answered, or that it stopped naming a missing value. Checked
    against the site when written (:func:`~genteach.runtime.web.check_goal_fits`) and
    against the state the teacher's episode leaves (:func:`~genteach.runtime.web.check_goal`);
    the check proves the goal state was reached, not that every step was the shortest."""

    kind: Literal["web_goal"] = "web_goal"
    start: str = Field(min_length=1, description="the url of the page the episode starts on")
    outcome: WebOutcome = Field(
        description="submitted: values set, then the submit button clicked; answered: the "
        "final answer gives the answer; reached: the episode ends on page; infeasible: the "
        "agent stops naming what is missing, without clicking submit"
    )
    values: dict[str, str] = Field(
        default_factory=dict,
        description="element id -> the value it must hold at the end (a textbox's text, a "
        "select's option, checked or unchecked); {} when none",
    )
    submit: str = Field(
        default="",
        description="submitted: the button clicked after the values are set; infeasible: the "
        "button that must not be clicked; else empty",
    )
    page: str = Field(default="", description="reached: the url the episode ends on; else empty")
    answer: str = Field(default="", description="answered: the short answer; else empty")
    evidence: str = Field(
        default="", description="answered: the id of the element that shows the answer; else empty"
    )
    missing: str = Field(
        default="", description="infeasible: what the request lacks (the stop must name it)"
    )
    form: ClassVar[str] = "open"
    _instruction: str = PrivateAttr(default="")

    def goal(self) -> dict[str, Any]:
        """The goal's fields, as :func:`~genteach.runtime.web.check_goal` takes them."""
        return self.model_dump(exclude={"kind", "start"})

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        found = _ELEMENT_ID.search(instruction)
        if found:
            return (
                f'the request names the element id "{found.group(0)}", which the user cannot see: '
                "describe the field or button by its label"
            )
        self._instruction = instruction
        return None

    def fit_material(self, material: object) -> str | None:
        from genteach.runtime.web import WebSite, check_goal_fits

        if not isinstance(material, WebSite):
            return "a web goal needs a web site"
        problem = check_goal_fits(material, start=self.start, **self.goal())
        if problem or not self._instruction:
            return problem
        for element_id, value in self.values.items():
            element = material.element(element_id)
            if (
                element is not None
                and element.role == "textbox"
                and not _contains(self._instruction, value)
            ):
                return (
                    f'the request never gives "{_short(value, 40)}", the value {element_id} '
                    "must hold: the user must state every value to type"
                )
        return None

    def summary(self, layout: Layout) -> str:
        wanted = {
            "submitted": f"{len(self.values)} values set, then {self.submit} clicked",
            "answered": f'the answer "{_short(self.answer, 40)}"',
            "reached": f"ending on {self.page}",
            "infeasible": f'a stop naming "{_short(self.missing, 40)}"',
        }[self.outcome]
        return f"{self.outcome}: {wanted}"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "decided by the web episode's end state")


class DbReferenceKey(AnswerKey):
    """A database task's reference SQL (the database-agent skill). When the task is
    written, code runs it on a fresh copy of the task's tables
    (:func:`~genteach.runtime.db.derive`): a SELECT's rows become the expected answer, a
    change's resulting state hash the expected state; a reference that fails, returns
    nothing useful or changes nothing is refused. The episode's reward compares the agent's
    final answer (or its changes) with them. It proves the agent's result equals the
    reference's on this database, not that the question has no other reading."""

    kind: Literal["db_reference"] = "db_reference"
    operation: Literal["select", "insert", "update", "delete"] = Field(
        description="select for a question; insert, update or delete for a change"
    )
    sql: str = Field(
        min_length=8,
        description="the reference SQL in SQLite: one SELECT for a question; one or more "
        "statements separated by ; for a change",
    )
    # Set by code (never asked of a model): the reference's rows or its state hash.
    expected: SkipJsonSchema[list[list[Any]] | str | None] = None
    form: ClassVar[str] = "open"

    def fit_material(self, material: object) -> str | None:
        from genteach.runtime.db import Database, DbTask, derive

        database = getattr(material, "database", None)
        if not isinstance(database, Database):
            return "a db_reference key needs a database"
        derived = derive(
            DbTask(
                question="(reference check)",
                database=database,
                kind=self.operation,
                reference_sql=self.sql,
            )
        )
        if isinstance(derived, str):
            return f"the reference SQL is refused: {derived}"
        found = derived.expected
        self.expected = found if isinstance(found, str) else [list(r) for r in found or ()]
        return None

    def summary(self, layout: Layout) -> str:
        return f"{self.operation}: {_short(self.sql, 60)}"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "decided by the database episode's reward")


class ShellCheck(BaseModel):
    """One stock check of an OS task's answer (AgentBench's)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["integer", "string", "size", "contains", "script"] = Field(
        description="integer, string (equal after stripping), size (bytes; 4K allowed), "
        "contains, or script (a bash check)"
    )
    expected: str | None = Field(
        default=None, description="the expected value, or null to take the reference's output"
    )
    script: str = Field(
        default="",
        description="for a script check: bash run on the final files, the answer as $1 and the "
        "expected value as $2; exit 0 passes",
    )


class OsCheckKey(AnswerKey):
    """An OS task's set-up, evaluation and reference solution (the OS-agent skill,
    AgentTuning's self-instruct): checked as a valid task when written; before the teacher's
    episode, the reference runs in a fresh set-up and its own answer must pass while an
    empty answer on the untouched files must not
    (:func:`~genteach.runtime.os_env.self_check`); the episode's reward is the evaluation
    of the teacher's answer on the files it leaves. It proves the answer passes the task's
    checks, not that the checks cover every wrong answer."""

    kind: Literal["os_check"] = "os_check"
    init: str = Field(
        default="",
        description="bash that creates the task's files in the working directory (no network, "
        "no sudo, no package installs)",
    )
    evaluation: Literal["match", "regex", "checks"] = Field(
        description="match: the exact answer; regex: a pattern the whole answer matches; "
        "checks: every check passes"
    )
    expected: str | None = Field(
        default=None, description="for match: the answer, or null to take the reference's output"
    )
    pattern: str = Field(default="", description="for regex: the Python regular expression")
    checks: list[ShellCheck] = Field(default_factory=list, description="for checks: the checks")
    reference: str = Field(min_length=2, description="a bash solution whose stdout is the answer")
    form: ClassVar[str] = "open"

    def os_task(self, description: str) -> Any:
        """The :class:`~genteach.runtime.os_env.OsTask` this key makes of ``description``.

        Raises:
            ValueError: the task is not valid (one line).
        """
        from genteach.runtime.os_env import OsCheck, OsTask

        return OsTask(
            description=description,
            evaluation=self.evaluation,
            init=self.init,
            expected=self.expected,
            pattern=self.pattern,
            checks=tuple(OsCheck(c.kind, c.expected, c.script) for c in self.checks),
            reference=self.reference,
        )

    def fit_task(self, instruction: str, source: str | None) -> str | None:
        try:
            self.os_task(instruction)
        except ValueError as exc:
            return str(exc)
        return None

    def summary(self, layout: Layout) -> str:
        return f"{self.evaluation}: {_short(self.reference, 60)}"

    def check(self, response: str, layout: Layout) -> Verification:
        return self.result("unchecked", None, "decided by the OS episode's evaluation")


#: genteach's key kinds.
BUILTIN_KEYS: tuple[type[AnswerKey], ...] = (
    ChoiceKey,
    ExactKey,
    NumericKey,
    EstimateKey,
    ListKey,
    OrderingKey,
    MatchingKey,
    LabelsKey,
    FreeTextKey,
    ConstraintsKey,
    FieldsKey,
    UnanswerableKey,
    ProgramTestsKey,
    EnvironmentKey,
    ToolOutcomeKey,
    CitedKey,
    WebGoalKey,
    TestSuiteKey,
    DbReferenceKey,
    OsCheckKey,
)


def kind_of(cls: type[AnswerKey]) -> str:
    """The ``kind`` literal of a key class."""
    default = cls.model_fields["kind"].default
    if not isinstance(default, str):
        raise TypeError(
            f"{cls.__name__}.kind needs a Literal default, e.g. kind: Literal['x'] = 'x'"
        )
    return default


class KeyKinds:
    """The key kinds a run knows: genteach's and any the user adds. Passed explicitly
    (no global registry).

    Example:
        >>> kinds = KeyKinds(extra=[MyKey])            # doctest: +SKIP
        >>> kinds.parse({"kind": "exact", "value": "1998"})
    """

    def __init__(self, extra: Iterable[type[AnswerKey]] = ()) -> None:
        self.by_kind: dict[str, type[AnswerKey]] = {}
        for cls in (*BUILTIN_KEYS, *extra):
            self.by_kind[kind_of(cls)] = cls

    def __contains__(self, kind: object) -> bool:
        return kind in self.by_kind

    def names(self) -> list[str]:
        return list(self.by_kind)

    def get(self, kind: str) -> type[AnswerKey]:
        try:
            return self.by_kind[kind]
        except KeyError:
            raise KeyError(
                f"unknown key kind {kind!r} (kinds: {', '.join(self.by_kind)})"
            ) from None

    def parse(self, data: dict[str, Any]) -> AnswerKey:
        """A key from its JSON form (``kind`` selects the class). Raises ValueError."""
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in self.by_kind:
            raise ValueError(f"key kind {kind!r} is not one of {', '.join(self.by_kind)}")
        try:
            return self.by_kind[kind].model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "key"
            raise ValueError(f"{kind} key: {loc}: {first['msg']}") from exc


__all__ = [
    "BUILTIN_KEYS",
    "CITATION_FIELDS",
    "LABEL_STYLES",
    "AnswerKey",
    "ChoiceKey",
    "CitedKey",
    "ConstraintsKey",
    "DbReferenceKey",
    "EnvironmentKey",
    "EstimateKey",
    "ExactKey",
    "FieldValue",
    "FieldsKey",
    "FreeTextKey",
    "Judgement",
    "KeyKinds",
    "KeyTools",
    "LabelsKey",
    "Layout",
    "ListKey",
    "MatchingKey",
    "NumericKey",
    "OrderingKey",
    "OsCheckKey",
    "Pair",
    "ProgramTestsKey",
    "ShellCheck",
    "Status",
    "Support",
    "TestSuiteKey",
    "TextFormat",
    "ToolOutcomeKey",
    "UnanswerableKey",
    "Verification",
    "WebGoalKey",
    "WebOutcome",
    "checked_steps",
    "code_set_fields",
    "count_words",
    "estimate_value",
    "failing_line",
    "final_answer",
    "grounded_in",
    "kind_of",
    "last_code_block",
    "longest_shared_run",
    "normalize",
    "parse_number",
    "public_view",
    "read_citations",
    "says_unsettled",
]
