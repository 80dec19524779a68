"""The shared value rules' fast paths decide exactly as the rules they shortcut: dates and times (never a
number, within 1900-2200 in UTC), event ids (random version 4 UUIDs), a stage found by key or name."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from contracts import pipeline as c
from contracts.base import new_id
from contracts.fields import EARLIEST, LATEST, Day, Moment


class _Times(BaseModel):
    at: Moment | None = None
    day: Day | None = None


def _accepted(**value: object) -> bool:
    try:
        _Times.model_validate(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("value", [0, 1700000000, 1.5, "1700000000", " 12 ", "-5", "+3.25", "1e5", "2026"])
def test_a_number_is_never_a_date_or_a_time(value: object) -> None:
    assert not _accepted(at=value)
    assert not _accepted(day=value)
    with pytest.raises(ValidationError, match="not a number"):
        _Times.model_validate({"at": value})


@pytest.mark.parametrize("text", ["2026-11-30T12:00:00Z", "2026-11-30T12:00:00+05:30", "1900-01-01T00:00:00Z",
                                  "2200-12-31T23:59:59.999999Z"])
def test_iso_text_is_read(text: str) -> None:
    assert _Times.model_validate({"at": text}).at == datetime.fromisoformat(text.replace("Z", "+00:00"))


def _old_rule(at: datetime) -> bool:
    """The range as it was written before the instant comparison: the UTC date within the bounds."""
    return EARLIEST <= at.astimezone(UTC).date() <= LATEST


@pytest.mark.parametrize("offset_hours", [-14, -1, 0, 1, 14])
@pytest.mark.parametrize("edge", [datetime(1900, 1, 1, tzinfo=UTC), datetime(2201, 1, 1, tzinfo=UTC)])
def test_the_range_of_a_moment_is_its_utc_date_whatever_its_offset(offset_hours: int, edge: datetime) -> None:
    zone = timezone(timedelta(hours=offset_hours))
    for step in (-2, -1, 0, 1):
        at = (edge + timedelta(microseconds=step)).astimezone(zone)
        assert _accepted(at=at.isoformat()) == _old_rule(at), at
        assert _accepted(at=at) == _old_rule(at), at


def test_an_out_of_range_moment_says_the_range() -> None:
    with pytest.raises(ValidationError, match="must be between 1900-01-01 and 2200-12-31"):
        _Times.model_validate({"at": "2201-01-01T00:00:00Z"})
    assert _accepted(day=date(2200, 12, 31)) and not _accepted(day="2201-01-01")


def test_ids_are_distinct_random_version_4_uuids() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {4} and {i.variant for i in ids} == {"specified in RFC 4122"}
    assert all(type(i)(str(i)) == i and hash(type(i)(str(i))) == hash(i) for i in ids[:100])


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    new_id()  # the parent holds unused random values now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "".join(str(new_id()) for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 10_000).decode()
    os.close(read)
    parent = "".join(str(new_id()) for _ in range(10))
    assert len(child) == len(parent) == 360 and child != parent
    assert not {child[i:i + 36] for i in range(0, 360, 36)} & {parent[i:i + 36] for i in range(0, 360, 36)}


def test_a_stage_is_found_by_key_or_name_the_first_one_winning() -> None:
    s = c.ACE_STAGE_SET
    assert s.stage("technical_validation") is s.stage(" Technical VALIDATION ") is s.stages[2]
    assert s.stage("Launch") is None and s.stage("") is None
    odd = c.StageSet(key="odd", name="Odd", stages=(
        c.StageDef(key="a", name="B", probability=10),
        c.StageDef(key="b", name="Won", probability=100, outcome=c.Outcome.won),
        c.StageDef(key="lost", name="A", probability=0, outcome=c.Outcome.lost),
    ))
    assert odd.stage("b") is odd.stages[0]  # named B, before the stage whose key is b
    assert odd.stage("a") is odd.stages[0] and odd.stage("won") is odd.stages[1]
    assert odd == c.StageSet.model_validate(odd.model_dump())  # the index is not part of the value
    assert set(odd.model_dump()) == {"key", "name", "stages", "builtin", "version"}
    fewer = odd.model_copy(update={"stages": odd.stages[1:]})  # a copy with other stages: another index
    assert fewer.stage("a") is fewer.stages[1] and odd.stage("a") is odd.stages[0]  # now the lost stage, named A
