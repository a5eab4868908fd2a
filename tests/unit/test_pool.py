"""The pool's bookkeeping: which member takes a request, and when a member leaves and returns."""

from __future__ import annotations

import pytest

from sogni_intelligence.llm.pool import PoolMember, pick, pooled_info
from sogni_intelligence.llm.protocol import EngineInfo
from sogni_intelligence.llm.upstream import public_url


def member(weight: float = 1.0, in_flight: int = 0, healthy: bool = True) -> PoolMember:
    # The bookkeeping never touches the engine.
    return PoolMember(engine=None, weight=weight, in_flight=in_flight, healthy=healthy)  # type: ignore[arg-type]


def test_the_member_with_the_fewest_requests_per_weight_is_picked() -> None:
    busy, idle, heavy = member(in_flight=2), member(in_flight=1), member(weight=4, in_flight=3)

    # (2+1)/1, (1+1)/1 and (3+1)/4: the heavy member is the least loaded after one more.
    assert pick([busy, idle, heavy]) is heavy
    heavy.in_flight = 8  # (8+1)/4 is more than (1+1)/1
    assert pick([busy, idle, heavy]) is idle
    # Of two idle members, the heavier takes the first request.
    light, heavy = member(), member(weight=2)
    assert pick([light, heavy]) is heavy


def test_unhealthy_and_skipped_members_are_never_picked() -> None:
    down, tried, free = member(healthy=False), member(in_flight=5), member(in_flight=9)

    assert pick([down, tried, free]) is tried
    assert pick([down, tried, free], skip=[tried]) is free
    assert pick([down, tried, free], skip=[tried, free]) is None
    assert pick([member(healthy=False), member(healthy=False)]) is None


def test_among_equals_the_member_that_waited_longest_is_picked() -> None:
    members = [member(), member(), member()]
    members[0].last_pick, members[1].last_pick, members[2].last_pick = 7, 5, 6

    assert pick(members) is members[1]
    members[1].healthy = False
    assert pick(members) is members[2]


def test_idle_members_take_turns_also_while_one_is_out() -> None:
    members = [member(), member(healthy=False), member(), member()]
    order = []
    for count in range(1, 7):
        chosen = pick(members)
        assert chosen is not None
        chosen.last_pick = count
        order.append(members.index(chosen))

    assert order == [0, 2, 3, 0, 2, 3]


def test_requests_that_stay_open_spread_by_weight() -> None:
    members = [member(), member(), member(weight=2)]

    for count in range(1, 9):
        chosen = pick(members)
        assert chosen is not None
        chosen.in_flight += 1
        chosen.last_pick = count

    assert [m.in_flight for m in members] == [2, 2, 4]


def test_counted_failures_take_a_member_out_at_the_threshold() -> None:
    m = member()

    assert m.failed("answered 500", down=False, unhealthy_after=3) is False
    assert m.failed("answered 502", down=False, unhealthy_after=3) is False
    assert m.healthy and m.failures == 2
    assert m.failed("timed out", down=False, unhealthy_after=3) is True
    assert not m.healthy and m.last_error == "timed out"
    # Already out: another failure is no new transition.
    assert m.failed("timed out", down=False, unhealthy_after=3) is False
    assert m.failures == 4


def test_a_member_that_cannot_be_reached_is_out_at_once() -> None:
    m = member()

    assert m.failed("connection refused", down=True, unhealthy_after=5) is True
    assert not m.healthy and m.failures == 1


def test_a_pass_brings_a_member_back_and_resets_the_count() -> None:
    m = member()
    m.failed("answered 503", down=False, unhealthy_after=3)
    assert m.passed() is False  # it never left
    assert m.failures == 0

    m.failed("connection refused", down=True, unhealthy_after=3)
    assert m.passed() is True
    assert m.healthy and m.failures == 0
    assert m.last_error == "connection refused"  # kept, for the operator to see
    # After the reset it takes the full count again to leave.
    assert m.failed("answered 503", down=False, unhealthy_after=2) is False


def info(
    engine: str, vision: bool = True, native: bool = True, slots: int | None = None
) -> EngineInfo:
    return EngineInfo(engine, f"{engine}-model", vision, native, slots)


@pytest.mark.parametrize(
    ("infos", "engine", "vision", "native_tools", "slots"),
    [
        ([info("upstream"), info("upstream")], "upstream", True, True, None),
        ([info("upstream"), info("upstream", vision=False)], "upstream", False, True, None),
        ([info("embedded", native=False, slots=4), info("upstream")], "mixed", True, False, None),
        ([info("embedded", slots=4), info("embedded", slots=2)], "embedded", True, True, 6),
    ],
)
def test_a_pool_offers_only_what_every_member_offers(
    infos: list[EngineInfo], engine: str, vision: bool, native_tools: bool, slots: int | None
) -> None:
    pooled = pooled_info(infos)

    assert (pooled.engine, pooled.vision, pooled.native_tools, pooled.slots) == (
        engine,
        vision,
        native_tools,
        slots,
    )
    assert pooled.model == ", ".join(i.model for i in infos)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://gpu:8000/v1/", "http://gpu:8000/v1"),
        ("https://user:secret@llm.example.com/v1", "https://llm.example.com/v1"),
        ("http://gpu/v1?api-key=secret", "http://gpu/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ],
)
def test_upstream_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown
