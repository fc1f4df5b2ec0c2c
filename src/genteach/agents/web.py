"""The web-agent skill's material builder: a small synthetic web site built from a seed.

:class:`WebSiteBuilder` decodes a :class:`~genteach.runtime.web.WebSite` (pages of
elements with ids, as an accessibility tree), which the site's own validation checks
(unique ids, links to existing pages, valid options); its parser adds the prompt's bounds
on the number of pages and that the site gives a goal somewhere to go.
"""

from __future__ import annotations

from genteach.agents.base import Agent
from genteach.agents.parsing import ParseError
from genteach.agents.transform import TransformInput
from genteach.runtime.web import SITE_TEMPLATE, WebSite

#: Elements an agent can act on; a site needs some besides headings and text.
_ACTIONABLE = frozenset({"link", "button", "textbox", "select", "checkbox"})


class WebSiteBuilder(Agent[TransformInput, WebSite]):
    """Builds a web site (``min_items`` to ``max_items`` pages) from a seed, in the style
    its transformer's guidance names (a shop, a form, a dashboard...)."""

    input_model = TransformInput
    output_model = WebSite
    default_system_template = "webagent_flow/site_system.j2"
    default_user_template = "webagent_flow/site_user.j2"

    def templates(self) -> list[str]:
        """Its prompts, and the template its material renders with."""
        return [self.system_template, self.user_template, SITE_TEMPLATE]

    def parse(self, text: str, inputs: TransformInput | None = None) -> WebSite:
        site = super().parse(text, inputs)
        if inputs is not None and not inputs.min_items <= len(site.pages) <= inputs.max_items:
            raise ParseError(
                f"the site has {len(site.pages)} pages; build between {inputs.min_items} and "
                f"{inputs.max_items}"
            )
        if len(site.pages) > 1 and len(site.reachable(site.start)) < 2:
            raise ParseError(
                f"no link or button of the start page {site.start} leads to another page: link "
                "the pages so that goals need navigation"
            )
        actionable = [e for p in site.pages for e in p.elements if e.role in _ACTIONABLE]
        if len(actionable) < 3:
            raise ParseError(
                "the site has fewer than 3 elements to act on (links, buttons, fields): give "
                "every page its controls"
            )
        return site


__all__ = ["WebSiteBuilder"]
