"""The wheel ships taxonomies/ and prompts/: installed without the source tree, run from
another directory, genteach finds its default taxonomy and templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_taxonomy_and_prompts(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path / "dist")],
        check=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("genteach-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "genteach/taxonomies/agentinstruct.yaml" in names
    assert "genteach/prompts/common/transform_system.j2" in names
    assert "genteach/prompts/rc/task_types/weaken.j2" in names
    assert "genteach/py.typed" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import genteach, genteach.cli\n"
        "from genteach.prompts import PromptLibrary\n"
        "t = genteach.load_taxonomy()\n"
        "lib = PromptLibrary()\n"
        "lib.check('rc/task_types/weaken.j2')\n"
        "print(genteach.__file__); print(t.source); print(lib.search_path[-1]); print(len(t.skills))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    module, source, prompts, skills = out.stdout.split()
    assert module.startswith(str(site)) and source.startswith(str(site))
    assert prompts.startswith(str(site)) and skills == "17"
