"""The embedded client's per-row stopping criterion: budgets and loop detection (no model)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from genteach.models.local import _PerRowBudget  # noqa: E402


def _ids(prompt: list[int], rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor([prompt + r for r in rows])


def test_each_row_ends_at_its_own_budget() -> None:
    budget = _PerRowBudget(2, [3, 5], loop_window=8, loop_distinct=3)
    assert budget(_ids([0, 0], [[1, 2, 3], [4, 5, 6]]), None).tolist() == [True, False]
    assert budget(_ids([0, 0], [[1, 2, 3, 4, 5], [4, 5, 6, 7, 8]]), None).tolist() == [True, True]
    assert budget.looped == {}


def test_a_row_repeating_a_few_tokens_is_ended_and_recorded() -> None:
    looping = [7, 8, 9, 7, 8, 9, 7, 8]  # three distinct ids in a window of eight
    varied = [10, 11, 12, 13, 14, 15, 16, 17]
    budget = _PerRowBudget(1, [100, 100], loop_window=8, loop_distinct=4)
    done = budget(_ids([0], [looping, varied]), None)
    assert done.tolist() == [True, False]
    assert budget.looped == {0: 8}
    # later steps keep the first position where the loop was seen
    budget(_ids([0], [[*looping, 9], [*varied, 18]]), None)
    assert budget.looped == {0: 8}


def test_no_loop_check_before_the_window_fills() -> None:
    budget = _PerRowBudget(1, [100], loop_window=8, loop_distinct=4)
    assert budget(_ids([0], [[5, 5, 5, 5, 5]]), None).tolist() == [False]
    assert budget.looped == {}


def test_a_row_meeting_its_stop_sequence_ends_and_steps_are_reported() -> None:
    import threading

    words = {1: "Thought", 2: ":", 3: " x", 4: "\nObservation", 5: ": 42"}
    steps: list[int] = []
    budget = _PerRowBudget(
        1,
        [100, 100],
        stops=[("Observation:",), ()],
        decode=lambda ids: "".join(words.get(i, "") for i in ids),
        on_step=lambda: steps.append(1),
        abort=threading.Event(),
    )
    assert budget(_ids([0], [[1, 2, 3], [1, 2, 3]]), None).tolist() == [False, False]
    assert budget(_ids([0], [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]), None).tolist() == [True, False]
    assert budget.stopped == {0: 5}
    # the row stays done; the other one runs on until its budget or an abort
    assert budget(_ids([0], [[1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 3]]), None).tolist() == [
        True,
        False,
    ]
    assert budget.abort is not None
    budget.abort.set()
    assert budget(_ids([0], [[1] * 7, [1] * 7]), None).tolist() == [True, True]
    assert len(steps) == 4
