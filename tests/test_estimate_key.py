"""The estimate key (Fermi): a band for the final answer, and every written arithmetic step
recomputed by the calculator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from genteach.keys import EstimateKey, KeyKinds, Layout, checked_steps, estimate_value

L = Layout()
KEY = EstimateKey(
    value=216_000,
    unit="litres",
    low=70_000,
    high=700_000,
    assumptions=["people in the city: 2.7 million", "a person drinks 0.08 litres a day"],
)
GOOD = """Assumptions: 2.7 million people; a coffee is 0.2 litres; 40% drink one a day.
2,700,000 × 0.4 = 1,080,000 drinkers
1,080,000 × 0.2 = 216,000 litres a day
Final answer: about 216,000 litres"""


def test_a_sound_estimate_with_right_steps_passes() -> None:
    v = KEY.check(GOOD, L)
    assert v.status == "passed" and v.detail == "216000, 2 steps checked"
    assert KeyKinds().parse(KEY.model_dump()) == KEY  # a built-in kind


def test_a_wrong_step_fails_and_is_quoted() -> None:
    bad = GOOD.replace("= 216,000 litres a day", "= 316,000 litres a day")
    v = KEY.check(bad, L)
    assert v.status == "failed"
    assert v.detail == 'a wrong step: "1,080,000 × 0.2 = 316,000 litres" (it is 216000)'


def test_rounding_to_the_digits_shown_is_allowed() -> None:
    assert checked_steps("2 / 3 = 0.67 of them") == (1, "")
    assert checked_steps("1,080,000 × 0.2 = 220,000") == (1, "")  # two digits: 2% off is fine
    n, wrong = checked_steps("1,080,000 × 0.2 = 250,000")  # 16% off two digits shown
    assert n == 1 and wrong.startswith('"1,080,000 × 0.2 = 250,000"')


def test_an_estimate_needs_shown_steps_a_number_and_the_band() -> None:
    one_step = "2,700,000 × 0.08 = 216,000\nFinal answer: 216,000 litres"
    assert KEY.check(one_step, L).detail.startswith("1 arithmetic step(s) written")
    assert KEY.check(GOOD.replace("about 216,000", "a lot of"), L).detail.startswith(
        "no number in the final answer; the key is about 216000 litres (sound from 70000"
    )
    assert KEY.check(GOOD.rsplit("\n", 1)[0], L).detail == "no 'Final answer:' line"
    far = GOOD.replace("Final answer: about 216,000 litres", "Final answer: 2.16 million litres")
    assert KEY.check(far, L).detail.startswith("the estimate 2.16e+06 is outside the key")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("about 3.2 million people", 3_200_000),
        ("4×10^5 tonnes", 400_000),
        ("roughly 2e6", 2_000_000),
        ("1,200 piano tuners", 1200),
        ("0.5 kWh", 0.5),
        ("nothing", None),
    ],
)
def test_the_final_number_is_read_with_its_scale(text: str, value: float | None) -> None:
    assert estimate_value(text) == value


def test_the_band_and_the_unit_are_checked_when_written() -> None:
    base = KEY.model_dump()
    # a band too narrow, too wide or missing the value becomes one order of magnitude
    for low, high, value in ((200_000, 240_000, 216_000), (1, 1e9, 216_000), (70_000, 7e5, 10)):
        k = EstimateKey.model_validate({**base, "low": low, "high": high, "value": value})
        assert k.low == pytest.approx(value / 10**0.5) and k.high == pytest.approx(value * 10**0.5)
    with pytest.raises(ValidationError, match="greater than 0"):
        EstimateKey.model_validate({**base, "value": 0})
    assert KEY.fit_task("Estimate the litres of coffee drunk a day; show each step.", None) is None
    assert KEY.fit_task("Estimate the coffee drunk a day.", None) == (
        'the unit "litres" is not named in the instruction'
    )
    assert KEY.same_answer(EstimateKey.model_validate({**base, "value": 300_000}))
    assert not KEY.same_answer(
        EstimateKey.model_validate({**base, "value": 1_500_000, "low": 200_000, "high": 7_000_000})
    )
