"""`sogni-intelligence`: run the server, run media workers, and manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sogni_intelligence.config import QUEUE_NAMES, Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyStore


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from sogni_intelligence.api.app import create_app

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.no_worker:
        overrides["worker_queues"] = []
    if overrides:
        settings = settings.model_copy(update=overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
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
    asyncio.run(run_worker(settings, queues, args.executor_id or default_executor_id(queues)))
    return 0


async def _with_keys(settings: Settings, action: Callable[[KeyStore], Awaitable[int]]) -> int:
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    try:
        await db.create_all()
        return await action(KeyStore(db, cache_seconds=0))
    finally:
        await db.close()


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    async def create(store: KeyStore) -> int:
        key, info = await store.create(args.name)
        if args.json:
            print(json.dumps({"id": info.id, "name": info.name, "key": key}))
        else:
            print(key)
            print(f"created {info.id}; the key is shown only once", file=sys.stderr)
        return 0

    async def list_keys(store: KeyStore) -> int:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "fingerprint": k.fingerprint,
                "created_at": k.created_at.isoformat(),
                "revoked": k.revoked_at is not None,
            }
            for k in await store.list()
        ]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                state = "revoked" if row["revoked"] else "active"
                print(f"{row['id']}  {row['fingerprint']:<18} {state:<8} {row['name']}")
        return 0

    async def revoke(store: KeyStore) -> int:
        if await store.revoke(args.key_id):
            print(f"revoked {args.key_id}", file=sys.stderr)
            return 0
        print(f"no active key with id {args.key_id}", file=sys.stderr)
        return 1

    action = {"create": create, "list": list_keys, "revoke": revoke}[args.keys_command]
    return asyncio.run(_with_keys(settings, action))


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
    worker.set_defaults(handler=_worker)

    keys = commands.add_parser("keys", help="manage API keys")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", default="", help="a label for the key")
    key_commands.add_parser("list", help="list keys (never their secret)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(handler=_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
