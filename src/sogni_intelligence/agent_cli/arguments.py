"""The command line of `sogni-agent`: its flags, which mode each belongs to, and the checks
that refuse a flag the chosen mode would silently ignore."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sogni_intelligence import __version__
from sogni_intelligence.agent_cli.inputs import UsageError
from sogni_intelligence.agent_cli.presets import MAX_SCENES, PLAN, PRESETS, keyframe
from sogni_intelligence.agent_cli.references import RefSource, ordered_sources

PROG = "sogni-agent"


class Parser(argparse.ArgumentParser):
    """Reports a bad command line as a `UsageError`, so that `--json` still gets its one
    failure object."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


CHAT = {"api_chat"}
BOTH_CHATS = {"api_chat", "durable_chat"}
RUNS = {"durable_chat", "fork_run"}
WITH_MEDIA = {"api_chat", "durable_chat", "api_workflow"}
WITH_RESULTS = {
    "api_chat",
    "durable_chat",
    "fork_run",
    "api_workflow",
    "get_workflow",
    "stream_workflow",
    "resume_workflow",
    "result",
}
#: Flags that only mean something in some modes: (dest, flag as written, modes).
MODE_FLAGS: tuple[tuple[str, str, set[str]], ...] = (
    ("api_tools", "--api-tools", BOTH_CHATS),
    ("no_api_tool_execution", "--no-api-tool-execution", CHAT),
    ("task_profile", "--task-profile", BOTH_CHATS),
    ("thinking", "--thinking/--no-thinking", CHAT),
    ("llm_model", "--llm-model", {*BOTH_CHATS, "fork_run", "api_workflow"}),
    ("system", "--system", BOTH_CHATS),
    ("max_tokens", "--max-tokens", {*BOTH_CHATS, "fork_run"}),
    ("context", "-c/--context", WITH_MEDIA),
    ("ref", "--ref", WITH_MEDIA),
    ("ref_end", "--ref-end", WITH_MEDIA),
    ("keyframe", "--keyframe", WITH_MEDIA),
    ("ref_audio", "--ref-audio", WITH_MEDIA),
    ("ref_video", "--ref-video", WITH_MEDIA),
    ("workflow_input", "--workflow-input", {"api_workflow"}),
    ("workflow_title", "--workflow-title", {"api_workflow"}),
    ("workflow_prompt", "--workflow-prompt", {"api_workflow"}),
    ("scenes", "--scenes", {"api_workflow"}),
    ("no_filter", "--no-filter", {*BOTH_CHATS, "api_workflow"}),
    ("workflow_idempotency_key", "--workflow-idempotency-key", {"api_workflow", "durable_chat"}),
    ("workflow_max_cost", "--workflow-max-cost", {"api_workflow", "durable_chat"}),
    ("confirm_cost", "--confirm-cost", {"api_workflow", "durable_chat"}),
    ("watch_workflow", "--watch-workflow", {"api_workflow", "resume_workflow", "api_chat"}),
    ("detach", "--detach", {"api_workflow", *RUNS}),
    ("replay", "--replay", {"fork_run"}),
    ("wait", "--wait", {"result"}),
    ("output", "--output", WITH_RESULTS),
    ("limit", "--limit", {"list_workflows", "list_replays"}),
    ("offset", "--offset", {"list_workflows"}),
    ("status_filter", "--status-filter", {"list_workflows", "recent"}),
    ("after", "--after", {"workflow_events", "stream_workflow", "fork_run"}),
)


