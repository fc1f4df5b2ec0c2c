"""BM25 retrieval over the seeds: chunking, search, distractors, save/load and reuse, the
search tool, and one run over the repository's example seeds."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

import genteach.retrieval as retrieval
from genteach.records import Seed
from genteach.retrieval import Chunk, Hit, SearchTool, SeedIndex, chunk_text, seed_chunks
from genteach.runtime.base import Action
from genteach.runtime.tools import ToolEnvironment, ToolError
from genteach.seeds import iter_seeds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "seeds"

DOCS = {
    "bees.md": (
        "# Honey bees\n\nA colony of honey bees has one queen, a few hundred drones and tens "
        "of thousands of workers. Workers forage for nectar and pollen within a few "
        "kilometres of the hive.\n\nForagers tell their sisters where flowers are with the "
        "waggle dance: the angle of the run gives the direction relative to the sun, its "
        "length the distance."
    ),
    "volcano.txt": (
        "Volcanoes of Iceland\n\nIceland sits on the Mid-Atlantic Ridge, where two plates "
        "move apart. Basalt lava erupts from long fissures. The 2010 eruption of "
        "Eyjafjallajokull sent an ash plume into the jet stream and closed European "
        "airspace for six days."
    ),
    "bread.txt": (
        "Baking rye bread\n\nRye flour has little gluten, so rye dough does not hold gas like "
        "wheat dough. Bakers acidify it with a sourdough culture, which stops the enzymes "
        "in rye from breaking down the starch, and bake it in a tin for a long time."
    ),
    "chess.txt": (
        "Openings in chess\n\nThe Sicilian Defence answers 1.e4 with 1...c5 and fights for "
        "the centre from the side. White often plays the open Sicilian with 2.Nf3 and "
        "3.d4, trading a centre pawn for quick development."
    ),
    "tides.txt": (
        "Why there are two tides a day\n\nThe moon pulls the near side of the ocean more "
        "than the Earth's centre, and the Earth's centre more than the far side. Two "
        "bulges form, and a coast passes through both every lunar day of about 24 hours "
        "and 50 minutes."
    ),
    "glaciers.txt": (
        "How glaciers move\n\nA glacier flows because ice deforms under its own weight and "
        "slides on meltwater at its bed. Fast outlet glaciers in Greenland move several "
        "kilometres a year and calve icebergs into the sea."
    ),
    "python.py": (
        '"""Helpers for dates."""\n\nimport datetime\n\n\ndef is_leap(year: int) -> bool:\n'
        "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n\n\n"
        "def days_in_february(year: int) -> int:\n    return 29 if is_leap(year) else 28\n"
    ),
    "comets.txt": (
        "Comets\n\nA comet is a body of ice and dust. Near the sun its ice sublimates and "
        "forms a coma and a tail that always points away from the sun, pushed by the solar "
        "wind and by light."
    ),
}


def seed(name: str, text: str | None = None) -> Seed:
    kind = "code" if name.endswith(".py") else "text"
    return Seed.from_text(DOCS[name] if text is None else text, source=name, kind=kind)


SEEDS = [seed(name) for name in DOCS]
ID = {s.source: s.id for s in SEEDS}


@pytest.fixture(scope="module")
def index() -> SeedIndex:
    return SeedIndex.build(SEEDS)


def sentence(n: int, words: int = 8) -> str:
    """A sentence of ``words`` words, unique by its number."""
    return " ".join([f"s{n}w{i}" for i in range(words - 1)] + [f"end{n}."])


# -- chunking -------------------------------------------------------------------------------


def test_chunks_are_bounded_and_cover_every_sentence() -> None:
    paragraphs = [" ".join(sentence(p * 10 + i) for i in range(p % 4 + 2)) for p in range(12)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, words=40, overlap=10)
    assert len(chunks) > 3
    assert all(len(c.split()) <= 40 for c in chunks)
    for p in range(12):
        for i in range(p % 4 + 2):
            assert any(sentence(p * 10 + i) in c for c in chunks)


def test_paragraphs_that_fit_are_kept_whole() -> None:
    paragraphs = [" ".join(sentence(p * 10 + i) for i in range(3)) for p in range(6)]  # 24 words
    chunks = chunk_text("\n\n".join(paragraphs), words=50, overlap=0)
    assert chunks == [
        f"{paragraphs[0]}\n\n{paragraphs[1]}",
        f"{paragraphs[2]}\n\n{paragraphs[3]}",
        f"{paragraphs[4]}\n\n{paragraphs[5]}",
    ]


def test_the_next_chunk_starts_with_the_last_sentences_of_the_one_before() -> None:
    paragraphs = [" ".join(sentence(p * 10 + i) for i in range(3)) for p in range(4)]
    chunks = chunk_text("\n\n".join(paragraphs), words=50, overlap=20)
    # 24-word paragraphs, two to a chunk; two 8-word sentences fit in 20 words of overlap
    assert chunks == [
        f"{paragraphs[0]}\n\n{paragraphs[1]}",
        f"{sentence(11)} {sentence(12)}\n\n{paragraphs[2]}",
        f"{sentence(21)} {sentence(22)}\n\n{paragraphs[3]}",
    ]


def test_overlap_is_whole_sentences_up_to_its_size() -> None:
    text = " ".join(sentence(i, words=5) for i in range(20))  # one paragraph, 100 words
    chunks = chunk_text(text, words=30, overlap=12)
    assert all(len(c.split()) <= 30 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        tail = " ".join(before.split()[-10:])  # two 5-word sentences fit in 12 words
        assert after.startswith(tail)
    no_overlap = chunk_text(text, words=30, overlap=0)
    assert " ".join(no_overlap).split() == text.split()


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    words = [f"w{i}" for i in range(95)]
    chunks = chunk_text(" ".join(words) + ".", words=40, overlap=0)
    assert [len(c.split()) for c in chunks] == [40, 40, 15]
    assert " ".join(chunks).split() == [*words[:-1], "w94."]


def test_code_is_cut_at_blank_lines_and_keeps_its_indentation() -> None:
    functions = [
        f"def f{n}(x):\n    total = 0\n    for i in range(x):\n        total += i * {n}\n"
        f"    return total"
        for n in range(6)
    ]
    text = "\n\n\n".join(functions)
    chunks = chunk_text(text, words=40, overlap=0, code=True)  # 16 words a function
    assert chunks == [f"{functions[n]}\n\n{functions[n + 1]}" for n in range(0, 6, 2)]
    assert "\n".join(chunks).count("        total += i") == 6  # indentation kept


def test_a_long_code_block_is_cut_between_lines_with_overlap() -> None:
    body = "\n".join(f"    x{i} = compute({i}, y)" for i in range(30))  # 4 words a line
    text = f"def big(y):\n{body}\n    return x29"
    chunks = chunk_text(text, words=40, overlap=8, code=True)
    assert all(len(c.split()) <= 40 for c in chunks)
    assert chunks[0].startswith("def big(y):\n    x0 = compute(0, y)")
    lines = chunks[0].split("\n")
    assert chunks[1].startswith("\n".join(lines[-2:]))  # two 4-word lines of overlap


def test_bad_chunk_sizes_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="words must be at least 10, got 5"):
        chunk_text("text", words=5)
    with pytest.raises(ValueError, match="overlap must be between 0 and words / 2, got 60"):
        chunk_text("text", words=100, overlap=60)


def test_chunks_have_ids_seed_ids_and_titles() -> None:
    chunks = seed_chunks(SEEDS, chunk_words=20, overlap_words=0)
    bees = [c for c in chunks if c.seed_id == ID["bees.md"]]
    assert [c.id for c in bees] == [f"{ID['bees.md']}#{n}" for n in range(1, len(bees) + 1)]
    assert len(bees) > 1 and {c.title for c in bees} == {"Honey bees"}
    titles = {c.seed_id: c.title for c in chunks}
    assert titles[ID["volcano.txt"]] == "Volcanoes of Iceland"  # first line
    assert titles[ID["python.py"]] == "python.py"  # code: its source name
    assert len(seed_chunks([*SEEDS, SEEDS[0]])) == len(seed_chunks(SEEDS))  # seen once


def test_a_long_first_line_makes_a_trimmed_title() -> None:
    text = "word " * 40 + "\n\nbody text here"
    (chunk,) = seed_chunks([Seed.from_text(text)])
    assert chunk.title.endswith(" ...") and len(chunk.title) <= 84


# -- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "source"),
    [
        ("waggle dance direction of flowers", "bees.md"),
        ("ash plume closed airspace", "volcano.txt"),
        ("why does rye dough not hold gas", "bread.txt"),
        ("Sicilian Defence open Sicilian", "chess.txt"),
        ("two bulges lunar day", "tides.txt"),
        ("icebergs calve Greenland", "glaciers.txt"),
        ("leap year February", "python.py"),
        ("tail points away from the sun", "comets.txt"),
    ],
)
def test_search_finds_the_passage_that_answers(index: SeedIndex, query: str, source: str) -> None:
    hits = index.search(query, k=3)
    assert hits[0].chunk.seed_id == ID[source]
    assert all(a.score >= b.score > 0 for a, b in itertools.pairwise(hits))


def test_only_passages_sharing_a_word_are_returned(index: SeedIndex) -> None:
    assert index.search("the and of", k=5) == []  # stopwords only
    assert index.search("xylophone", k=5) == []
    hits = index.search("sun", k=10)
    assert {h.chunk.seed_id for h in hits} == {ID["bees.md"], ID["comets.txt"]}


def test_exclude_seed_leaves_its_passages_out(index: SeedIndex) -> None:
    hits = index.search("sun", k=10, exclude_seed=ID["comets.txt"])
    assert [h.chunk.seed_id for h in hits] == [ID["bees.md"]]
    assert index.search("sun", k=10, exclude_seed="no-such-seed") == index.search("sun", k=10)


def test_equal_scores_are_ordered_by_chunk_id() -> None:
    text = "Identical passage about lighthouses and their keepers on rocky coasts."
    same = SeedIndex.build([Seed(id="b", text=text), Seed(id="a", text=text), SEEDS[1]])
    hits = same.search("lighthouses keepers", k=5)
    assert [h.chunk.id for h in hits] == ["a#1", "b#1"]
    assert hits[0].score == hits[1].score


def test_search_errors_are_one_line(index: SeedIndex) -> None:
    with pytest.raises(ValueError, match=r"^retrieval: the query is empty$"):
        index.search("   ")
    with pytest.raises(ValueError, match=r"^retrieval: k must be at least 1, got 0$"):
        index.search("bees", k=0)


def test_an_empty_corpus_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^retrieval: no seed text to index \(the corpus"):
        SeedIndex.build([])
    with pytest.raises(ValueError, match=r"^retrieval: the seeds have no word to index$"):
        SeedIndex.build([Seed.from_text("the a of and to")])


# -- distractors ----------------------------------------------------------------------------


def test_distractors_avoid_the_given_ids_and_repeat_with_the_same_rng(index: SeedIndex) -> None:
    small = SeedIndex.build(SEEDS, chunk_words=20, overlap_words=0)
    question = "Why is there a tail pointing away from the sun?"
    own = [h.chunk for h in small.search(question, k=2)]
    avoid = {ID["comets.txt"], *(c.id for c in own)}
    picked = small.distractors(question, 4, avoid=avoid, rng=random.Random(7))
    assert len(picked) == 4 and len({c.id for c in picked}) == 4
    assert all(c.seed_id != ID["comets.txt"] for c in picked)
    assert any(c.seed_id == ID["bees.md"] for c in picked)  # a near miss ("sun")
    assert picked == small.distractors(question, 4, avoid=avoid, rng=random.Random(7))
    draws = {
        tuple(c.id for c in small.distractors(question, 4, avoid=avoid, rng=random.Random(s)))
        for s in range(10)
    }
    assert len(draws) > 1
    chunk_ids = {c.id for c in small.chunks if c.seed_id == ID["bees.md"]}
    avoided = small.distractors("sun", 30, avoid=chunk_ids, rng=random.Random(0))
    assert not chunk_ids & {c.id for c in avoided}
    assert len(avoided) == len(small) - len(chunk_ids)  # all the rest, each once
    assert small.distractors("sun", 0, avoid=(), rng=random.Random(0)) == []


# -- saving, loading, reuse -----------------------------------------------------------------

QUERIES = ["honey bees hive", "glacier ice", "the sun", "year", "chess pawn centre"]


def test_save_and_load_give_identical_results(index: SeedIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "ix")
    loaded = SeedIndex.load(tmp_path / "ix")
    assert len(loaded) == len(index) and loaded.chunks == index.chunks
    assert loaded.fingerprint == index.fingerprint
    for q in QUERIES:
        assert loaded.search(q, k=4) == index.search(q, k=4)
        rng_a, rng_b = random.Random(3), random.Random(3)
        assert loaded.distractors(q, 3, avoid=(), rng=rng_a) == index.distractors(
            q, 3, avoid=(), rng=rng_b
        )


def test_load_errors_are_one_line(index: SeedIndex, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no index in .* \(index.json missing\)"):
        SeedIndex.load(tmp_path / "nothing")
    index.save(tmp_path / "ix")
    chunks = tmp_path / "ix" / "chunks.jsonl"
    chunks.write_text(chunks.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match=r"damaged index in .*: passage counts differ"):
        SeedIndex.load(tmp_path / "ix")


class Builds:
    """Counts the bm25s indexes built."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = retrieval._bm25

        def counted(chunks: list[Chunk]) -> object:
            self.count += 1
            return real(chunks)

        monkeypatch.setattr(retrieval, "_bm25", counted)


