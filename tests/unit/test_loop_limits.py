from pathlib import Path

import pytest
from pydantic import ValidationError

from sogni_intelligence.agent.loop import LoopLimits
from sogni_intelligence.config import Settings


def test_the_token_bound_of_a_round_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LoopLimits.from_settings(Settings(data_dir=tmp_path)) == LoopLimits()
    assert LoopLimits().max_tokens_per_round == 1024
    monkeypatch.setenv("SOGNI_AGENT_MAX_TOKENS_PER_ROUND", "64")
    monkeypatch.setenv("SOGNI_AGENT_MAX_ROUNDS", "3")
    limits = LoopLimits.from_settings(Settings(data_dir=tmp_path))
    assert (limits.max_rounds, limits.max_tokens_per_round) == (3, 64)
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, agent_max_tokens_per_round=0)
