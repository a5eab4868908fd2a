"""A pool of engines serving one model: each request goes to the least busy healthy member.

Members are OpenAI-compatible upstreams and, optionally, the embedded model. A background task
probes every member on an interval: a member that fails `unhealthy_after` checks or requests
in a row leaves the rotation, one that cannot be reached at all leaves at once, and one passed
check brings it back. A request whose member fails before the first chunk goes to another
member; once a chunk has gone to the caller it is never sent again, since the caller would
see the answer start twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass

from sogni_intelligence.config import ModelConfig
from sogni_intelligence.llm.protocol import (
    ChatRequest,
    Chunk,
    CountsTokens,
    EngineError,
    EngineInfo,
    EngineUnavailable,
    PoolableEngine,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PoolMember:
    """One engine of a pool and what the pool knows about it."""

    engine: PoolableEngine
    weight: float
    in_flight: int = 0
    healthy: bool = True
    failures: int = 0  # failed checks or requests in a row
    last_error: str | None = None
    last_pick: int = 0  # when it last took a request, in the pool's count of requests

    @property
    def name(self) -> str:
        return self.engine.info.url or f"{self.engine.info.engine} {self.engine.info.model}"

    @property
    def load(self) -> float:
        """Requests per unit of weight it would have with one more: the least loaded one takes
        the next request, so the first of several idle members is the heaviest."""
        return (self.in_flight + 1) / self.weight

    def failed(self, error: str, down: bool, unhealthy_after: int) -> bool:
        """Count a failed check or request; True when this takes the member out."""
        was_healthy = self.healthy
        self.failures += 1
        self.last_error = error
        if down or self.failures >= unhealthy_after:
            self.healthy = False
        return was_healthy and not self.healthy

    def passed(self) -> bool:
        """A check or request went through; True when this brings the member back."""
        was_healthy = self.healthy
        self.failures = 0
        self.healthy = True
        return not was_healthy


def pick(members: Sequence[PoolMember], skip: Sequence[PoolMember] = ()) -> PoolMember | None:
    """The healthy member outside `skip` that one more request loads least; among equals the
    one that waited longest since its last request, so that idle members take turns."""
    candidates = [m for m in members if m.healthy and m not in skip]
    return min(candidates, key=lambda m: (m.load, m.last_pick), default=None)


def pooled_info(infos: Sequence[EngineInfo]) -> EngineInfo:
    """What `/v1/models` shows about a pool: a request may land on any member, so it takes
    images only if every member does."""
    kinds = {info.engine for info in infos}
    slots = [info.slots for info in infos]
    return EngineInfo(
        engine=kinds.pop() if len(kinds) == 1 else "mixed",
        model=", ".join(info.model for info in infos),
        vision=all(info.vision for info in infos),
        native_tools=all(info.native_tools for info in infos),
        slots=None if None in slots else sum(s or 0 for s in slots),
    )


class PoolEngine:
    def __init__(self, config: ModelConfig, members: list[PoolMember]) -> None:
        assert members, "a pool needs a member"
        self.config = config
        self.members = members
        self.info = pooled_info([m.engine.info for m in members])
        self._picks = 0
        self._checks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for member in self.members:
            await member.engine.start()
        # The embedded model learns what it can do only once it is loaded.
        self.info = pooled_info([m.engine.info for m in self.members])
        # The first requests go only to members known to be up (one health timeout at most).
        await self.check()
        self._checks = asyncio.create_task(self._check_forever(), name=f"pool {self.config.id}")

    async def close(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            with suppress(asyncio.CancelledError):
                await self._checks
        for member in self.members:
            await member.engine.close()

    async def check(self) -> None:
        """Probe every member once, all at the same time."""
        await asyncio.gather(*(self._check(member) for member in self.members))

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval_s)
            await self.check()

    async def _check(self, member: PoolMember) -> None:
        try:
            await member.engine.probe()
        except EngineUnavailable as exc:
            self._failed(member, exc.message, exc.down)
        except Exception as exc:  # a broken probe must not stop the checks of the others
            log.exception("model %s: the health check of %s failed", self.config.id, member.name)
            self._failed(member, f"health check failed: {exc!r}", False)
        else:
            self._passed(member)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        tried: list[PoolMember] = []
        last: EngineUnavailable | None = None
        while (member := pick(self.members, tried)) is not None:
            self._picks += 1
            member.last_pick = self._picks
            tried.append(member)
            member.in_flight += 1
            sent = False
            try:
                async with aclosing(member.engine.stream(request)) as chunks:
                    async for chunk in chunks:
                        if not sent:
                            sent = True
                            self._passed(member)
                        yield chunk
                return
            except EngineUnavailable as exc:
                if sent:
                    raise
                self._failed(member, exc.message, exc.down)
                last = exc
            finally:
                member.in_flight -= 1
        if last is not None and any(member.healthy for member in self.members):
            raise last  # every member was tried and answered with an error of its own
        raise self._unavailable()

    async def count_prompt_tokens(self, request: ChatRequest) -> int | None:
        """Counted by a member that can (the embedded model, whose tokenizer is the model's)."""
        for member in self.members:
            if isinstance(member.engine, CountsTokens):
                counted = await member.engine.count_prompt_tokens(request)
                if counted is not None:
                    return counted
        return None

    def _unavailable(self) -> EngineError:
        states = "; ".join(f"{member.name}: {member.last_error}" for member in self.members)
        return EngineError(
            f"no healthy upstream serves the model '{self.config.id}' now ({states})",
            503,
            "server_error",
            "upstream_unavailable",
        )

    def _failed(self, member: PoolMember, error: str, down: bool) -> None:
        if member.failed(error, down, self.config.unhealthy_after):
            log.warning("model %s: %s is out of rotation: %s", self.config.id, member.name, error)

    def _passed(self, member: PoolMember) -> None:
        if member.passed():
            log.info("model %s: %s is back in rotation", self.config.id, member.name)
