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


_IMPORT_EACH = """
import importlib, pkgutil, sys
import genteach
names = [m.name for m in pkgutil.walk_packages(genteach.__path__, 'genteach.')
         if not m.name.endswith('.__main__')]
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == 'genteach' or m.startswith('genteach.')]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:  # optional extras (ray) are not a cycle
        if 'circular import' in str(exc) or 'partially initialized' in str(exc):
            failed.append(f'{name}: {exc}')
print(len(names))
print('\\n'.join(failed))
"""


@pytest.mark.slow
def test_every_module_imports_on_its_own() -> None:
    """Each module imports first, with no other genteach module loaded: an import cycle
    that only the usual import order hides (``genteach.material`` alone once failed) shows."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH], capture_output=True, text=True, check=True
    )
    count, *failed = out.stdout.strip().split("\n")
    assert int(count) > 50
    assert [f for f in failed if f] == []
