"""The model ids a composition tool's schema offers are exactly those the tool accepts, so a
call grammar built from the schema cannot write one the tool refuses."""

from itertools import product
from typing import Any

import jsonschema
import pytest

from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.composing import ALL_MEDIA_MODELS
from sogni_intelligence.tools.media_context import MediaContext

#: Every id any table knows (some this server cannot run), and ids no table knows.
CANDIDATES = [*sorted(ALL_MEDIA_MODELS), "image_prompt.json", "dall-e", ""]
TARGETS = ["image_prompt", "video_prompt", "edit_prompt", "model_prompt"]


async def _refusal(tool: str, arguments: dict[str, Any], argument: str) -> str | None:
    """Why the tool refused the model id named by `argument`; None when it took it (a later
    failure, such as no text model in this test, is not about the id)."""
    ctx = ToolContext("owner", MediaContext(), store=None)  # type: ignore[arg-type]
    result = await execute(CATALOG[tool], arguments, ctx)
    message = result.get("message") or ""
    return message if not result["ok"] and message.startswith(argument) else None


def _schema_allows(tool: str, arguments: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(CATALOG[tool].parameters()).is_valid(arguments)


@pytest.mark.parametrize("target", TARGETS)
async def test_enhance_prompt_offers_the_models_its_target_takes(target: str) -> None:
    for model in CANDIDATES:
        arguments = {
            "prompt": "a fox",
            "target_output": target,
            "destination_model": model,
            "prompt_mode": "validate",  # checks the model without asking the text model
        }
        refused = await _refusal("enhance_prompt", arguments, "destination_model")
        assert _schema_allows("enhance_prompt", arguments) == (refused is None), (model, refused)


async def test_compose_script_offers_the_models_it_takes() -> None:
    for model in CANDIDATES:
        arguments = {"brief": "a fox", "destination_model": model}
        refused = await _refusal("compose_script", arguments, "destination_model")
        assert _schema_allows("compose_script", arguments) == (refused is None), (model, refused)


async def test_compose_workflow_offers_the_models_it_takes() -> None:
    for kind, model in product(("image", "video", "music"), CANDIDATES):
        arguments = {"brief": "a fox", "destination_models": {kind: model}}
        refused = await _refusal("compose_workflow", arguments, "destination_models")
        assert _schema_allows("compose_workflow", arguments) == (refused is None), (model, refused)
