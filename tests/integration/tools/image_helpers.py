"""Helpers shared by the image tool tests: call a tool by name, read back what it made."""

import hashlib

from PIL import Image

from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.image_tools import TOOLS
from tests.integration.tools.conftest import asset_file

BY_NAME = {tool.name: tool for tool in TOOLS}


async def run(ctx: ToolContext, name: str, **arguments: object) -> dict:
    return await execute(BY_NAME[name], arguments, ctx)


async def sizes(ctx: ToolContext, result: dict) -> list[tuple[int, int]]:
    """The decoded size of every output image."""
    out = []
    for index in range(len(result["output_assets"])):
        with Image.open(await asset_file(ctx, result, index)) as image:
            image.load()
            out.append(image.size)
    return out


async def digests(ctx: ToolContext, result: dict) -> list[str]:
    return [
        hashlib.sha256((await asset_file(ctx, result, i)).read_bytes()).hexdigest()
        for i in range(len(result["output_assets"]))
    ]


def warned(result: dict, *names: str) -> bool:
    """Whether the result's warnings name every one of `names`."""
    text = " ".join(result.get("warnings", []))
    return all(name in text for name in names)