def test_load_or_build_reuses_an_unchanged_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = Builds(monkeypatch)
    folder = tmp_path / "run" / "retrieval"
    first = SeedIndex.load_or_build(folder, SEEDS)
    assert builds.count == 1
    stamp = (folder / "index.json").stat().st_mtime_ns
    again = SeedIndex.load_or_build(folder, list(SEEDS))
    assert builds.count == 1  # loaded, not built
    assert (folder / "index.json").stat().st_mtime_ns == stamp
    assert again.search("bees", k=3) == first.search("bees", k=3)


def test_load_or_build_rebuilds_when_seeds_or_settings_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = Builds(monkeypatch)
    folder = tmp_path / "retrieval"
    SeedIndex.load_or_build(folder, SEEDS)
    extra = Seed.from_text("Aurora borealis: charged particles from the sun light the sky.")
    grown = SeedIndex.load_or_build(folder, [*SEEDS, extra])
    assert builds.count == 2
    assert grown.search("aurora", k=1)[0].chunk.seed_id == extra.id
    assert SeedIndex.load(folder).search("aurora", k=1) == grown.search("aurora", k=1)
    SeedIndex.load_or_build(folder, [*SEEDS, extra], chunk_words=20, overlap_words=5)
    assert builds.count == 3
    (folder / "chunks.jsonl").write_text("not json\n")  # damaged: built again
    SeedIndex.load_or_build(folder, [*SEEDS, extra], chunk_words=20, overlap_words=5)
    assert builds.count == 4


