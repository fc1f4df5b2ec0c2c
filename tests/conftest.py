from __future__ import annotations

import os
from pathlib import Path

import pytest

from genteach.prompts import PromptLibrary

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tests that run the embedded model run the small one (extra local-small), on the default
# engine: the default 1.5B model is twice as slow, and CI has 2 cores. Tests of the default's
# resolution unset it.
os.environ.setdefault("GENTEACH_LOCAL_MODEL", "qwen2.5-coder-0.5b-instruct")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def guidance_dir(tmp_path: Path) -> Path:
    """A prompt folder with one tiny guidance template per family, for render tests."""
    d = tmp_path / "prompts"
    (d / "t").mkdir(parents=True)
    (d / "t" / "guide.j2").write_text("GUIDANCE for {{ category.name }}.\n")
    return d


@pytest.fixture
def prompts(guidance_dir: Path) -> PromptLibrary:
    return PromptLibrary([guidance_dir])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current prompts (see tests/test_golden_prompts.py)",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether this run rewrites the golden prompts instead of comparing with them."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def planned_taxonomy(tmp_path: Path) -> Path:
    """A copy of the built-in taxonomy with the rag skill marked planned (every built-in
    skill is ready), for tests of how planned skills are listed and refused."""
    from genteach._resources import default_taxonomy_path

    text = default_taxonomy_path().read_text(encoding="utf-8")
    start = text.index("\n  rag:\n")
    at = text.index("    status: ready\n", start)
    path = tmp_path / "planned.yaml"
    path.write_text(text[:at] + "    status: planned\n" + text[at + len("    status: ready\n") :])
    return path
