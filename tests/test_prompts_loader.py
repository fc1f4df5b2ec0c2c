from __future__ import annotations

from pathlib import Path

import pytest

from genteach.prompts import PromptError, PromptLibrary


def test_missing_template_names_it_and_the_search_path(prompts: PromptLibrary) -> None:
    with pytest.raises(PromptError, match=r"template 'nope/missing\.j2' not found in .*prompts"):
        prompts.render("nope/missing.j2")


def test_strict_undefined_names_template_and_variable(prompts: PromptLibrary) -> None:
    with pytest.raises(PromptError, match=r"common/repair\.j2: 'format_hint' is undefined"):
        prompts.render("common/repair.j2", reason="x")


def test_user_folder_overrides_builtin(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "repair.j2").write_text("mine: {{ reason }}")
    lib = PromptLibrary([tmp_path])
    assert lib.render("common/repair.j2", reason="r") == "mine: r"


def test_missing_prompt_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="does not exist"):
        PromptLibrary([tmp_path / "nowhere"])


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("line one\n{% if x %}\nno end")
    with pytest.raises(PromptError, match=r"bad\.j2:3"):
        PromptLibrary([tmp_path]).render("bad.j2", x=1)


def test_every_builtin_template_compiles() -> None:
    lib = PromptLibrary()
    names = lib.names()
    assert "common/transform_system.j2" in names
    for name in names:
        lib.check(name)