# -- the tool -------------------------------------------------------------------------------


async def test_the_tool_lists_numbered_passages_with_ids_and_titles(index: SeedIndex) -> None:
    tool = SearchTool(index, k=2)
    assert tool.spec.name == "search_documents"
    assert tool.spec.parameters["required"] == ["query"]
    hits = index.search("sun", k=2)
    out = await tool({"query": "sun"})
    assert out == "\n\n".join(
        f"[{n}] id: {h.chunk.id} | title: {h.chunk.title}\n{h.chunk.text}"
        for n, h in enumerate(hits, 1)
    )
    assert out.startswith(f"[1] id: {ID['comets.txt']}#1 | title: Comets\n")
    assert (await tool({"query": "sun", "k": 1})).count("[") == 1
    assert await tool({"query": "xylophone"}) == "No passage matches 'xylophone'."


async def test_the_tool_bounds_its_output_and_can_leave_a_seed_out(index: SeedIndex) -> None:
    tool = SearchTool(index, k=2, passage_chars=60, max_k=3, exclude_seed=ID["comets.txt"])
    out = await tool({"query": "sun", "k": 3})
    assert "Comets" not in out and "Honey bees" in out
    body = out.split("\n", 1)[1]
    assert body.endswith(" ...") and len(body) <= 64


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "'query' must be a non-empty string"),
        ({"query": "  "}, "'query' must be a non-empty string"),
        ({"query": 3}, "'query' must be a non-empty string"),
        ({"query": "sun", "k": 0}, "'k' must be an integer from 1 to 10"),
        ({"query": "sun", "k": "2"}, "'k' must be an integer from 1 to 10"),
        ({"query": "sun", "k": True}, "'k' must be an integer from 1 to 10"),
    ],
)
async def test_the_tool_rejects_bad_arguments(
    index: SeedIndex, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolError, match=f"^search_documents: {re.escape(message)}$"):
        await SearchTool(index)(arguments)