def _bounded(kind: type, least: float, strict: bool, says: str) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` not under `least` (above it, when `strict`)."""

    def parse(text: str) -> Any:
        value = kind(text)
        if value < least or (strict and value == least):
            raise argparse.ArgumentTypeError(says)
        return value

    return parse


_positive_int = _bounded(int, 1, False, "must be at least 1")
_non_negative_int = _bounded(int, 0, False, "must be 0 or more")
_non_negative_float = _bounded(float, 0, False, "must be 0 or more")
_positive_float = _bounded(float, 0, True, "must be more than 0")


def _scene_count(text: str) -> int:
    count = _positive_int(text)
    if count > MAX_SCENES:
        raise argparse.ArgumentTypeError(f"at most {MAX_SCENES} scenes")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Client of a Sogni Intelligence server: hosted chat, durable chat runs and "
        "durable creative workflows. Results go to stdout (one JSON object with --json), "
        "progress to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")

    modes = parser.add_argument_group("modes (pick one)").add_mutually_exclusive_group(
        required=True
    )
    modes.add_argument("--api-chat", metavar="PROMPT", help="one hosted chat completion")
    modes.add_argument(
        "--durable-chat", metavar="PROMPT", help="a durable chat run, followed live to its end"
    )
    modes.add_argument(
        "--fork-run",
        nargs="+",
        metavar="ID [PROMPT]",
        help="a durable chat run that continues run ID's history after event --after SEQ, "
        "with PROMPT as a new message; followed live to its end",
    )
    modes.add_argument(
        "--api-workflow",
        nargs="?",
        const=PLAN,
        metavar="PRESET",
        help="start a workflow: from --workflow-input, or from a preset and --workflow-prompt "
        f"({', '.join(PRESETS)})",
    )
    modes.add_argument("--status", metavar="ID", help="where a run (run_…) or workflow (wf_…) is")
    modes.add_argument(
        "--result", metavar="ID", help="the results of a finished run or workflow (see --wait)"
    )
    modes.add_argument(
        "--recent",
        nargs="?",
        const=24.0,
        type=_positive_float,
        metavar="HOURS",
        help="your runs and workflows of the last HOURS (default 24), newest first",
    )
    modes.add_argument(
        "--doctor",
        action="store_true",
        help="check the server, the key, the models, a completion and an upload",
    )
    modes.add_argument("--list-workflows", action="store_true", help="list your workflows")
    modes.add_argument("--get-workflow", metavar="ID", help="show one workflow")
    modes.add_argument("--workflow-events", metavar="ID", help="print a workflow's events")
    modes.add_argument(
        "--stream-workflow", metavar="ID", help="follow a workflow's event stream until it closes"
    )
    modes.add_argument("--cancel-workflow", metavar="ID", help="cancel a workflow")
    modes.add_argument(
        "--resume-workflow", metavar="ID", help="release a paused or restart an interrupted one"
    )
    modes.add_argument("--list-api-models", action="store_true", help="list the chat models")
    modes.add_argument("--get-api-model", metavar="ID", help="show one chat model")
    modes.add_argument("--list-replays", action="store_true", help="list your replay records")
    modes.add_argument("--get-replay", metavar="RUN_ID", help="show one replay record")
    modes.add_argument(
        "--ingest-replay",
        metavar="FILE",
        help="store the RunRecord in FILE (JSON; - for stdin) as a replay record",
    )

    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "--api-base-url",
        metavar="URL",
        help="server URL (else SOGNI_API_BASE_URL, SOGNI_REST_ENDPOINT, http://127.0.0.1:8000)",
    )
    conn.add_argument("--api-key", metavar="KEY", help="API key (else SOGNI_API_KEY)")
    conn.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="S",
        help="seconds to wait for an answer (else SOGNI_HTTP_TIMEOUT_MS, else 300; streams "
        "wait as long as the work runs)",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object: the record")
    out.add_argument("--output", type=Path, metavar="DIR", help="download the results here")
    out.add_argument(
        "-q", "--quiet", action="store_true", help="no progress or notes (results and errors only)"
    )

    jobs = parser.add_argument_group("long jobs")
    jobs.add_argument(
        "--detach",
        action="store_true",
        help="start the run or workflow, print its id and return without following it",
    )
    jobs.add_argument(
        "--wait", action="store_true", help="with --result: follow unfinished work to its end"
    )
    jobs.add_argument(
        "--status-filter",
        metavar="S[,S]",
        help="only records in these statuses (--recent, --list-workflows)",
    )

    chat = parser.add_argument_group("chat")
    chat.add_argument(
        "--api-tools",
        choices=["creative-agent", "creative-tools", "none"],
        help="hosted tool surface of the chat (default creative-agent)",
    )
    chat.add_argument(
        "--no-api-tool-execution",
        action="store_true",
        help="return hosted tool calls instead of running them",
    )
    chat.add_argument("--llm-model", metavar="ID", help="chat model id")
    chat.add_argument("--system", metavar="TEXT", help="system message")
    chat.add_argument("--task-profile", choices=["general", "coding", "reasoning"])
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N")
    chat.add_argument(
        "--no-filter",
        action="store_true",
        help="turn the server's content filter off for this request (safeContentFilter false)",
    )
    chat.add_argument(
        "--thinking",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn the model's thinking on or off (chat_template_kwargs.enable_thinking)",
    )

    media = parser.add_argument_group(
        "media references (local files are uploaded first; http(s) URLs are passed on)"
    )
    for flags, dest, what in (
        (("-c", "--context"), "context", "context image"),
        (("--ref",), "ref", "reference image"),
        (("--ref-end",), "ref_end", "end-frame image"),
        (("--ref-audio",), "ref_audio", "reference audio"),
        (("--ref-video",), "ref_video", "reference video"),
    ):
        media.add_argument(
            *flags, dest=dest, action="append", metavar="FILE|URL", help=f"{what} (repeatable)"
        )
    media.add_argument(
        "--keyframe",
        action="append",
        type=keyframe,
        metavar="FILE|URL@SECONDS",
        help="an image the video passes through at SECONDS (repeatable)",
    )

    workflow = parser.add_argument_group("workflows")
    workflow.add_argument(
        "--workflow-input",
        metavar="JSON|@FILE",
        help="the workflow input {title?, steps} as JSON, @file, or @- for stdin",
    )
    workflow.add_argument("--workflow-title", metavar="TEXT", help="title of the new workflow")
    workflow.add_argument(
        "--workflow-prompt", metavar="TEXT", help="what a preset workflow should make"
    )
    workflow.add_argument(
        "--scenes",
        type=_scene_count,
        metavar="N",
        help=f"storyboard-video: how many scenes (1 to {MAX_SCENES}, default 3)",
    )
    workflow.add_argument(
        "--workflow-idempotency-key",
        metavar="KEY",
        help="Idempotency-Key: a retry with the same key returns the first workflow or run",
    )
    workflow.add_argument(
        "--workflow-max-cost",
        type=_non_negative_float,
        metavar="UNITS",
        help="refuse to start above this many capacity units (max_estimated_capacity_units)",
    )
    workflow.add_argument(
        "--confirm-cost", action="store_true", help="approve the estimated cost up front"
    )
    workflow.add_argument(
        "--watch-workflow", action="store_true", help="follow the workflow until its stream closes"
    )
    workflow.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    workflow.add_argument("--offset", type=_non_negative_int, default=0, metavar="N")
    workflow.add_argument(
        "--after",
        type=_non_negative_int,
        metavar="SEQ",
        help="only events after this sequence (with --fork-run: the event to fork after)",
    )
    workflow.add_argument(
        "--replay",
        action="store_true",
        help="with --fork-run: run the original's later rounds again and report differences",
    )
    return parser


def check_mode_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, mode: str) -> None:
    """Refuse flags that the chosen mode would silently ignore."""
    for dest, flag, allowed in MODE_FLAGS:
        if getattr(args, dest) != parser.get_default(dest) and mode not in allowed:
            modes = ", ".join(sorted("--" + m.replace("_", "-") for m in allowed))
            raise UsageError(f"{flag} works only with {modes}")
    if mode == "fork_run" and (len(args.fork_run) > 2 or args.after is None):
        raise UsageError("--fork-run takes ID [PROMPT] and needs --after SEQ")
    if mode == "api_workflow":
        _check_workflow_source(args)
    if args.detach and args.watch_workflow:
        raise UsageError("--detach and --watch-workflow contradict each other")


def _check_workflow_source(args: argparse.Namespace) -> None:
    """A workflow comes from exactly one of a plan or a preset with its prompt."""
    preset = args.api_workflow
    if preset == PLAN:
        if args.workflow_input is None:
            raise UsageError("--api-workflow needs --workflow-input JSON|@FILE or a preset")
        if args.workflow_prompt is not None:
            raise UsageError(f"--workflow-prompt works only with a preset: {', '.join(PRESETS)}")
    elif preset not in PRESETS:
        raise UsageError(f"--api-workflow: unknown preset {preset!r}; use {', '.join(PRESETS)}")
    elif args.workflow_input is not None:
        raise UsageError(f"--api-workflow {preset} builds its own plan: drop --workflow-input")
    elif not (args.workflow_prompt or "").strip():
        raise UsageError(f"--api-workflow {preset} needs --workflow-prompt TEXT")
    if args.scenes is not None and preset != "storyboard-video":
        raise UsageError("--scenes works only with --api-workflow storyboard-video")


def reference_sources(args: argparse.Namespace) -> list[RefSource]:
    """The media flags' values in the order they are sent."""
    return ordered_sources(
        {
            "-c": args.context or [],
            "--ref": args.ref or [],
            "--ref-end": args.ref_end or [],
            "--keyframe": [frame.source for frame in args.keyframe or []],
            "--ref-audio": args.ref_audio or [],
            "--ref-video": args.ref_video or [],
        }
    )
