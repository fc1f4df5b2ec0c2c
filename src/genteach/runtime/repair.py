"""Repair requests for a malformed turn, and BLEU mapping of a malformed action to the
closest admissible one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE, RepairStyle
from genteach.models.base import Message, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import Action, ActionFormat


@dataclass(frozen=True)
class Rejection:
    """A malformed output and why it was rejected (it never enters the trajectory)."""

    raw: str
    reason: str


def repair_messages(
    prompts: PromptLibrary,
    style: RepairStyle,
    format_hint: str,
    messages: Sequence[Message],
    rejected: Sequence[Rejection],
) -> list[Message]:
    """The messages of a repair call: the conversation so far (``messages``) and the
    rejected outputs of this turn (oldest first), as :meth:`genteach.Agent.repair_messages`
    builds them for one-shot agents. Pure.

    ``"show"``: each rejected output as an assistant turn followed by a request to repair
    it (``common/repair.j2``). ``"fresh"``: the conversation again, its last user turn
    ending with a note of the reasons (``common/retry_note.j2``), or the note as a new
    user turn after a tool turn; the rejected outputs are not shown.
    """
    if style == "fresh":
        note = prompts.render(
            RETRY_NOTE_TEMPLATE,
            reasons=list(dict.fromkeys(r.reason for r in rejected)),
            format_hint=format_hint,
        )
        last = messages[-1]
        if last["role"] == "user":
            noted = last.copy()
            noted["content"] = f"{last['content']}\n\n{note}"
            return [*messages[:-1], noted]
        return [*messages, message("user", note)]
    out = list(messages)
    for r in rejected:
        out.append(message("assistant", r.raw))
        out.append(
            message(
                "user",
                prompts.render(REPAIR_TEMPLATE, reason=r.reason, format_hint=format_hint),
            )
        )
    return out


def closest_action(
    text: str, candidates: Sequence[Action], fmt: ActionFormat, *, min_score: float = 0.0
) -> tuple[Action, float] | None:
    """The candidate whose text (:meth:`ActionFormat.action_text`) is closest to ``text``
    by sentence BLEU (sacrebleu, effective order), and its score (0-100); the first one
    on ties. ``None`` when no candidate scores above ``min_score`` (a text sharing no
    n-gram with any action is not mapped to an arbitrary one).
    """
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    best: tuple[Action, float] | None = None
    for action in candidates:
        score = bleu.sentence_score(text, [fmt.action_text(action)]).score
        if best is None or score > best[1]:
            best = (action, score)
    if best is None or best[1] <= min_score:
        return None
    return best


__all__ = ["Rejection", "closest_action", "repair_messages"]
