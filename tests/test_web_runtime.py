"""The web-page simulator: the site model and its validation, rendering, every action and
error of the environment, the goal checks (at the end of an episode and when a key is
written), the web action format (parse, write, grammar, templates), and whole episodes
with a scripted model."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

from constrained import decoder
from genteach import ScriptedModel
from genteach.agents import ParseError
from genteach.material import Material
from genteach.models.base import Completion, message
from genteach.prompts import PromptLibrary
from genteach.runtime import (
    Action,
    EpisodeSettings,
    Observation,
    StepResult,
    TurnContext,
    run_episode,
)
from genteach.runtime.formats.web import VERBS, WebFormat
from genteach.runtime.web import (
    Click,
    Element,
    WebEnvironment,
    WebPage,
    WebSite,
    WebState,
    WebTask,
    check_goal,
    check_goal_fits,
    contains_answer,
    names_missing,
)

PROMPTS = PromptLibrary()
CTX = TurnContext()
FMT = WebFormat()


def _boots() -> list[dict[str, Any]]:
    items = [
        {"id": f"e{i}", "role": "listitem", "name": f"Boot model {i - 10}"} for i in range(11, 54)
    ]
    return [
        {"id": "e10", "role": "heading", "name": "Hiking boots"},
        *items,
        {"id": "e54", "role": "link", "name": "Back to home", "href": "/"},
    ]


SITE_DATA: dict[str, Any] = {
    "title": "Northwind Outfitters",
    "start": "/",
    "pages": [
        {
            "url": "/",
            "title": "Home",
            "elements": [
                {"id": "e1", "role": "heading", "name": "Northwind Outfitters"},
                {"id": "e2", "role": "link", "name": "Hiking boots", "href": "/boots"},
                {"id": "e3", "role": "textbox", "name": "Search products", "value": ""},
                {"id": "e4", "role": "button", "name": "Search", "href": "/search"},
                {
                    "id": "e5",
                    "role": "select",
                    "name": "Sort by",
                    "options": ["Price", "Rating"],
                    "value": "Price",
                },
                {"id": "e6", "role": "checkbox", "name": "In stock only", "value": "unchecked"},
                {"id": "e7", "role": "text", "name": "Free delivery over 50 EUR"},
                {"id": "e8", "role": "link", "name": "Contact us", "href": "/contact"},
                {"id": "e9", "role": "link", "name": "My orders", "href": "/orders"},
            ],
        },
        {"url": "/boots", "title": "Boots", "elements": _boots()},
        {
            "url": "/search",
            "title": "Search",
            "elements": [{"id": "e60", "role": "heading", "name": "Search results"}],
        },
        {
            "url": "/contact",
            "title": "Contact",
            "elements": [
                {"id": "e70", "role": "heading", "name": "Contact"},
                {"id": "e71", "role": "textbox", "name": "Full name", "value": ""},
                {"id": "e72", "role": "textbox", "name": "Email", "value": ""},
                {
                    "id": "e73",
                    "role": "select",
                    "name": "Topic",
                    "options": ["Order", "Returns", "Other"],
                    "value": "Order",
                },
                {"id": "e74", "role": "checkbox", "name": "Send me a copy", "value": "unchecked"},
                {"id": "e75", "role": "button", "name": "Send", "href": "/thanks"},
                {"id": "e76", "role": "button", "name": "Clear"},
            ],
        },
        {
            "url": "/thanks",
            "title": "Thank you",
            "elements": [{"id": "e80", "role": "text", "name": "We will reply within 2 days."}],
        },
        {
            "url": "/orders",
            "title": "Orders",
            "elements": [
                {"id": "e90", "role": "heading", "name": "Your orders"},
                {"id": "e91", "role": "cell", "name": "Order 4521"},
                {"id": "e92", "role": "cell", "name": "Total: 1,042.50 EUR"},
                {"id": "e93", "role": "link", "name": "Home", "href": "/"},
            ],
        },
        {
            "url": "/staff",
            "title": "Staff",
            "elements": [
                {"id": "e95", "role": "heading", "name": "Staff only"},
                {"id": "e96", "role": "button", "name": "Approve"},
            ],
        },
    ],
}
SITE = WebSite.model_validate(SITE_DATA)

SMALL = WebSite.model_validate(
    {
        "title": "Tide Power Portal",
        "start": "/",
        "pages": [
            {
                "url": "/",
                "title": "Home",
                "elements": [
                    {"id": "e1", "role": "heading", "name": 'The "Rance" barrage'},
                    {"id": "e2", "role": "link", "name": "Tariffs", "href": "/tariffs"},
                    {"id": "e3", "role": "textbox", "name": "Meter number", "value": "A-7"},
                    {
                        "id": "e4",
                        "role": "select",
                        "name": "Plan",
                        "options": ["Basic", "Green"],
                        "value": "Basic",
                    },
                    {"id": "e5", "role": "checkbox", "name": "Paper bills", "value": "checked"},
                    {"id": "e6", "role": "button", "name": "Save"},
                    {"id": "e7", "role": "image", "name": "Barrage at dusk"},
                ],
            },
            {
                "url": "/tariffs",
                "title": "Tariffs",
                "elements": [{"id": "e8", "role": "cell", "name": "Green: 0.31 EUR/kWh"}],
            },
        ],
    }
)


def site_with(**changes: Any) -> dict[str, Any]:
    """A copy of SMALL's data with the home page's elements replaced or extended."""
    data = SMALL.model_dump()
    for key, value in changes.items():
        data[key] = value
    return data


def home(*elements: dict[str, Any]) -> dict[str, Any]:
    data = SMALL.model_dump()
    data["pages"][0]["elements"] = list(elements)
    return data


def text(s: str) -> Completion:
    return Completion(text=s)


def call(name: str, **arguments: str) -> Action:
    return Action(kind="call", name=name, arguments=arguments)


def always(site: WebSite, state: WebState, final: Action) -> tuple[bool, str]:
    return True, "ok"


# -- the site ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            home({"id": "x1", "role": "text", "name": "a"}),
            "element id 'x1' is not e followed by a number",
        ),
        (
            home(
                {"id": "e1", "role": "text", "name": "a"}, {"id": "e1", "role": "text", "name": "b"}
            ),
            r"element id e1 occurs twice \(pages / and /\)",
        ),
        (
            home({"id": "e8", "role": "text", "name": "a"}),
            r"element id e8 occurs twice \(pages / and /tariffs\)",
        ),
        (
            home({"id": "e1", "role": "link", "name": "a", "href": "/nowhere"}),
            "element e1 on / opens '/nowhere', which is not a page of the site",
        ),
        (
            home({"id": "e1", "role": "select", "name": "a", "options": ["x", "y"], "value": "z"}),
            r"element e1 \(select\) has value 'z', which is not one of its options \['x', 'y'\]",
        ),
        (
            home({"id": "e1", "role": "select", "name": "a", "options": ["x"], "value": "x"}),
            r"element e1 \(select\) needs 2 or more options, it has 1",
        ),
        (
            home({"id": "e1", "role": "select", "name": "a", "options": [], "value": ""}),
            r"element e1 \(select\) needs 2 or more options, it has 0",
        ),
        (
            home({"id": "e1", "role": "select", "name": "a", "options": ["x", "x"], "value": "x"}),
            r"element e1 \(select\) lists an option twice",
        ),
        (
            home({"id": "e1", "role": "checkbox", "name": "a", "value": "yes"}),
            r"element e1 \(checkbox\) has value 'yes'; use \"checked\" or \"unchecked\"",
        ),
        (
            home({"id": "e1", "role": "heading", "name": "a", "value": "x"}),
            r"element e1 \(heading\) has a value; only textbox, select and checkbox hold one",
        ),
        (
            home({"id": "e1", "role": "textbox", "name": "a", "options": ["x", "y"]}),
            r"element e1 \(textbox\) has options; only a select has options",
        ),
        (
            home({"id": "e1", "role": "text", "name": "a", "href": "/"}),
            r"element e1 \(text\) has an href; only a link or a button opens a page",
        ),
        (
            home({"id": "e1", "role": "text", "name": "  "}),
            r"element e1 \(text\) has an empty name",
        ),
        (home({"id": "e1", "role": "widget", "name": "a"}), "role"),
        (home(), "at least 1 item"),
        (
            home(*({"id": f"e{i}", "role": "text", "name": "a"} for i in range(10, 71))),
            "at most 60 items",
        ),
        (site_with(start="/cart"), "the start page '/cart' is not a page of the site"),
        (site_with(pages=[]), "at least 1 item"),
        (
            site_with(
                pages=[SMALL.pages[1].model_dump(), SMALL.pages[1].model_dump()], start="/tariffs"
            ),
            "page url /tariffs occurs twice",
        ),
        (
            site_with(pages=[{**SMALL.pages[1].model_dump(), "url": "tariffs"}], start="tariffs"),
            "page url 'tariffs' must start with \"/\" and hold no spaces",
        ),
        ({**SMALL.model_dump(), "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_sites_are_refused_naming_the_element_or_page(
    data: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        WebSite.model_validate(data)


def test_site_schema_carries_descriptions_and_the_id_pattern() -> None:
    schema = WebSite.model_json_schema()
    element = schema["$defs"]["Element"]
    assert element["properties"]["id"]["pattern"] == "^e[0-9]+$"
    assert "unique across the whole site" in element["properties"]["id"]["description"]
    assert element["additionalProperties"] is False
    assert set(element["properties"]["role"]["enum"]) == {
        "heading", "text", "link", "button", "textbox", "select", "checkbox", "image",
        "listitem", "cell",
    }  # fmt: skip
    assert schema["$defs"]["WebPage"]["properties"]["elements"]["maxItems"] == 60
    assert schema["properties"]["kind"]["const"] == "web_site"


def test_site_is_material_and_renders_for_agents_and_students() -> None:
    assert isinstance(SMALL, Material)
    assert (SMALL.kind, SMALL.title) == ("web_site", "Tide Power Portal")
    home_page = (
        "Page: Home (/)\n"
        '[e1] heading "The \\"Rance\\" barrage"\n'
        '[e2] link "Tariffs" -> /tariffs\n'
        '[e3] textbox "Meter number" value="A-7"\n'
        '[e4] select "Plan" options=["Basic", "Green"] value="Basic"\n'
        '[e5] checkbox "Paper bills" checked\n'
        '[e6] button "Save"\n'
        '[e7] image "Barrage at dusk"'
    )
    assert SMALL.render(PROMPTS, "agent") == (
        "Web site: Tide Power Portal (start page: /; 2 pages)\n\n"
        + home_page
        + '\n\nPage: Tariffs (/tariffs)\n[e8] cell "Green: 0.31 EUR/kWh"'
    )
    assert SMALL.render(PROMPTS, "student") == home_page


def test_site_helpers_find_elements_pages_and_reachable_urls() -> None:
    assert SITE.element("e73") == Element(
        id="e73", role="select", name="Topic", options=("Order", "Returns", "Other"), value="Order"
    )
    assert SITE.element("e999") is None
    page = SITE.page_of("e75")
    assert isinstance(page, WebPage) and page.url == "/contact"
    assert SITE.page_of("e999") is None
    assert SITE.reachable() == {"/", "/boots", "/search", "/contact", "/thanks", "/orders"}
    assert SITE.reachable("/thanks") == {"/thanks"}
    assert SITE.reachable("/orders") == {"/orders", "/", "/boots", "/search", "/contact", "/thanks"}
    assert SITE.reachable("/nowhere") == set()
    assert SITE.values()["e73"] == "Order"
    assert SITE.material() is SITE


# -- the environment -----------------------------------------------------------------------
async def env_at(url: str = "/", site: WebSite = SITE, **kwargs: Any) -> WebEnvironment:
    env = WebEnvironment(PROMPTS, **kwargs)
    await env.reset(WebTask(goal="Do it.", site=site, start=url, check=always))
    return env


async def test_reset_shows_the_request_and_the_start_page() -> None:
    env = WebEnvironment(PROMPTS)
    first = await env.reset(
        WebTask(goal="Switch my plan to Green.", site=SMALL, start="/", check=always)
    )
    assert first.system == (
        'You are a web agent working in a browser on the web site "Tide Power Portal" for a '
        "user, who asks you to do something on the site or to find something out from it."
    )
    assert first.text == (
        "The user's request: Switch my plan to Green.\n\nThe browser shows:\n\n"
        + SMALL.render(PROMPTS, "student")
    )
    assert first.tools == ()
    assert env.state == WebState(
        url="/",
        values={"e3": "A-7", "e4": "Basic", "e5": "checked"},
        visited=["/"],
        seen={f"e{i}" for i in range(1, 8)},
    )
    assert env.admissible_actions() is None
    assert WebEnvironment(PROMPTS, system_template=None).templates() == [
        "runtime/web/start.j2",
        "runtime/web/page.j2",
    ]
    no_context = WebEnvironment(PROMPTS, system_template=None)
    again = await no_context.reset(WebTask(goal="x", site=SMALL, start="/tariffs", check=always))
    assert again.system == ""
    assert again.text.endswith('Page: Tariffs (/tariffs)\n[e8] cell "Green: 0.31 EUR/kWh"')
    await env.close()


async def test_each_action_changes_the_state_and_shows_the_page() -> None:
    env = await env_at()
    r = await env.step(call("type", element="e3", text="trail shoes"))
    assert not r.error and not r.done and r.reward == 0.0
    assert r.observation.startswith(
        'Typed "trail shoes" into [e3] "Search products".\n\nPage: Home (/)\n'
    )
    assert '[e3] textbox "Search products" value="trail shoes"' in r.observation
    r = await env.step(call("select", element="e5", option="rating"))  # case does not matter
    assert r.observation.startswith('Selected "Rating" in [e5] "Sort by".')
    assert 'options=["Price", "Rating"] value="Rating"' in r.observation
    r = await env.step(call("click", element="e6"))
    assert r.observation.startswith('Checked [e6] "In stock only".')
    assert '[e6] checkbox "In stock only" checked' in r.observation
    r = await env.step(call("click", element="e6"))
    assert r.observation.startswith('Unchecked [e6] "In stock only".')
    r = await env.step(call("click", element="e8"))
    assert r.observation.startswith(
        'Clicked [e8] "Contact us" and opened /contact.\n\nPage: Contact (/contact)'
    )
    r = await env.step(call("click", element="e76"))
    assert r.observation.startswith(
        'Clicked [e76] "Clear"; the page did not change.\n\nPage: Contact'
    )
    state = env.state
    assert state is not None
    assert state.url == "/contact" and state.visited == ["/", "/contact"]
    assert state.values["e3"] == "trail shoes"  # values persist across pages
    assert [c.element for c in state.clicks] == ["e6", "e6", "e8", "e76"]
    assert state.clicks[0] == Click(
        element="e6",
        values={**SITE.values(), "e3": "trail shoes", "e5": "Rating"},  # before the click
    )
    assert state.clicks[1].values["e6"] == "checked"


async def test_a_long_page_is_shown_thirty_elements_at_a_time() -> None:
    env = await env_at("/boots")
    first = await env.reset(WebTask(goal="g", site=SITE, start="/boots", check=always))
    assert first.text.endswith(
        '[e39] listitem "Boot model 29"\n(elements 1-30 of 45; scroll down for more)'
    )
    r = await env.step(call("scroll", direction="down"))
    assert r.observation.split("\n")[0] == "Scrolled down: elements 31-45 of 45 are shown."
    assert r.observation.endswith(
        '[e54] link "Back to home" -> /\n(elements 31-45 of 45; scroll up for more)'
    )
    assert "[e40]" in r.observation and "[e39]" not in r.observation
    assert env.state is not None and "e54" in env.state.seen
    r = await env.step(call("scroll", direction="down"))
    assert r.error
    assert r.observation == (
        "already at the bottom of the page (elements 31-45 of 45); scroll up to see the rest"
    )
    r = await env.step(call("scroll", direction="up"))
    assert r.observation.startswith("Scrolled up: elements 1-30 of 45 are shown.")
    assert r.observation.endswith("(elements 1-30 of 45; scroll down for more)")
    r = await env.step(call("scroll", direction="up"))
    assert r.error and r.observation.startswith("already at the top of the page")
    # an element out of the window can still be acted on; opening a page resets the scroll
    await env.step(call("scroll", direction="down"))
    r = await env.step(call("click", element="e54"))
    assert env.state.scroll == 0 and env.state.url == "/"
    middle = await (await env_at("/boots", page_size=10)).step(call("scroll", direction="down"))
    assert middle.observation.endswith("(elements 11-20 of 45; scroll up or down for more)")


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (
            call("click", element="e75"),
            "[e75] is not on this page (/); the elements you can click here are e2, e4, e6, e8, e9",
        ),
        (call("click"), "click needs an element id in square brackets, such as click [e2]"),
        (
            call("click", element="e7"),
            "[e7] is a text element, which does nothing when clicked; the elements you can "
            "click here are e2, e4, e6, e8, e9",
        ),
        (call("click", element="e3"), '[e3] is a textbox: type into it with type [e3] "<text>"'),
        (
            call("click", element="e5"),
            '[e5] is a select: choose an option with select [e5] "<option>" (its options: '
            '"Price", "Rating")',
        ),
        (
            call("type", element="e2", text="x"),
            "[e2] is a link, not a textbox; the textboxes here are e3",
        ),
        (call("type", element="e3"), 'type needs the text in double quotes: type [e3] "<text>"'),
        (
            call("type", element="e71", text="x"),
            "[e71] is not on this page (/); the textboxes here are e3",
        ),
        (
            call("select", element="e5", option="Cheapest"),
            '[e5] "Sort by" has no option "Cheapest"; its options are "Price", "Rating"',
        ),
        (
            call("select", element="e5"),
            '[e5] "Sort by" has no option ""; its options are "Price", "Rating"',
        ),
        (
            call("select", element="e6", option="x"),
            "[e6] is a checkbox, not a select; the selects here are e5",
        ),
        (call("scroll", direction="left"), 'scroll takes up or down, not "left"'),
        (
            call("scroll", direction="down"),
            "the whole page is shown (9 elements); there is nothing to scroll",
        ),
        (
            call("hover", element="e2"),
            "'hover' is not an action; use click, type, select, scroll, answer or stop",
        ),
    ],
)
async def test_invalid_actions_are_errors_that_leave_the_state_unchanged(
    action: Action, error: str
) -> None:
    env = await env_at()
    before = env.state
    assert before is not None
    snapshot = (before.url, dict(before.values), list(before.clicks), before.scroll)
    r = await env.step(action)
    assert r == StepResult(observation=error, error=True, info={"error": error})
    assert (before.url, before.values, before.clicks, before.scroll) == snapshot


async def test_errors_say_when_the_page_has_no_element_of_the_kind() -> None:
    env = await env_at("/thanks")
    r = await env.step(call("type", element="e3", text="x"))
    assert r.observation == "[e3] is not on this page (/thanks); this page has no textboxes"


async def test_answer_and_stop_end_the_episode_with_the_checks_verdict() -> None:
    seen: list[tuple[str, str]] = []

    def check(site: WebSite, state: WebState, final: Action) -> tuple[bool, str]:
        seen.append((state.url, final.text))
        return final.text == "yes", f"said {final.text}"

    env = WebEnvironment(PROMPTS)
    await env.reset(WebTask(goal="g", site=SMALL, start="/", check=check))
    r = await env.step(Action(kind="answer", text="yes"))
    assert r == StepResult(
        reward=1.0, done=True, info={"passed": True, "check": "said yes", "url": "/"}
    )
    r = await env.step(Action(kind="finish", text="no"))
    assert (r.reward, r.done, r.info["check"]) == (0.0, True, "said no")
    assert seen == [("/", "yes"), ("/", "no")]
    with pytest.raises(ValueError, match="cannot step a tool_calls action"):
        await env.step(Action(kind="tool_calls"))


async def test_misuse_is_refused() -> None:
    with pytest.raises(RuntimeError, match="step before reset"):
        await WebEnvironment(PROMPTS).step(call("scroll", direction="down"))
    with pytest.raises(ValueError, match="page_size must be 1 or more"):
        WebEnvironment(PROMPTS, page_size=0)
    with pytest.raises(ValueError, match=r"WebTask\.start '/cart' is not a page of the site"):
        WebTask(goal="g", site=SMALL, start="/cart", check=always)
    with pytest.raises(ValueError, match="'/cart' is not a page of the site 'Tide Power Portal'"):
        WebState.start(SMALL, "/cart")


# -- the goal at the end of an episode -----------------------------------------------------
def state_after(*actions: Action, url: str = "/") -> WebState:
    async def run() -> WebState:
        env = await env_at(url)
        for a in actions:
            r = await env.step(a)
            assert not r.error, r.observation
        assert env.state is not None
        return env.state

    return asyncio.run(run())


FORM = {
    "outcome": "submitted",
    "values": {"e71": "Ada Lovelace", "e73": "Returns"},
    "submit": "e75",
}
FILLED = (
    call("click", element="e8"),
    call("type", element="e71", text="Ada Lovelace"),
    call("select", element="e73", option="Returns"),
)
STOP = Action(kind="finish", text="done")


@pytest.mark.parametrize(
    ("actions", "final", "goal", "passed", "detail"),
    [
        (
            (*FILLED, call("click", element="e75")),
            STOP,
            FORM,
            True,
            "e75 was clicked after the values were set, then the episode stopped",
        ),
        (  # case and surrounding spaces of a typed value do not matter
            (
                call("click", element="e8"),
                call("type", element="e71", text="  ada LOVELACE "),
                call("select", element="e73", option="Returns"),
                call("click", element="e75"),
            ),
            STOP,
            FORM,
            True,
            "e75 was clicked after the values were set, then the episode stopped",
        ),
        (FILLED, STOP, FORM, False, "e75 was never clicked"),
        (
            (
                call("click", element="e8"),
                call("click", element="e76"),
                call("type", element="e71", text="Ada Lovelace"),
            ),
            STOP,
            {"outcome": "submitted", "values": {"e71": "Ada Lovelace"}, "submit": "e76"},
            False,
            "e76 was never clicked after the values were set",
        ),
        (
            (
                call("click", element="e8"),
                call("type", element="e71", text="Ada Byron"),
                call("select", element="e73", option="Returns"),
                call("click", element="e75"),
            ),
            STOP,
            FORM,
            False,
            'e71 holds "Ada Byron", the goal needs "Ada Lovelace"',
        ),
        (
            (*FILLED, call("click", element="e75")),
            Action(kind="answer", text="sent"),
            FORM,
            False,
            "the episode ended with an answer; the goal (submitted) needs stop",
        ),
        (
            (call("click", element="e9"),),
            Action(kind="answer", text="The total is 1042.5 eur."),
            {"outcome": "answered", "answer": "1,042.50 EUR", "evidence": "e92"},
            True,
            'the answer contains "1,042.50 EUR"',
        ),
        (
            (call("click", element="e9"),),
            Action(kind="answer", text="1,042 EUR"),
            {"outcome": "answered", "answer": "1,042.50 EUR", "evidence": "e92"},
            False,
            'the answer "1,042 EUR" does not contain "1,042.50 EUR"',
        ),
        (
            (),
            Action(kind="answer", text="1,042.50 EUR"),
            {"outcome": "answered", "answer": "1,042.50 EUR", "evidence": "e92"},
            False,
            "the answer's element e92 (on /orders) was never shown",
        ),
        (
            (),
            STOP,
            {"outcome": "answered", "answer": "x", "evidence": "e92"},
            False,
            "the episode ended with stop; the goal needs an answer",
        ),
        (
            (call("click", element="e8"), call("click", element="e75")),
            STOP,
            {"outcome": "reached", "page": "/thanks"},
            True,
            "the episode ended on /thanks",
        ),
        (
            (call("click", element="e8"),),
            STOP,
            {"outcome": "reached", "page": "/thanks"},
            False,
            "the episode ended on /contact, the goal is /thanks",
        ),
        (
            (call("click", element="e8"), call("type", element="e71", text="Ada Lovelace")),
            Action(
                kind="finish", text="I cannot send it: you did not give me your e-mail address."
            ),
            {"outcome": "infeasible", "submit": "e75", "missing": "email address"},
            False,
            'the stop reason does not name the missing value "email address"',
        ),
        (
            (call("click", element="e8"), call("type", element="e71", text="Ada Lovelace")),
            Action(kind="fail", text="Your email address is missing."),
            {"outcome": "infeasible", "submit": "e75", "missing": "the email address"},
            True,
            'the episode stopped naming the missing value "the email address"',
        ),
        (
            (call("click", element="e8"), call("click", element="e75")),
            Action(kind="finish", text="No email address was given."),
            {"outcome": "infeasible", "submit": "e75", "missing": "email address"},
            False,
            'e75 was clicked; the request lacks "email address"',
        ),
        (
            (),
            STOP,
            {"outcome": "won"},
            False,
            "unknown outcome 'won'; use one of submitted, answered, reached, infeasible",
        ),
        (
            (),
            STOP,
            {"outcome": "submitted", "values": {"e1": "x"}},
            False,
            "e1 is not a field of the site",
        ),
        ((), STOP, {"outcome": "submitted"}, False, "the goal names no submit button"),
    ],
)
def test_check_goal(
    actions: tuple[Action, ...], final: Action, goal: dict[str, Any], passed: bool, detail: str
) -> None:
    assert check_goal(SITE, state_after(*actions), final, **goal) == (passed, detail)


def test_answers_and_missing_values_are_compared_loosely_but_not_too_loosely() -> None:
    assert contains_answer("It costs €42.5 per month.", "42.50")
    assert contains_answer("Order #4521 shipped", "order 4521")
    assert contains_answer("TOTAL: 1042.50 eur", "1,042.50 EUR")
    assert not contains_answer("It costs 42.51", "42.50")
    assert not contains_answer("14521", "4521")
    assert not contains_answer("anything", "")
    assert names_missing("You did not tell me the date of delivery.", "delivery date")
    assert names_missing("Which sizes do you want?", "the size")
    assert not names_missing("I need more details.", "delivery date")


async def test_the_check_binds_a_keys_fields_with_partial() -> None:
    env = WebEnvironment(PROMPTS)
    task = WebTask(goal="g", site=SITE, start="/", check=functools.partial(check_goal, **FORM))
    await env.reset(task)
    r = await env.step(STOP)
    assert (r.reward, r.info["check"]) == (0.0, 'e71 holds "", the goal needs "Ada Lovelace"')


# -- the goal when a key is written --------------------------------------------------------
@pytest.mark.parametrize(
    "goal",
    [
        FORM,
        {"outcome": "submitted", "values": {"e74": "checked"}, "submit": "e75"},
        {"outcome": "answered", "answer": "1042.5 EUR", "evidence": "e92"},
        {"outcome": "answered", "answer": "4521", "evidence": "e91", "values": {"e5": "rating"}},
        {"outcome": "reached", "page": "/thanks"},
        {"outcome": "infeasible", "submit": "e75", "missing": "the email address"},
        {"outcome": "infeasible", "missing": "a staff login"},
    ],
)
def test_goals_that_fit_the_site(goal: dict[str, Any]) -> None:
    full = {"values": {}, "submit": "", "page": "", "answer": "", "evidence": "", "missing": ""}
    assert check_goal_fits(SITE, start="/", **{**full, **goal}) is None


@pytest.mark.parametrize(
    ("goal", "problem"),
    [
        (
            {"outcome": "won"},
            "outcome 'won' is not one of submitted, answered, reached, infeasible",
        ),
        (
            {"outcome": "reached", "page": "/thanks", "start": "/cart"},
            "start '/cart' is not a page of the site",
        ),
        (
            {"outcome": "submitted", "values": {"e999": "x"}, "submit": "e75"},
            "value element 'e999' is not an element of the site",
        ),
        (
            {"outcome": "submitted", "values": {"e7": "x"}, "submit": "e75"},
            "e7 is a text; only textbox, select and checkbox elements hold values",
        ),
        (
            {"outcome": "submitted", "values": {"e73": "Refund"}, "submit": "e75"},
            'e73 has no option "Refund"; its options are "Order", "Returns", "Other"',
        ),
        (
            {"outcome": "submitted", "values": {"e74": "yes"}, "submit": "e75"},
            'e74 is a checkbox: its value is "checked" or "unchecked"',
        ),
        (
            {"outcome": "submitted", "values": {"e71": "Ada"}, "submit": "e8"},
            "submit e8 is a link; it must be a button",
        ),
        (
            {"outcome": "submitted", "values": {"e71": "Ada"}, "submit": "e96"},
            "submit e96 is on /staff, which no link or button leads to from /",
        ),
        ({"outcome": "submitted", "values": {"e71": "Ada"}}, "outcome submitted needs submit"),
        (
            {"outcome": "submitted", "submit": "e75"},
            "outcome submitted needs at least one value to set",
        ),
        (
            {"outcome": "submitted", "values": {"e73": "order"}, "submit": "e75"},
            "every value already holds on the site as built: the goal must change one",
        ),
        (
            {"outcome": "submitted", "values": {"e71": "Ada"}, "submit": "e75", "page": "/thanks"},
            "outcome submitted uses no page: leave it empty",
        ),
        (
            {"outcome": "answered", "answer": "1,000 EUR", "evidence": "e92"},
            'the answer "1,000 EUR" does not occur in evidence e92 "Total: 1,042.50 EUR"',
        ),
        (
            {"outcome": "answered", "answer": "Staff only", "evidence": "e95"},
            "evidence e95 is on /staff, which no link or button leads to from /",
        ),
        ({"outcome": "answered", "answer": "4521"}, "outcome answered needs evidence"),
        (
            {"outcome": "answered", "evidence": "e91", "missing": "x"},
            "outcome answered needs answer; outcome answered uses no missing: leave it empty",
        ),
        ({"outcome": "reached", "page": "/cart"}, "page '/cart' is not a page of the site"),
        (
            {"outcome": "reached", "page": "/staff"},
            "page /staff cannot be reached from / by links or buttons",
        ),
        (
            {"outcome": "reached", "page": "/"},
            "page / is the start page: the goal asks for no navigation",
        ),
        ({"outcome": "reached"}, "outcome reached needs page"),
        (
            {"outcome": "reached", "page": "/contact", "start": "/thanks"},
            "page /contact cannot be reached from /thanks by links or buttons",
        ),
        ({"outcome": "infeasible", "submit": "e75"}, "outcome infeasible needs missing"),
        (
            {"outcome": "infeasible", "missing": "x", "answer": "y"},
            "outcome infeasible uses no answer: leave it empty",
        ),
    ],
)
def test_goals_that_do_not_fit_say_what_to_fix(goal: dict[str, Any], problem: str) -> None:
    assert check_goal_fits(SITE, **goal) == problem


# -- the format ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("turn", "action"),
    [
        ("Action: click [e2]", call("click", element="e2")),
        (
            'Thought: The search box is e3.\nAction: type [e3] "trail shoes"',
            Action(
                kind="call",
                name="type",
                arguments={"element": "e3", "text": "trail shoes"},
                thought="The search box is e3.",
            ),
        ),
        (  # blank space around every part, curly quotes, a capitalised verb
            "  Thought :  pick it.  \n\n  Action :  Select [ e5 ]  “Rating”  \n",
            Action(
                kind="call",
                name="select",
                arguments={"element": "e5", "option": "Rating"},
                thought="pick it.",
            ),
        ),
        ('Action: type [e3] ""', call("type", element="e3", text="")),
        (
            'Action: type [e3] "say \\"hi\\" \\\\ bye"',
            call("type", element="e3", text='say "hi" \\ bye'),
        ),
        (
            'Action: type [e3] "C:\\temp"',
            call("type", element="e3", text="C:\\temp"),
        ),  # no JSON: as written
        ("Action: scroll down", call("scroll", direction="down")),
        ("Action: scroll UP", call("scroll", direction="up")),
        ('Action: answer "42.50 EUR"', Action(kind="answer", text="42.50 EUR")),
        ('Action: stop "done"', Action(kind="finish", text="done")),
        (
            'Thought: No date.\nAction: stop "The request gives no delivery date."',
            Action(kind="finish", text="The request gives no delivery date.", thought="No date."),
        ),
    ],
)
def test_format_parses_good_turns(turn: str, action: Action) -> None:
    assert FMT.parse(text(turn), CTX) == action


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        (
            "I will click.",
            "no 'Action:' line: end the turn with one action, such as Action: click [e2]",
        ),
        (
            "Action: click [e2]\nAction: click [e4]",
            "more than one 'Action:' line: take exactly one action per turn",
        ),
        ("Action: click [e2]\nObservation: opened", "write nothing after the 'Action:' line"),
        (
            "I see the box.\nAction: click [e2]",
            "write your reasoning on one 'Thought:' line before the action, or nothing",
        ),
        (
            "Action:",
            "'Action:' names no action: use one of click, type, select, scroll, answer, stop",
        ),
        (
            "Action: hover [e2]",
            "unknown action 'hover': use one of click, type, select, scroll, answer, stop",
        ),
        ("Action: click e2", "write the action as click [e2], got 'click e2'"),
        ("Action: click [e2] now", "write the action as click [e2], got 'click [e2] now'"),
        ("Action: click [Search]", "write the action as click [e2], got 'click [Search]'"),
        (
            "Action: type [e3] trail shoes",
            "write the action as type [e3] \"text\", got 'type [e3] trail shoes'",
        ),
        (
            "Action: type [e3] 'trail shoes'",
            'write the action as type [e3] "text", got "type [e3] \'trail shoes\'"',
        ),
        (
            'Action: type [e3] "trail sh',
            'the text of type is not closed with a double quote (cut off?): write it as type [e3] "text"',
        ),
        ('Action: select [e5] ""', 'select needs an option in double quotes: select [e5] "option"'),
        ("Action: scroll left", "write the action as scroll down or scroll up, got 'scroll left'"),
        ("Action: answer 42", "write the action as answer \"the answer\", got 'answer 42'"),
        ('Action: answer "  "', 'the answer is empty: write it in the quotes, answer "..."'),
        ("Action: stop", "write the action as stop \"the reason\", got 'stop'"),
        (
            'Action: stop ""',
            'give the reason in the quotes: stop "done", or stop "<what is missing>"',
        ),
    ],
)
def test_format_refuses_malformed_turns_with_a_reason(turn: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        FMT.parse(text(turn), CTX)
    assert info.value.reason == reason


def test_a_thought_can_be_required() -> None:
    strict = WebFormat(require_thought=True)
    with pytest.raises(ParseError, match="no 'Thought:' line before the action"):
        strict.parse(text("Action: click [e2]"), CTX)
    assert strict.parse(text("Thought: go.\nAction: click [e2]"), CTX).thought == "go."
    assert (strict.grammar(CTX) or "").startswith('start: "Thought: " thought "\\n" "Action: " act')


ROUND_TRIP = [
    call("click", element="e2"),
    call("type", element="e3", text='a "quoted" \\ path'),
    call("type", element="e3", text=""),
    call("select", element="e5", option="Rating"),
    call("scroll", direction="down"),
    call("scroll", direction="up"),
    Action(kind="answer", text="42.50 EUR", thought="The total is shown in e92."),
    Action(kind="finish", text="The request gives no email address."),
]


@pytest.mark.parametrize("action", ROUND_TRIP)
def test_written_actions_parse_back(action: Action) -> None:
    assert FMT.parse(text(FMT.write(action)), CTX) == action


def test_write_and_the_texts_compared_by_bleu() -> None:
    typed = Action(
        kind="call", name="type", arguments={"element": "e3", "text": "Oslo"}, thought="t"
    )
    assert FMT.write(typed) == 'Thought: t\nAction: type [e3] "Oslo"'
    assert FMT.action_text(typed) == 'Action: type [e3] "Oslo"'
    assert FMT.write(Action(kind="fail", text="no")) == 'Action: stop "no"'
    assert FMT.action_span(text("Thought: x\nAction: click [e2]")) == "Action: click [e2]"
    assert FMT.action_span(text("no action")) == "no action"
    assert FMT.render(typed) == message("assistant", 'Thought: t\nAction: type [e3] "Oslo"')
    assert FMT.turn(text("  Action: click [e2] \n"), typed) == message(
        "assistant", "Action: click [e2]"
    )
    with pytest.raises(ValueError, match="the web format has no 'hover' action"):
        FMT.write(call("hover"))
    with pytest.raises(ValueError, match="the web format has no tool_calls action"):
        FMT.write(Action(kind="tool_calls"))
    with pytest.raises(ValueError, match="a web finish action needs a text"):
        FMT.write(Action(kind="finish"))
    assert (FMT.name, FMT.placement, FMT.stop, FMT.tools(CTX)) == (
        "web",
        "system",
        ("\nObservation:",),
        (),
    )
    assert FMT.acknowledgement(PROMPTS) is None


@pytest.fixture(scope="module")
def matcher() -> Callable[[str, str], bool]:
    """Whether a grammar accepts a text, token by token as constrained decoding does."""
    pytest.importorskip("llguidance")
    return lambda grammar, s: decoder(lark=grammar)(s)


@pytest.mark.parametrize("action", ROUND_TRIP[:2] + ROUND_TRIP[3:])
def test_grammar_accepts_written_turns(matcher: Callable[[str, str], bool], action: Action) -> None:
    assert matcher(FMT.grammar(CTX) or "", FMT.write(action))


def test_grammar_accepts_an_empty_typed_text(matcher: Callable[[str, str], bool]) -> None:
    assert matcher(FMT.grammar(CTX) or "", 'Action: type [e3] ""')


@pytest.mark.parametrize(
    "turn",
    [
        "Thought: a.",
        "Action: click e2",
        "Action: click [e2]\nmore",
        "Action: click [e2]\nAction: click [e4]",
        "Thought: a. Action: click [e2]\nAction: click [e2]",  # an action inside the thought
        'Action: stop ""',
        'Action: answer " "',
        'Action: select [e5] ""',
        "Action: scroll left",
        'Action: type [e3] "two\nlines"',
        "Thought: one\ntwo\nAction: click [e2]",
    ],
)
def test_grammar_refuses_malformed_turns(matcher: Callable[[str, str], bool], turn: str) -> None:
    assert not matcher(FMT.grammar(CTX) or "", turn)


def test_required_thought_grammar(matcher: Callable[[str, str], bool]) -> None:
    grammar = WebFormat(require_thought=True).grammar(CTX) or ""
    assert matcher(grammar, "Thought: go.\nAction: click [e2]")
    assert not matcher(grammar, "Action: click [e2]")


def test_instructions_hint_task_and_observations() -> None:
    instructions = FMT.instructions(PROMPTS, Observation(text="t"))
    for verb in VERBS:
        assert f"Action: {verb} " in instructions
    assert (
        "Thought: The user's name goes into the Full name box, e7.\n"
        'Action: type [e7] "Maria Lopez"'
    ) in instructions
    assert 'Action: stop "The request does not give the delivery date."' in instructions
    assert FMT.hint(PROMPTS) == (
        'optionally one line "Thought: ...", then exactly one line "Action: ..." holding one of: '
        'click [id], type [id] "text", select [id] "option", scroll down, scroll up, '
        'answer "the answer", stop "the reason"'
    )
    first = Observation(text="The user's request: x")
    assert FMT.task(PROMPTS, first, after_demos=False) == "The user's request: x"
    assert FMT.task(PROMPTS, first, after_demos=True) == (
        "That was an example. Now a new task starts, on another web site, in a new browser."
        "\n\nThe user's request: x"
    )
    click = call("click", element="e2")
    assert FMT.observation(PROMPTS, click, StepResult(observation="Clicked.\n\nPage: A (/)")) == (
        message("user", "Observation: Clicked.\n\nPage: A (/)")
    )
    assert FMT.observation(PROMPTS, click, StepResult(observation="bad", error=True)) == message(
        "user", "Observation: That action could not be done: bad. The page has not changed."
    )
    for name in FMT.templates():
        PROMPTS.check(name)


# -- whole episodes ------------------------------------------------------------------------
FORM_GOAL = "Send a message about a return. My name is Ada Lovelace."


async def test_an_episode_reaches_a_form_goal() -> None:
    model = ScriptedModel(
        [
            "Thought: The contact form is on another page.\nAction: click [e8]",
            'Action: type [e71] "Ada Lovelace"',
            'Action: select [e73] "Return"',  # not an option: an error the episode survives
            'Thought: The option is "Returns".\nAction: select [e73] "Returns"',
            "Action: click [e75]",
            'Action: stop "done"',
        ]
    )
    env = WebEnvironment(PROMPTS)
    check = functools.partial(check_goal, **FORM)
    episode = await run_episode(
        model, env, WebTask(goal=FORM_GOAL, site=SITE, start="/", check=check), FMT, prompts=PROMPTS
    )
    assert (episode.end, episode.reward, episode.done) == ("finished", 1.0, True)
    assert episode.format == "web"
    final = episode.turns[-1].steps[-1].result
    assert (
        final.info["check"] == "e75 was clicked after the values were set, then the episode stopped"
    )
    roles = [m["role"] for m in episode.messages]
    assert roles == ["system", "user"] + ["assistant", "user"] * 5 + ["assistant"]
    assert [m["trained"] for m in episode.messages if m["role"] == "assistant"] == [True] * 6
    system = episode.messages[0]["content"]
    assert system.startswith(
        'You are a web agent working in a browser on the web site "Northwind Outfitters"'
    )
    assert "The six actions:" in system
    assert episode.messages[1]["content"].startswith(
        f"The user's request: {FORM_GOAL}\n\nThe browser shows:\n\nPage: Home (/)"
    )
    assert episode.messages[3]["content"].startswith(
        'Observation: Clicked [e8] "Contact us" and opened /contact.\n\nPage: Contact (/contact)'
    )
    assert episode.messages[7]["content"] == (
        'Observation: That action could not be done: [e73] "Topic" has no option "Return"; its '
        'options are "Order", "Returns", "Other". The page has not changed.'
    )
    assert model.grammars[0] == FMT.grammar(CTX)
    assert model.requests[0].stop == ("\nObservation:",)
    assert env.state is not None and env.state.url == "/thanks"


async def test_an_episode_that_stops_before_submitting_fails() -> None:
    model = ScriptedModel(
        [
            "Action: click [e8]",
            'Action: type [e71] "Ada Lovelace"',
            'Action: select [e73] "Returns"',
            'Action: stop "done"',
        ]
    )
    check = functools.partial(check_goal, **FORM)
    episode = await run_episode(
        model,
        WebEnvironment(PROMPTS),
        WebTask(goal=FORM_GOAL, site=SITE, start="/", check=check),
        FMT,
        prompts=PROMPTS,
    )
    assert (episode.end, episode.reward) == ("finished", 0.0)
    assert episode.turns[-1].steps[-1].result.info == {
        "passed": False,
        "check": "e75 was never clicked",
        "url": "/contact",
    }


async def test_a_malformed_action_is_repaired_within_the_episode() -> None:
    model = ScriptedModel(
        ["I would click e9.", "Action: click [e9]", 'Action: answer "1042.50 EUR"']
    )
    check = functools.partial(check_goal, outcome="answered", answer="1,042.50 EUR", evidence="e92")
    episode = await run_episode(
        model,
        WebEnvironment(PROMPTS),
        WebTask(goal="What is my order total?", site=SITE, start="/", check=check),
        FMT,
        prompts=PROMPTS,
        settings=EpisodeSettings(max_turns=4),
    )
    assert (episode.end, episode.reward) == ("finished", 1.0)
    assert episode.turns[0].rejected[0].reason.startswith("no 'Action:' line")
