import json
from pathlib import Path

import pytest

from scheduler.booking.parse import BookingInputError, load_problem, problem_from_dict
from scheduler.booking.solve import check_confirmed
from tests.booking.helpers import at, booking, doc

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "booking" / "example-month.json"


def errors_of(d: object) -> list[str]:
    with pytest.raises(BookingInputError) as exc:
        problem_from_dict(d)
    return exc.value.errors


def test_example_parses() -> None:
    p = load_problem(EXAMPLE)
    assert len(p.stages) == 10 and len(p.bookings) == 40
    assert all(b.earliest_start.utcoffset() is not None for b in p.bookings)


def test_bad_duration_names_path_and_value() -> None:
    d = doc(*(booking(f"B{i}") for i in range(4)))
    d["bookings"][3]["duration_minutes"] = -15
    assert "bookings[3].duration_minutes: must be > 0, got -15" in errors_of(d)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"earliest_start": "2031-05-04T08:00:00"},
         "bookings[0].earliest_start: must carry a UTC offset"),
        ({"earliest_start": "tomorrow"}, "bookings[0].earliest_start: must be an ISO 8601"),
        ({"pools": {"nope": 1}}, "bookings[0].pools.nope: unknown pool 'nope'"),
        ({"stages": ["XX-9"]}, "bookings[0].stages[0]: unknown stage 'XX-9'"),
        ({"priority": 0}, "bookings[0].priority: must be > 0, got 0"),
        ({"status": "maybe"}, "bookings[0].status: must be one of"),
        ({"latest_end": at(7)}, "bookings[0].latest_end: must be after earliest_start"),
        ({"colour": "red"}, "bookings[0].colour: unknown field"),
        ({"status": "confirmed"}, "bookings[0]: a confirmed booking needs both stage and start"),
        ({"phases": [{"name": "shoot", "duration_minutes": 60}]},
         "bookings[0].phases: phase durations sum to 60"),
    ],
)
def test_errors(patch: dict[str, object], expected: str) -> None:
    d = doc(booking("B0", **patch))
    assert any(e.startswith(expected) for e in errors_of(d)), errors_of(d)


def test_duplicate_ids_and_all_errors_collected() -> None:
    d = doc(booking("B0"), booking("B0", duration_minutes=0))
    errs = errors_of(d)
    assert "bookings[1].duration_minutes: must be > 0, got 0" in errs
    d = doc(booking("B0"), booking("B0"))
    assert "bookings[1].id: duplicate id 'B0'" in errors_of(d)


def test_invalid_json_file(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{nope")
    with pytest.raises(BookingInputError, match="invalid JSON"):
        load_problem(f)


def test_conflicting_confirmed_is_bad_input() -> None:
    d = doc(
        booking("C1", status="confirmed", stage="NS-1", start=at(9)),
        booking("C2", status="confirmed", stage="NS-1", start=at(12)),
    )
    with pytest.raises(BookingInputError, match=r"bookings\[1\]: confirmed booking breaks a rule"):
        check_confirmed(problem_from_dict(d))


def test_example_round_trips_through_json() -> None:
    raw = json.loads(EXAMPLE.read_text())
    assert problem_from_dict(raw) == problem_from_dict(json.loads(json.dumps(raw)))


def test_a_missing_required_field_is_said_once() -> None:
    """"is required", not also "must be an integer, got null" (the desk's POST {} showed both)."""
    from scheduler.booking.parse import BookingInputError, problem_from_dict
    from tests.booking.helpers import stages_doc

    doc = stages_doc()
    doc["bookings"] = [{}]
    try:
        problem_from_dict(doc)
    except BookingInputError as exc:
        errors = exc.errors
    else:
        raise AssertionError("an empty booking was accepted")
    for key in ("id", "priority", "earliest_start", "latest_end", "duration_minutes"):
        said = [e for e in errors if e.startswith(f"bookings[0].{key}:")]
        assert said == [f"bookings[0].{key}: is required"], errors
    doc["bookings"] = [{"id": "A", "priority": None, "duration_minutes": 60,
                        "earliest_start": "2031-05-04T08:00:00+08:00",
                        "latest_end": "2031-05-04T20:00:00+08:00"}]
    try:
        problem_from_dict(doc)
    except BookingInputError as exc:  # an explicit null is a wrong type, said once
        assert exc.errors == ["bookings[0].priority: must be an integer, got null"], exc.errors
    else:
        raise AssertionError("a null priority was accepted")
