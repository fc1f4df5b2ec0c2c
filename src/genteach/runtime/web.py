"""A simulated web site as an environment: the web-agent skill's material and its pages.

A :class:`WebSite` is a few pages of typed elements (headings, links, buttons, text boxes,
selects, checkboxes ...) with ids ``e1``, ``e2`` ... unique across the site, rendered as an
accessibility tree, one element per line. :class:`WebEnvironment` plays the browser: it
applies ``click``, ``type``, ``select`` and ``scroll`` actions to a :class:`WebState`,
shows the current page after each one, and when the agent answers or stops, scores the
episode with the task's check (usually :func:`check_goal` with a ``web_goal`` key's
fields). Everything is deterministic: no JavaScript, no HTML, no model calls. See
docs/web_environment.md.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genteach.material import Audience
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, Observation, StepResult

#: What an element is; only some roles act or hold a value.
Role = Literal[
    "heading", "text", "link", "button", "textbox", "select", "checkbox", "image", "listitem",
    "cell",
]  # fmt: skip
#: Roles that hold a value (a textbox's text, a select's option, checked/unchecked).
VALUE_ROLES: frozenset[str] = frozenset({"textbox", "select", "checkbox"})
#: Roles that may open a page (``href``).
LINK_ROLES: frozenset[str] = frozenset({"link", "button"})
#: Roles a click acts on.
CLICKABLE_ROLES: frozenset[str] = frozenset({"link", "button", "checkbox"})
#: The two values of a checkbox.
CHECKBOX_VALUES: tuple[str, str] = ("checked", "unchecked")
#: How a web episode ends well (the ``outcome`` of a ``web_goal`` key).
Outcome = Literal["submitted", "answered", "reached", "infeasible"]
OUTCOMES: tuple[str, ...] = ("submitted", "answered", "reached", "infeasible")

_ID_PATTERN = r"^e[0-9]+$"
_URL_PATTERN = r"^/[^\s]*$"

#: Templates: the site for agents and students, one page for the acting agent, the
#: environment's context before the format's instructions, and its first user turn.
SITE_TEMPLATE = "runtime/web/site.j2"
PAGE_TEMPLATE = "runtime/web/page.j2"
SYSTEM_TEMPLATE = "runtime/web/system.j2"
START_TEMPLATE = "runtime/web/start.j2"


# -- the site -----------------------------------------------------------------------------
class Element(BaseModel):
    """One element of a page, as an accessibility tree shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(
        json_schema_extra={"pattern": _ID_PATTERN},
        description='"e" and a number (e1, e2, ...), unique across the whole site',
    )
    role: Role = Field(
        description="heading, text, link, button, textbox, select, checkbox, image, listitem "
        "or cell"
    )
    name: str = Field(
        min_length=1,
        description="what the element shows: a heading's or text's words, a link's or "
        "button's label, a field's label, an image's alt text, a cell's content",
    )
    value: str = Field(
        default="",
        description="textbox: its current text (often empty); select: the chosen option; "
        'checkbox: "checked" or "unchecked"; other roles: empty',
    )
    options: tuple[str, ...] = Field(
        default=(), description="select only: its options (2 or more), in order; else []"
    )
    href: str = Field(
        default="",
        description="link or button only: the url of the site page it opens, or empty when "
        "it opens none",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.fullmatch(_ID_PATTERN, v):
            raise ValueError(f"element id {v!r} is not e followed by a number (e1, e2, ...)")
        return v

    @model_validator(mode="after")
    def _fits_role(self) -> Element:
        where = f"element {self.id} ({self.role})"
        if not self.name.strip():
            raise ValueError(f"{where} has an empty name")
        if self.role not in VALUE_ROLES and self.value:
            raise ValueError(f"{where} has a value; only textbox, select and checkbox hold one")
        if self.role != "select" and self.options:
            raise ValueError(f"{where} has options; only a select has options")
        if self.role not in LINK_ROLES and self.href:
            raise ValueError(f"{where} has an href; only a link or a button opens a page")
        if self.role == "select":
            if len(self.options) < 2:
                raise ValueError(f"{where} needs 2 or more options, it has {len(self.options)}")
            if len(set(self.options)) != len(self.options):
                raise ValueError(f"{where} lists an option twice")
            if self.value not in self.options:
                raise ValueError(
                    f"{where} has value {self.value!r}, which is not one of its options "
                    f"{list(self.options)}"
                )
        if self.role == "checkbox" and self.value not in CHECKBOX_VALUES:
            raise ValueError(f'{where} has value {self.value!r}; use "checked" or "unchecked"')
        return self


class WebPage(BaseModel):
    """One page of a site: its url, title and elements in reading order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(
        json_schema_extra={"pattern": _URL_PATTERN},
        description='the page\'s path on the site, starting with "/" (/, /cart, /orders/1042)',
    )
    title: str = Field(min_length=1, description="the page's title, as a browser tab shows it")
    elements: tuple[Element, ...] = Field(
        min_length=1, max_length=60, description="the page's elements in reading order (1-60)"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.fullmatch(_URL_PATTERN, v):
            raise ValueError(f'page url {v!r} must start with "/" and hold no spaces')
        return v


class WebSite(BaseModel):
    """A small web site: the web-agent skill's material.

    Agents that write and check tasks see every page (:meth:`render` for ``"agent"``); the
    student is shown the start page; the acting assistant sees only the current page, one
    action at a time (:class:`WebEnvironment`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["web_site"] = "web_site"
    title: str = Field(min_length=1, description="the site's name")
    start: str = Field(description="the url of the page a visitor lands on")
    pages: tuple[WebPage, ...] = Field(
        min_length=1, description="the site's pages; their element ids are unique site-wide"
    )

    @model_validator(mode="after")
    def _consistent(self) -> WebSite:
        urls: set[str] = set()
        for p in self.pages:
            if p.url in urls:
                raise ValueError(f"page url {p.url} occurs twice")
            urls.add(p.url)
        if self.start not in urls:
            raise ValueError(f"the start page {self.start!r} is not a page of the site")
        ids: dict[str, str] = {}
        for p in self.pages:
            for e in p.elements:
                if e.id in ids:
                    raise ValueError(
                        f"element id {e.id} occurs twice (pages {ids[e.id]} and {p.url})"
                    )
                ids[e.id] = p.url
                if e.href and e.href not in urls:
                    raise ValueError(
                        f"element {e.id} on {p.url} opens {e.href!r}, which is not a page of "
                        "the site (use a page url or an empty href)"
                    )
        return self

    def page(self, url: str) -> WebPage | None:
        """The page at ``url``, or ``None``."""
        return next((p for p in self.pages if p.url == url), None)

    def element(self, element_id: str) -> Element | None:
        """The element ``element_id`` of any page, or ``None``."""
        return next((e for p in self.pages for e in p.elements if e.id == element_id), None)

    def page_of(self, element_id: str) -> WebPage | None:
        """The page that holds element ``element_id``, or ``None``."""
        return next((p for p in self.pages if any(e.id == element_id for e in p.elements)), None)

    def reachable(self, start: str | None = None) -> set[str]:
        """The urls reachable from ``start`` (default: the site's start page) by clicking
        links and buttons, ``start`` included."""
        first = self.start if start is None else start
        if self.page(first) is None:
            return set()
        seen, todo = {first}, [first]
        while todo:
            page = self.page(todo.pop())
            assert page is not None
            for e in page.elements:
                if e.role in LINK_ROLES and e.href and e.href not in seen:
                    seen.add(e.href)
                    todo.append(e.href)
        return seen

    def values(self) -> dict[str, str]:
        """Element id -> value, for every textbox, select and checkbox as built."""
        return {e.id: e.value for p in self.pages for e in p.elements if e.role in VALUE_ROLES}

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        """Every page as an accessibility tree for agents; the start page for the student."""
        if audience == "agent":
            pages = list(self.pages)
        else:
            pages = [p for p in self.pages if p.url == self.start]
        return prompts.render(
            SITE_TEMPLATE,
            title=self.title,
            start=self.start,
            pages=[_page_view(p, p.elements) for p in pages],
            audience=audience,
        )

    def material(self) -> WebSite:
        return self


def _page_view(
    page: WebPage, elements: Iterable[Element], values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A page as the templates take it (values from ``values`` when given)."""
    values = values or {}
    return {
        "url": page.url,
        "title": page.title,
        "elements": [{**e.model_dump(), "value": values.get(e.id, e.value)} for e in elements],
    }


# -- the state and the task -----------------------------------------------------------------
@dataclass(frozen=True)
class Click:
    """One click: the element and every value as it was just before the click."""

    element: str
    values: dict[str, str]


@dataclass
class WebState:
    """Where an episode stands.

    Attributes:
        url: the current page.
        values: element id -> value, for every textbox, select and checkbox of the site
            (values persist across pages for the whole episode).
        clicks: every click in order, with the values just before it, so a check can tell
            whether a button was clicked after the values were set.
        scroll: the index of the first element shown on the current page.
        visited: the urls opened, in the order first opened (the start page first).
        seen: the ids of the elements shown to the agent so far.
    """

    url: str
    values: dict[str, str]
    clicks: list[Click] = field(default_factory=list)
    scroll: int = 0
    visited: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, site: WebSite, url: str | None = None) -> WebState:
        """The state on landing at ``url`` (default: the site's start page)."""
        first = site.start if url is None else url
        if site.page(first) is None:
            raise ValueError(f"{first!r} is not a page of the site {site.title!r}")
        return cls(url=first, values=site.values(), visited=[first])

    def clicked(self, element_id: str) -> list[Click]:
        """The clicks of ``element_id``, in order."""
        return [c for c in self.clicks if c.element == element_id]


#: Decides an ended episode: ``(site, final state, the answer or stop action) -> (passed,
#: detail)``. :func:`check_goal` with a key's fields bound is the usual one.
GoalCheck = Callable[[WebSite, WebState, Action], tuple[bool, str]]


@dataclass(frozen=True)
class WebTask:
    """A web-agent task.

    Attributes:
        goal: the user's request, as the assistant reads it.
        site: the site.
        start: the url the episode starts on.
        check: decides the reward when the agent answers or stops (:data:`GoalCheck`),
            e.g. ``functools.partial(check_goal, **key.goal())``.
    """

    goal: str
    site: WebSite
    start: str
    check: GoalCheck

    def __post_init__(self) -> None:
        if self.site.page(self.start) is None:
            raise ValueError(f"WebTask.start {self.start!r} is not a page of the site")


# -- the environment ------------------------------------------------------------------------
class WebEnvironment:
    """The browser over a :class:`WebSite`: deterministic, no model calls.

    ``click``, ``type``, ``select`` and ``scroll`` calls (``Action(kind="call", name=...,
    arguments={"element": "e3", "text": ..., "option": ..., "direction": ...})``) change
    the state and return a one-line result followed by the current page; a call that
    cannot apply (an element not on this page, typing into a button, an unknown option)
    returns an error line and leaves the state as it was. ``answer``, ``finish`` and
    ``fail`` end the episode: reward 1 when the task's check passes, else 0, with the
    check's detail in ``info``. :attr:`state` is kept after the episode for inspection.

    Args:
        prompts: renders the pages, the first turn and the context.
        page_size: the most elements shown at once (scrolling moves by this many).
        system_template: the context before the format's instructions; ``None``: none.
    """

    def __init__(
        self,
        prompts: PromptLibrary,
        *,
        page_size: int = 30,
        system_template: str | None = SYSTEM_TEMPLATE,
        start_template: str = START_TEMPLATE,
        page_template: str = PAGE_TEMPLATE,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be 1 or more, got {page_size}")
        self.prompts = prompts
        self.page_size = page_size
        self.system_template = system_template
        self.start_template = start_template
        self.page_template = page_template
        self.state: WebState | None = None
        self._task: WebTask | None = None

    def templates(self) -> list[str]:
        """Every template this environment renders."""
        own = [self.start_template, self.page_template]
        return own if self.system_template is None else [self.system_template, *own]

    async def reset(self, task: WebTask, *, seed: int | None = None) -> Observation:
        self._task = task
        self.state = WebState.start(task.site, task.start)
        system = ""
        if self.system_template is not None:
            system = self.prompts.render(self.system_template, site=task.site.title)
        text = self.prompts.render(self.start_template, goal=task.goal, page=self._page_text())
        return Observation(text=text, system=system)

    async def step(self, action: Action) -> StepResult:
        task, state = self._task, self.state
        if task is None or state is None:
            raise RuntimeError("WebEnvironment.step before reset")
        if action.kind in ("answer", "finish", "fail"):
            passed, detail = task.check(task.site, state, action)
            return StepResult(
                reward=1.0 if passed else 0.0,
                done=True,
                info={"passed": passed, "check": detail, "url": state.url},
            )
        if action.kind != "call":
            raise ValueError(f"WebEnvironment cannot step a {action.kind} action")
        handlers = {
            "click": self._click,
            "type": self._type,
            "select": self._select,
            "scroll": self._scroll,
        }
        handler = handlers.get(action.name)
        if handler is None:
            return _error(
                f"{action.name!r} is not an action; use click, type, select, scroll, answer or stop"
            )
        line = handler(task.site, state, action.arguments)
        if isinstance(line, StepResult):
            return line
        return StepResult(
            observation=f"{line}\n\n{self._page_text()}",
            info={"url": state.url, "action": action.name},
        )

    def admissible_actions(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- the actions: each returns the result line, or an error StepResult -----------------
    def _click(self, site: WebSite, state: WebState, args: Mapping[str, Any]) -> str | StepResult:
        target = self._target(site, state, args, "click")
        if isinstance(target, StepResult):
            return target
        e = target
        if e.role == "textbox":
            return _error(f'[{e.id}] is a textbox: type into it with type [{e.id}] "<text>"')
        if e.role == "select":
            return _error(
                f"[{e.id}] is a select: choose an option with select [{e.id}] "
                f'"<option>" (its options: {_quoted(e.options)})'
            )
        if e.role not in CLICKABLE_ROLES:
            return _error(
                f"[{e.id}] is {_a(e.role)} element, which does nothing when clicked; "
                + _valid(site, state, CLICKABLE_ROLES, "elements you can click")
            )
        state.clicks.append(Click(element=e.id, values=dict(state.values)))
        name = _q(e.name)
        if e.role == "checkbox":
            now = "unchecked" if state.values[e.id] == "checked" else "checked"
            state.values[e.id] = now
            return f"{now.capitalize()} [{e.id}] {name}."
        if e.href:
            self._open(state, e.href)
            return f"Clicked [{e.id}] {name} and opened {e.href}."
        return f"Clicked [{e.id}] {name}; the page did not change."

    def _type(self, site: WebSite, state: WebState, args: Mapping[str, Any]) -> str | StepResult:
        target = self._target(site, state, args, "type")
        if isinstance(target, StepResult):
            return target
        e = target
        if e.role != "textbox":
            return _error(
                f"[{e.id}] is {_a(e.role)}, not a textbox; "
                + _valid(site, state, {"textbox"}, "textboxes")
            )
        text = args.get("text")
        if not isinstance(text, str):
            return _error(f'type needs the text in double quotes: type [{e.id}] "<text>"')
        state.values[e.id] = text
        return f"Typed {_q(text)} into [{e.id}] {_q(e.name)}."

    def _select(self, site: WebSite, state: WebState, args: Mapping[str, Any]) -> str | StepResult:
        target = self._target(site, state, args, "select")
        if isinstance(target, StepResult):
            return target
        e = target
        if e.role != "select":
            return _error(
                f"[{e.id}] is {_a(e.role)}, not a select; "
                + _valid(site, state, {"select"}, "selects")
            )
        wanted = args.get("option")
        option = None
        if isinstance(wanted, str):
            option = next((o for o in e.options if _fold(o) == _fold(wanted)), None)
        if option is None:
            return _error(
                f"[{e.id}] {_q(e.name)} has no option {_q(str(wanted or ''))}; its options are "
                f"{_quoted(e.options)}"
            )
        state.values[e.id] = option
        return f"Selected {_q(option)} in [{e.id}] {_q(e.name)}."

    def _scroll(self, site: WebSite, state: WebState, args: Mapping[str, Any]) -> str | StepResult:
        direction = args.get("direction")
        if direction not in ("up", "down"):
            return _error(f"scroll takes up or down, not {_q(str(direction or ''))}")
        total = len(self._page(site, state).elements)
        size = self.page_size
        if total <= size:
            return _error(f"the whole page is shown ({total} elements); there is nothing to scroll")
        if direction == "down":
            if state.scroll + size >= total:
                return _error(
                    f"already at the bottom of the page ({self._span(state, total)}); "
                    "scroll up to see the rest"
                )
            state.scroll += size
        else:
            if state.scroll == 0:
                return _error(
                    f"already at the top of the page ({self._span(state, total)}); "
                    "scroll down to see the rest"
                )
            state.scroll = max(0, state.scroll - size)
        return f"Scrolled {direction}: {self._span(state, total)} are shown."

    # -- helpers ---------------------------------------------------------------------------
    def _target(
        self, site: WebSite, state: WebState, args: Mapping[str, Any], verb: str
    ) -> Element | StepResult:
        """The element an action names, if it is on the current page."""
        element_id = args.get("element")
        if not isinstance(element_id, str) or not element_id:
            return _error(f"{verb} needs an element id in square brackets, such as {verb} [e2]")
        page = self._page(site, state)
        e = next((x for x in page.elements if x.id == element_id), None)
        if e is None:
            roles = {"click": CLICKABLE_ROLES, "type": {"textbox"}, "select": {"select"}}[verb]
            what = {
                "click": "elements you can click",
                "type": "textboxes",
                "select": "selects",
            }[verb]
            return _error(
                f"[{element_id}] is not on this page ({page.url}); "
                + _valid(site, state, roles, what)
            )
        return e

    def _page(self, site: WebSite, state: WebState) -> WebPage:
        page = site.page(state.url)
        assert page is not None
        return page

    def _open(self, state: WebState, url: str) -> None:
        state.url, state.scroll = url, 0
        if url not in state.visited:
            state.visited.append(url)

    def _span(self, state: WebState, total: int) -> str:
        last = min(state.scroll + self.page_size, total)
        return f"elements {state.scroll + 1}-{last} of {total}"

    def _page_text(self) -> str:
        """The current page's visible part, as the acting agent sees it."""
        assert self._task is not None and self.state is not None
        state = self.state
        page = self._page(self._task.site, state)
        total = len(page.elements)
        shown = page.elements[state.scroll : state.scroll + self.page_size]
        state.seen.update(e.id for e in shown)
        return self.prompts.render(
            self.page_template,
            page=_page_view(page, shown, state.values),
            first=state.scroll + 1,
            last=state.scroll + len(shown),
            total=total,
        )


def _error(line: str) -> StepResult:
    return StepResult(observation=line, error=True, info={"error": line})


def _valid(site: WebSite, state: WebState, roles: Iterable[str], noun: str) -> str:
    """Which elements of the current page have ``roles``, or that there are none."""
    wanted = set(roles)
    page = site.page(state.url)
    assert page is not None
    ids = [e.id for e in page.elements if e.role in wanted]
    if not ids:
        return f"this page has no {noun}"
    return f"the {noun} here are {', '.join(ids)}"


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _q(text: str) -> str:
    """``text`` in double quotes, as the accessibility tree and the actions write it."""
    return json.dumps(text, ensure_ascii=False)


def _quoted(options: Iterable[str]) -> str:
    return ", ".join(_q(o) for o in options)


# -- the goal -------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_TOKEN = re.compile(rf"{_NUMBER.pattern}|\w+")
#: Words a stop reason need not repeat when it names what is missing.
_FILLER = frozenset({"a", "an", "the", "of", "your", "my", "their", "for", "to", "and", "or"})


def _fold(text: str) -> str:
    """A field value for comparison: NFKC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _tokens(text: str) -> list[str | float]:
    """Words and numbers of ``text`` (case, punctuation and spacing ignored; numbers as
    numbers, thousands separators dropped)."""
    out: list[str | float] = []
    for tok in _TOKEN.findall(_fold(text)):
        if _NUMBER.fullmatch(tok):
            out.append(float(tok.replace(",", "")))
        else:
            out.extend(w for w in tok.split("_") if w)
    return out


def _same(a: str | float, b: str | float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def contains_answer(text: str, answer: str) -> bool:
    """Whether ``text`` contains ``answer`` as a run of words, case, punctuation and spacing
    aside, numbers compared as numbers ("42.5 eur" contains "42.50 EUR")."""
    have, want = _tokens(text), _tokens(answer)
    if not want:
        return False
    n = len(want)
    return any(
        all(_same(x, y) for x, y in zip(have[i : i + n], want, strict=True))
        for i in range(len(have) - n + 1)
    )


def names_missing(reason: str, missing: str) -> bool:
    """Whether a stop ``reason`` names ``missing``: every word of it (filler words aside;
    a plural "s" ignored) occurs in the reason ("delivery date" is named by "the date of
    delivery")."""
    want = [w for w in _tokens(missing) if w not in _FILLER] or _tokens(missing)
    have = [_stem(w) for w in _tokens(reason)]
    return bool(want) and all(any(_same(_stem(w), h) for h in have) for w in want)


def _stem(word: str | float) -> str | float:
    """``word`` without a plural "s" (words of four letters or more)."""
    if isinstance(word, str) and len(word) > 3 and word.endswith("s"):
        return word[:-1]
    return word


def check_goal(
    site: WebSite,
    state: WebState,
    final: Action,
    *,
    outcome: str,
    values: Mapping[str, str] | None = None,
    submit: str = "",
    page: str = "",
    answer: str = "",
    evidence: str = "",
    missing: str = "",
) -> tuple[bool, str]:
    """Whether an ended episode reached a ``web_goal`` key's end state, and why not.

    Every outcome: each of ``values`` holds at the end (text compared without case and
    surrounding spaces). Then per outcome: ``submitted``: the episode stopped, and
    ``submit`` was clicked at a moment when every value held; ``answered``: the final
    answer contains ``answer`` (case, punctuation, spacing aside; numbers as numbers) and
    the ``evidence`` element was shown to the agent; ``reached``: the episode stopped on
    ``page``; ``infeasible``: the episode stopped without ever clicking ``submit``, and the
    stop reason names ``missing``.

    Args:
        site: the site.
        state: the state the episode left.
        final: the action that ended it (``answer``; ``finish`` or ``fail`` for a stop).
        outcome / values / submit / page / answer / evidence / missing: the key's fields.

    Returns:
        ``(passed, detail)``: the detail says what failed, or what was reached.
    """
    wanted = dict(values or {})
    stopped = final.kind in ("finish", "fail")
    if outcome == "answered" and final.kind != "answer":
        return False, "the episode ended with stop; the goal needs an answer"
    if outcome != "answered" and not stopped:
        return False, f"the episode ended with an answer; the goal ({outcome}) needs stop"
    for element_id, value in wanted.items():
        held = state.values.get(element_id)
        if held is None:
            return False, f"{element_id} is not a field of the site"
        if _fold(held) != _fold(value):
            return False, f"{element_id} holds {_q(held)}, the goal needs {_q(value)}"
    if outcome == "submitted":
        if not submit:
            return False, "the goal names no submit button"
        clicks = state.clicked(submit)
        if not clicks:
            return False, f"{submit} was never clicked"
        if not any(_holds(c.values, wanted) for c in clicks):
            return False, f"{submit} was never clicked after the values were set"
        return True, f"{submit} was clicked after the values were set, then the episode stopped"
    if outcome == "answered":
        if not contains_answer(final.text, answer):
            return False, f"the answer {_q(final.text)} does not contain {_q(answer)}"
        if evidence and evidence not in state.seen:
            where = site.page_of(evidence)
            url = where.url if where is not None else "?"
            return False, f"the answer's element {evidence} (on {url}) was never shown"
        return True, f"the answer contains {_q(answer)}"
    if outcome == "reached":
        if state.url != page:
            return False, f"the episode ended on {state.url}, the goal is {page}"
        return True, f"the episode ended on {page}"
    if outcome == "infeasible":
        if submit and state.clicked(submit):
            return False, f"{submit} was clicked; the request lacks {_q(missing)}"
        if not names_missing(final.text, missing):
            return False, f"the stop reason does not name the missing value {_q(missing)}"
        return True, f"the episode stopped naming the missing value {_q(missing)}"
    return False, f"unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}"


def _holds(held: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(_fold(held.get(k, "")) == _fold(v) for k, v in wanted.items())


def check_goal_fits(
    site: WebSite,
    *,
    start: str | None = None,
    outcome: str,
    values: Mapping[str, str] | None = None,
    submit: str = "",
    page: str = "",
    answer: str = "",
    evidence: str = "",
    missing: str = "",
) -> str | None:
    """Whether a ``web_goal`` key fits its site, checked when the task is written.

    It checks that each id exists on a page reachable from ``start`` and has a role that
    fits (values only on textboxes, selects and checkboxes; an option of the select;
    checked/unchecked; ``submit`` a button), that ``page`` is reachable, that ``answer``
    occurs in the ``evidence`` element's name or value, and that the outcome has the
    fields it needs and leaves the others empty.

    Args:
        site: the site.
        start: the url the episode starts on (default: the site's start page).
        outcome / values / submit / page / answer / evidence / missing: the key's fields.

    Returns:
        ``None`` when the key fits; else every problem, joined by "; ", in words a writer
        can act on.
    """
    first = site.start if start is None or start == "" else start
    if outcome not in OUTCOMES:
        return f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}"
    if site.page(first) is None:
        return f"start {first!r} is not a page of the site"
    reach = site.reachable(first)
    problems: list[str] = []
    wanted = dict(values or {})

    def located(element_id: str, what: str) -> Element | None:
        e = site.element(element_id)
        if e is None:
            problems.append(f"{what} {element_id!r} is not an element of the site")
            return None
        where = site.page_of(element_id)
        if where is not None and where.url not in reach:
            problems.append(
                f"{what} {element_id} is on {where.url}, which no link or button leads to "
                f"from {first}"
            )
        return e

    for element_id, value in wanted.items():
        e = located(element_id, "value element")
        if e is None:
            continue
        if e.role not in VALUE_ROLES:
            problems.append(
                f"{element_id} is {_a(e.role)}; only textbox, select and checkbox elements "
                "hold values"
            )
        elif e.role == "select" and not any(_fold(o) == _fold(value) for o in e.options):
            problems.append(
                f"{element_id} has no option {_q(value)}; its options are {_quoted(e.options)}"
            )
        elif e.role == "checkbox" and value not in CHECKBOX_VALUES:
            problems.append(f'{element_id} is a checkbox: its value is "checked" or "unchecked"')
    if submit:
        e = located(submit, "submit")
        if e is not None and e.role != "button":
            problems.append(f"submit {submit} is {_a(e.role)}; it must be a button")
    if page:
        if site.page(page) is None:
            problems.append(f"page {page!r} is not a page of the site")
        elif page not in reach:
            problems.append(f"page {page} cannot be reached from {first} by links or buttons")
    if evidence:
        e = located(evidence, "evidence")
        if e is not None and answer and not contains_answer(f"{e.name} {e.value}", answer):
            problems.append(
                f"the answer {_q(answer)} does not occur in evidence {evidence} {_q(e.name)}"
            )

    needs = {
        "submitted": ("submit",),
        "answered": ("answer", "evidence"),
        "reached": ("page",),
        "infeasible": ("missing",),
    }[outcome]
    given = dict(submit=submit, page=page, answer=answer, evidence=evidence, missing=missing)
    for name in needs:
        if not given[name].strip():
            problems.append(f"outcome {outcome} needs {name}")
    unused = {
        "submitted": ("page", "answer", "evidence", "missing"),
        "answered": ("submit", "page", "missing"),
        "reached": ("submit", "answer", "evidence", "missing"),
        "infeasible": ("page", "answer", "evidence"),
    }[outcome]
    for name in unused:
        if given[name]:
            problems.append(f"outcome {outcome} uses no {name}: leave it empty")
    if outcome == "submitted":
        if not wanted:
            problems.append("outcome submitted needs at least one value to set")
        elif _holds(site.values(), wanted):
            problems.append(
                "every value already holds on the site as built: the goal must change one"
            )
    if outcome == "reached" and page and page == first:
        problems.append(f"page {page} is the start page: the goal asks for no navigation")
    return "; ".join(problems) or None


__all__ = [
    "CHECKBOX_VALUES",
    "CLICKABLE_ROLES",
    "LINK_ROLES",
    "OUTCOMES",
    "PAGE_TEMPLATE",
    "SITE_TEMPLATE",
    "START_TEMPLATE",
    "SYSTEM_TEMPLATE",
    "VALUE_ROLES",
    "Click",
    "Element",
    "GoalCheck",
    "Outcome",
    "Role",
    "WebEnvironment",
    "WebPage",
    "WebSite",
    "WebState",
    "WebTask",
    "check_goal",
    "check_goal_fits",
    "contains_answer",
    "names_missing",
]
