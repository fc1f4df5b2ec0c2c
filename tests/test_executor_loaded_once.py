"""An executor module is imported once per run (:func:`genteach.runtime.load_executor`).

Both the material stage (``api_module``) and the tool conversation load the module named
by ``--set executor=...``; its top level (here: a line appended to a file) runs once in a
whole scripted run of examples/executor/taxonomy.yaml's skill, and again only when the
file's text changes. What this does not show: that a module's functions are safe to share
between units (they are the user's code; see docs/trajectories.md).
"""

from __future__ import annotations

from pathlib import Path

from genteach.records import Seed
from genteach.runtime import load_executor
from test_executor import WORKSHOP, WorkshopTeacher, workshop_pipeline


def counted_module(tmp_path: Path) -> tuple[Path, Path]:
    """The example workshop module with a top-level side effect: each import appends a
    line to ``imports.log``."""
    log = tmp_path / "imports.log"
    module = tmp_path / "workshop_counted.py"
    module.write_text(
        WORKSHOP.read_text(encoding="utf-8")
        + f"\n\nwith open({str(log)!r}, 'a', encoding='utf-8') as _log:\n"
        + "    _log.write('imported\\n')\n",
        encoding="utf-8",
    )
    return module, log


def test_a_scripted_run_imports_the_executor_once(tmp_path: Path) -> None:
    module, log = counted_module(tmp_path)
    teacher = WorkshopTeacher()
    pipe = workshop_pipeline(teacher, str(module))
    summary = pipe.run([Seed.from_text("A joiner fits oak shelves in a workshop.")], tmp_path / "o")
    assert summary.rejects == 0 and summary.records == 6  # the conversations ran its functions
    assert teacher.calls["simulate"] == 0
    assert log.read_text(encoding="utf-8") == "imported\n"


def test_the_same_file_is_shared_and_a_changed_one_imported_again(tmp_path: Path) -> None:
    module, log = counted_module(tmp_path)
    first = load_executor(str(module))
    again = load_executor(module.name, folder=tmp_path)  # the same file, named otherwise
    assert log.read_text(encoding="utf-8") == "imported\n"
    assert again.functions["find_parts"].function is first.functions["find_parts"].function
    module.write_text(module.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    load_executor(str(module))
    assert log.read_text(encoding="utf-8") == "imported\nimported\n"