async def test_the_tool_runs_in_a_tool_environment(index: SeedIndex) -> None:
    env = ToolEnvironment([SearchTool(index)])
    ok = await env.step(Action("call", name="search_documents", arguments={"query": "rye"}))
    assert not ok.error and "Baking rye bread" in ok.observation
    bad = await env.step(Action("call", name="search_documents", arguments={"query": ""}))
    assert bad.error and "non-empty string" in bad.observation


def test_hits_are_plain_records() -> None:
    chunk = Chunk(id="s#1", seed_id="s", title="T", text="x")
    assert Hit(chunk, 1.5) == Hit(chunk, 1.5)


# -- the repository's example seeds ---------------------------------------------------------


def test_the_example_seeds_are_indexed_and_searched(tmp_path: Path) -> None:
    seeds = list(iter_seeds(EXAMPLES))
    by_source = {s.source: s.id for s in seeds}
    index = SeedIndex.load_or_build(tmp_path / "retrieval", seeds)
    assert {c.seed_id for c in index.chunks} == set(by_source.values())
    assert all(len(c.text.split()) <= 160 for c in index.chunks)
    top = {
        "tidal barrage turbines estuary": "tidal_power.txt",
        "feeding the sourdough starter flour": "sourdough.md",
        "apprentice contract master guild": "apprenticeship_guild.txt",
        "reserve stock of an item in a shop": "inventory.py",
    }
    for query, source in top.items():
        assert index.search(query, k=1)[0].chunk.seed_id == by_source[source], query
    titles = {c.seed_id: c.title for c in index.chunks}
    assert titles[by_source["sourdough.md"]] == "Keeping a sourdough starter alive"
    assert SeedIndex.load_or_build(tmp_path / "retrieval", seeds).chunks == index.chunks


async def test_the_tool_example_in_the_docs_is_current() -> None:
    index = SeedIndex.build(iter_seeds(EXAMPLES))
    out = await SearchTool(index, k=2, passage_chars=160)({"query": "tidal barrage output"})
    docs = (EXAMPLES.parents[1] / "docs" / "retrieval.md").read_text(encoding="utf-8")
    assert f"```text\n{out}\n```" in docs
