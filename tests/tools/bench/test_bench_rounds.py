"""How ``ecom-bench`` turns paired rounds into one figure: each product drain against its own
round's ceiling, the median round reported, every round kept."""

from __future__ import annotations

from ecom_devtools.bench.drain_results import DrainResult, PairedDrain
from ecom_devtools.bench.drains import _paired, summarise_rounds


def _drain(rate: float, cpu: float) -> DrainResult:
    return DrainResult(
        published=100,
        count=100,
        seconds=100 / rate,
        rate=rate,
        processes=1,
        cpu_cores={},
        consumer_cpu_us_per_message=cpu,
        exit_codes={},
        timeline=[],
    )


def _round(round_no: int, rate: float, ceiling_rate: float) -> PairedDrain:
    return _paired(_drain(rate, 120.0), _drain(ceiling_rate, 90.0), round_no)


def test_a_pair_is_set_against_its_own_ceiling() -> None:
    paired = _round(2, 900.0, 1000.0)
    assert paired.ratio == 0.9
    assert paired.ceiling == 1000.0
    assert paired.cpu_ratio == 0.75  # 90 µs against 120 µs
    assert paired.ceiling_first is False  # even rounds run the ceiling last
    assert _round(1, 900.0, 1000.0).ceiling_first is True


def test_no_ceiling_means_no_ratio() -> None:
    paired = _paired(_drain(900.0, 120.0), None, 1)
    assert paired.ratio is None
    assert paired.cpu_ratio is None
    assert summarise_rounds([paired]).ratio_range is None


def test_the_median_round_is_reported_with_every_round() -> None:
    # Ratios 0.8, 0.95, 0.7: the median is round 1's, whose rate is not the median rate.
    rounds = [_round(1, 800.0, 1000.0), _round(2, 950.0, 1000.0), _round(3, 1400.0, 2000.0)]
    summary = summarise_rounds(rounds).as_json()
    assert summary["round"] == 1
    assert (summary["rate"], summary["ceiling"], summary["ratio"]) == (800.0, 1000.0, 0.8)
    assert summary["median_of_rounds"] == 3
    assert summary["ratio_range"] == [0.7, 0.95]
    assert [r["ratio"] for r in summary["rounds"]] == [0.8, 0.95, 0.7]


def test_an_even_count_reports_the_lower_middle_round() -> None:
    rounds = [_round(n, rate, 1000.0) for n, rate in enumerate((900.0, 700.0, 800.0, 1000.0), 1)]
    assert summarise_rounds(rounds).median.ratio == 0.8
