"""Composition tools: they write text and plans for the creative agent instead of making media.

Each one asks the default text model (the `text_llm` service) for a JSON object whose schema is
enforced by a grammar while it decodes, so even a tiny model returns every documented key. What
has to be right no matter how good the model is lives here in code: the step graph and cost of a
composed workflow, the section layout and timings of lyrics and instrumentals, and the ranges
of suggested music parameters. The model only supplies wording.
"""

from __future__ import annotations

from sogni_intelligence.tools.base import (
    CREATIVE,
    Tool,
    tool_family,
)
from sogni_intelligence.tools.composing import (
    AGENT_ONLY,
    COST,
)
from sogni_intelligence.tools.prompt_tools import (
    EnhancePromptArgs,
    enhance_prompt,
)
from sogni_intelligence.tools.workflow_composer import (
    ComposeWorkflowArgs,
    ComposeWorkflowTemplateArgs,
    compose_workflow,
    compose_workflow_template,
)
from sogni_intelligence.tools.writing_tools import (
    ComposeInstrumentalArgs,
    ComposeLyricsArgs,
    ComposeScriptArgs,
    compose_instrumental,
    compose_lyrics,
    compose_script,
)

TOOLS = tool_family(
    "composition",
    "analysis",
    [
        Tool(
            "enhance_prompt",
            "Rewrite a rough idea into a prompt suited to one exact destination model (image, "
            "video, edit or any model id), or shorten, keep or check it. Returns the prompt.",
            EnhancePromptArgs,
            enhance_prompt,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_script",
            "Write a script, storyboard or ad copy from a brief; with scene_count it is split into "
            "timed scenes (visual + narration). Returns the script text and the scenes.",
            ComposeScriptArgs,
            compose_script,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_lyrics",
            "Write song lyrics in verse/chorus sections for a theme, with suggested music "
            "parameters (duration, bpm, key, beats per bar, music prompt) for generate_music.",
            ComposeLyricsArgs,
            compose_lyrics,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_instrumental",
            "Plan an instrumental piece: timed sections with what happens in each, plus suggested "
            "music parameters (duration, bpm, key, beats per bar, music prompt) for "
            "generate_music.",
            ComposeInstrumentalArgs,
            compose_instrumental,
            CREATIVE,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_workflow",
            "Turn a brief into a ready-to-run workflow: one picture per scene, animated into "
            "clips, joined (optionally with music), with a capacity estimate that respects a "
            "budget.",
            ComposeWorkflowArgs,
            compose_workflow,
            AGENT_ONLY,
            cost=lambda args: COST,
        ),
        Tool(
            "compose_workflow_template",
            "Like compose_workflow, but returns a reusable template draft (to save as a workflow "
            "template) plus the concrete plan; can revise an existing template.",
            ComposeWorkflowTemplateArgs,
            compose_workflow_template,
            AGENT_ONLY,
            cost=lambda args: COST,
        ),
    ],
)
