"""`sogni-agent`: hosted chat, durable chat runs and durable workflows from the command line.

Exit status: 0 on success, 1 when the API refused or failed (its message is printed) or
followed work ended failed, partially failed or cancelled, 2 for a usage error, 3 when
`--result` finds work that has not finished, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from sogni_intelligence.agent_cli import commands, doctor, jobs, replays
from sogni_intelligence.agent_cli.arguments import (
    PROG,
    build_parser,
    check_mode_flags,
    reference_sources,
)
from sogni_intelligence.agent_cli.client import ApiClient, ApiError
from sogni_intelligence.agent_cli.failures import (
    CliFailure,
    Failure,
    api_failure,
    interrupted_failure,
    os_failure,
    usage_failure,
)
from sogni_intelligence.agent_cli.inputs import (
    UsageError,
    connection,
    load_run_record,
    load_workflow_input,
)
from sogni_intelligence.agent_cli.output import Reporter
from sogni_intelligence.agent_cli.references import check_sources
from sogni_intelligence.agent_cli.session import Context

COMMANDS: dict[str, Callable[[Context], int]] = {
    "api_chat": commands.api_chat,
    "durable_chat": commands.durable_chat,
    "fork_run": commands.fork_run,
    "api_workflow": commands.api_workflow,
    "status": jobs.status,
    "result": jobs.result,
    "recent": jobs.recent,
    "doctor": doctor.doctor,
    "list_workflows": commands.list_workflows,
    "get_workflow": commands.get_workflow,
    "workflow_events": commands.workflow_events,
    "stream_workflow": commands.stream_workflow,
    "cancel_workflow": commands.cancel_workflow,
    "resume_workflow": commands.resume_workflow,
    "list_api_models": commands.list_api_models,
    "get_api_model": commands.get_api_model,
    "list_replays": replays.list_replays,
    "get_replay": replays.get_replay,
    "ingest_replay": replays.ingest_replay,
}


def selected_mode(args: argparse.Namespace) -> str:
    """The mode flag given (argparse lets exactly one through)."""
    return next(name for name in COMMANDS if getattr(args, name) not in (None, False))


def fail(reporter: Reporter, failure: Failure, usage: str = "") -> int:
    """Report a failure: message and hint on stderr, and under `--json` the failure object
    on stdout."""
    reporter.finish()
    print(f"{usage}{PROG}: error: {failure.message}", file=sys.stderr)
    print(f"{PROG}: hint: {failure.hint}", file=sys.stderr, flush=True)
    if reporter.json_mode:
        reporter.emit(failure.as_json())
    return failure.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        mode = selected_mode(args)
        check_mode_flags(parser, args, mode)
        settings = connection(
            args.api_base_url,
            args.api_key,
            os.environ,
            require_key=mode != "doctor",
            timeout=args.timeout,
        )
        sources = reference_sources(args)
        check_sources(sources)
        plan = load_workflow_input(args.workflow_input) if args.workflow_input else None
        run_record = load_run_record(args.ingest_replay) if args.ingest_replay else None
    except UsageError as exc:
        reporter = Reporter("--json" in argv, tty=False)
        return fail(reporter, usage_failure(str(exc)), parser.format_usage())

    reporter = Reporter(args.json, quiet=args.quiet)
    client = ApiClient(settings.base_url, settings.api_key, settings.timeout_s)
    try:
        return COMMANDS[mode](Context(args, client, reporter, sources, plan, run_record))
    except CliFailure as exc:
        failure = exc.failure
    except ApiError as exc:
        failure = api_failure(exc)
    except UsageError as exc:
        failure = usage_failure(str(exc))
    except OSError as exc:
        failure = os_failure(exc)
    except KeyboardInterrupt:
        failure = interrupted_failure()
    finally:
        client.close()
    return fail(reporter, failure)


if __name__ == "__main__":
    sys.exit(main())
