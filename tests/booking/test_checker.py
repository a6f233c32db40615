from datetime import datetime, timedelta

import pytest

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment
from scheduler.booking.parse import problem_from_dict
from tests.booking.helpers import at, booking, doc


def a(bid: str, stage: str, start: str, minutes: int = 240) -> Assignment:
    s = datetime.fromisoformat(start)
    return Assignment(bid, stage, s, s + timedelta(minutes=minutes))


def kinds(d: dict, plan: list[Assignment], rejected: list[str] | None = None) -> set[str]:
    return {v.kind for v in check_plan(problem_from_dict(d), plan, rejected)}


def test_valid_plan_passes() -> None:
    d = doc(booking("A"), booking("B"), booking("C", requires=["xr"]))
    plan = [a("A", "NS-1", at(8)), a("B", "NS-1", at(12.5)), a("C", "HK-1", at(8))]
    assert kinds(d, plan, []) == set()


def test_changeover_counts_as_overlap() -> None:
    d = doc(booking("A"), booking("B"))
    assert kinds(d, [a("A", "NS-1", at(8)), a("B", "NS-1", at(12.25))]) == {"overlap"}
    assert kinds(d, [a("A", "NS-1", at(8)), a("B", "NS-1", at(12.5))]) == set()
    assert kinds(d, [a("A", "HP-1", at(8)), a("B", "HP-1", at(12.75))]) == {"overlap"}


@pytest.mark.parametrize(
    ("bk", "placed", "kind"),
    [
        (booking("A", requires=["xr"]), a("A", "NS-1", at(8)), "capability"),
        (booking("A", stages=["HP-1"]), a("A", "NS-1", at(8)), "stage"),
        (booking("A"), a("A", "NS-1", at(17)), "window"),
        (booking("A"), a("A", "NS-1", at(8), 120), "duration"),
        (booking("A"), a("A", "NS-1", at(8.1)), "slot"),
        (booking("A", requires=["xr"], latest_end=at(23)), a("A", "HK-1", at(18)), "open"),
        (booking("A"), a("A", "XX-1", at(8)), "unknown"),
    ],
)
def test_single_rule_violations(bk: dict, placed: Assignment, kind: str) -> None:
    assert kinds(doc(bk), [placed]) == {kind}


def test_outage() -> None:
    d = doc(booking("A"))
    d["stages"][1]["outages"] = [[at(11), at(12)]]
    assert kinds(d, [a("A", "NS-1", at(8))]) == {"outage"}
    assert kinds(d, [a("A", "NS-1", at(12), 240)]) == set()


def test_pool_capacity() -> None:
    d = doc(booking("A", pools={"arm_kits": 1}), booking("B", pools={"arm_kits": 1}))
    assert kinds(d, [a("A", "HP-1", at(8)), a("B", "NS-1", at(10))]) == {"pool"}
    assert kinds(d, [a("A", "HP-1", at(8)), a("B", "NS-1", at(12))]) == set()


def test_fixed_booking_moved_or_missing() -> None:
    d = doc(booking("C", status="confirmed", stage="NS-1", start=at(9)))
    assert kinds(d, [a("C", "NS-1", at(10))]) == {"fixed"}
    assert kinds(d, []) == {"fixed"}


def test_coverage_and_duplicates() -> None:
    d = doc(booking("A"), booking("B"))
    assert kinds(d, [a("A", "NS-1", at(8))], []) == {"coverage"}
    assert kinds(d, [a("A", "NS-1", at(8))], ["A", "B"]) == {"coverage"}
    assert kinds(d, [a("A", "NS-1", at(8)), a("A", "HP-1", at(8))], ["B"]) == {"duplicate"}
