"""One Markdown page per skill of a taxonomy, written from the taxonomy itself and from
example records: what the skill teaches, its pipeline, transformers, task types (with
their key kinds), refinement goals, and real records labelled with the teacher that made
them and how their answer was checked. ``genteach taxonomy docs`` writes them; the
pages in docs/skills/ are made this way, so they cannot drift from the taxonomy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from genteach.records import Record
from genteach.taxonomy import Skill, Taxonomy

#: Characters of a message shown in an example before it is cut.
EXAMPLE_CHARS = 1200


#: Where the embedded model's runs per skill, rejects included, are written up.
EMBEDDED_BENCHMARK = "../benchmarks/embedded_default.md#the-skills-one-by-one-on-the-15b-model"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _quoted(text: str) -> str:
    """A message as a Markdown block quote, cut at :data:`EXAMPLE_CHARS`."""
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS].rstrip() + f" … [{len(text) - EXAMPLE_CHARS} more characters]"
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def render_example(record: Record) -> str:
    """One record as a page section: its provenance, its messages, its key and check."""
    meta = record.meta
    v = meta.verification
    check = f"{v.status} ({v.kind}: {v.detail})" if v is not None else "none"
    lines = [
        f"Teacher **{meta.teacher}**; task type `{meta.sub_category}`"
        + (f", transformer `{meta.transformer}`" if meta.transformer else "")
        + (f", refined by goal `{meta.refinement_goal}`" if meta.refinement_goal else "")
        + f"; answer checked: {check}.",
        "",
    ]
    for m in record.messages:
        content = m.get("content") or ""
        if m["role"] == "system" and not content:
            continue
        lines += [f"**{m['role']}**", "", _quoted(str(content)), ""]
    if meta.key is not None:
        key = json.dumps(meta.key, ensure_ascii=False)
        lines += ["Answer key (not shown to the student):", "", f"```json\n{key}\n```", ""]
    return "\n".join(lines)


def render_skill_page(skill: Skill, examples: Sequence[Record] = ()) -> str:
    """The Markdown page of ``skill``, with ``examples`` (its records, each labelled with
    the teacher that made it)."""
    out = [f"# {skill.name} (`{skill.id}`)", "", skill.description, ""]
    if skill.status != "ready":
        out += [
            "**Planned**: listed in the taxonomy, not built yet (`genteach generate` refuses "
            "it with a clear message). Its planned task types:",
            "",
        ]
    else:
        stages = " → ".join(s.flow for s in skill.pipeline)
        kinds = sorted({k for t in skill.task_types for k in t.key})
        out += [
            f"**Ready.** Seeds: {', '.join(skill.seed_kinds)}. Pipeline: {stages}. "
            f"Key kinds: {', '.join(f'`{k}`' for k in kinds)} (what each check proves: "
            "[concepts](../concepts.md#verification)).",
            "",
        ]
    if skill.transformers:
        out += [f"## Content transformers ({len(skill.transformers)})", ""]
        out += ["| id | name | what it builds |", "|---|---|---|"]
        out += [f"| `{t.id}` | {t.name} | {_cell(t.description)} |" for t in skill.transformers]
        out.append("")
    out += [f"## Task types ({len(skill.task_types)})", ""]
    out += ["| id | name | keys | origin | description |", "|---|---|---|---|---|"]
    out += [
        f"| `{t.id}` | {t.name} | {', '.join(t.key)} | {t.origin} | {_cell(t.description)} |"
        for t in skill.task_types
    ]
    out.append("")
    if skill.refinement_goals:
        out += [f"## Refinement goals ({len(skill.refinement_goals)})", ""]
        out += ["| id | name | edits | description |", "|---|---|---|---|"]
        out += [
            f"| `{g.id}` | {g.name} | {g.edits} | {_cell(g.description)} |"
            for g in skill.refinement_goals
        ]
        out.append("")
    out += _stage_lists(skill)
    if skill.status == "ready":
        out += ["## Examples", ""]
        if not examples:
            out += ["No example record yet.", ""]
        for i, record in enumerate(examples, 1):
            out += [f"### Example {i}", "", render_example(record)]
        if not any(r.meta.teacher.startswith("local:") for r in examples):
            out += [
                "No record of the embedded model yet: what its tasks and answers were "
                f"rejected for is in [its benchmark]({EMBEDDED_BENCHMARK}).",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def _stage_lists(skill: Skill) -> list[str]:
    """A table for each list a pipeline stage holds whose entries have an id, a name and a
    description (the conversation stage's follow-up moves, for example)."""
    out: list[str] = []
    for stage in skill.pipeline:
        for key, value in stage.settings.items():
            if not isinstance(value, list) or not value:
                continue
            if not all(
                isinstance(v, dict) and {"id", "name", "description"} <= v.keys() for v in value
            ):
                continue
            title = f"{stage.flow.replace('_', ' ')} {key.replace('_', ' ')}".capitalize()
            out += [f"## {title} ({len(value)})", ""]
            out += ["| id | name | settings | description |", "|---|---|---|---|"]
            for entry in value:
                rest = ", ".join(
                    f"{k}: {v}" for k, v in entry.items() if k not in ("id", "name", "description")
                )
                out.append(
                    f"| `{entry['id']}` | {entry['name']} | {rest or '-'} | "
                    f"{_cell(str(entry['description']))} |"
                )
            out.append("")
    return out


def pick_examples(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Per skill, the first record of each teacher among ``records`` (in order)."""
    picked: dict[str, list[Record]] = {}
    for r in records:
        chosen = picked.setdefault(r.meta.skill, [])
        if all(c.meta.teacher != r.meta.teacher for c in chosen):
            chosen.append(r)
    return picked


def write_skill_docs(
    taxonomy: Taxonomy, out_dir: Path, records: Iterable[Record] = ()
) -> list[Path]:
    """Write ``<skill id>.md`` for every skill of ``taxonomy`` and an index ``README.md``
    into ``out_dir``; ``records`` supply the examples. Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = pick_examples(records)
    written = []
    index = [
        f"# The skills of `{taxonomy.name}`",
        "",
        "Written by `genteach taxonomy docs` from the taxonomy and example records.",
        "",
        "| skill | status | transformers | task types | goals |",
        "|---|---|---:|---:|---:|",
    ]
    for sid, skill in taxonomy.skills.items():
        path = out_dir / f"{sid}.md"
        path.write_text(render_skill_page(skill, examples.get(sid, [])), encoding="utf-8")
        written.append(path)
        index.append(
            f"| [{skill.name}]({sid}.md) | {skill.status} | {len(skill.transformers)} | "
            f"{len(skill.task_types)} | {len(skill.refinement_goals)} |"
        )
    readme = out_dir / "README.md"
    readme.write_text("\n".join(index) + "\n", encoding="utf-8")
    return [*written, readme]


__all__ = ["pick_examples", "render_example", "render_skill_page", "write_skill_docs"]
