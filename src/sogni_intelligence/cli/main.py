"""`sogni-intelligence`: run the server, run media workers, and manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from pydantic import ValidationError

from sogni_intelligence.cli import keys
from sogni_intelligence.config import QUEUE_NAMES, Settings
from sogni_intelligence.observability.logs import configure_logging


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from sogni_intelligence.api.app import create_app
    from sogni_intelligence.http_server import QuietServer

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.no_worker:
        overrides["worker_queues"] = []
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_level, settings.log_format)
    server = QuietServer(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # Our handler formats uvicorn's lines too, and our middleware logs each request.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        return STARTUP_FAILURE
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from sogni_intelligence.runtime.worker import default_executor_id, run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUE_NAMES))
    if unknown or not queues:
        print(
            f"unknown queue(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(QUEUE_NAMES)}",
            file=sys.stderr,
        )
        return 2
    if args.device:
        try:  # validated, and applied to every local model
            settings = Settings(model_device=args.device)
        except ValidationError:
            print(
                f"--device {args.device!r} is not a torch device (e.g. cpu, cuda:0)",
                file=sys.stderr,
            )
            return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_worker(settings, queues, args.executor_id or default_executor_id(queues)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sogni-intelligence",
        description="Self-hosted Sogni Intelligence API server. Settings come from SOGNI_* "
        "environment variables and an optional TOML file named by SOGNI_CONFIG.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (default from SOGNI_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from SOGNI_PORT, 8000)")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="only enqueue media jobs; 'sogni-intelligence worker' processes run them",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker", help="run queued media jobs only (shares the server's database and data dir)"
    )
    worker.add_argument(
        "--queues",
        default=",".join(QUEUE_NAMES),
        help=f"comma-separated queues to take jobs from (default: {','.join(QUEUE_NAMES)})",
    )
    worker.add_argument(
        "--executor-id",
        help="stable name of this worker; a restart with the same name recovers its jobs "
        "(default: worker-<hostname>-<queues>)",
    )
    worker.add_argument(
        "--device",
        help="torch device for every local model this worker runs, e.g. cuda:0 "
        "(default from SOGNI_MODEL_DEVICE, else each model's own device)",
    )
    worker.set_defaults(handler=_worker)

    keys.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
