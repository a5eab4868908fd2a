"""`sogni-intelligence keys`: create, list, change and revoke API keys, with their roles and
limits, straight on the database (no server needed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sogni_intelligence.config import Settings
from sogni_intelligence.store.db import Database
from sogni_intelligence.store.keys import KeyInfo, KeyLimits, KeyStore

#: Command-line flag → `KeyLimits` field, with the type of its value.
LIMIT_FLAGS: dict[str, tuple[str, type]] = {
    "--requests-per-minute": ("requests_per_minute", int),
    "--tokens-per-minute": ("tokens_per_minute", int),
    "--concurrent-records": ("concurrent_records", int),
    "--daily-capacity-units": ("daily_capacity_units", float),
}


def _limit_value(kind: type) -> Callable[[str], int | float | None]:
    """A positive number, or `none` to lift the limit."""

    def parse(text: str) -> int | float | None:
        if text.lower() == "none":
            return None
        value = kind(text)
        if value < 0 or (kind is int and value == 0):
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number (or 'none')")
        return value

    return parse


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    for flag, (name, kind) in LIMIT_FLAGS.items():
        parser.add_argument(
            flag,
            dest=name,
            type=_limit_value(kind),
            default=argparse.SUPPRESS,
            metavar="N|none",
            help=f"{name.replace('_', ' ')} ('none' lifts the limit)",
        )


def _limits_given(args: argparse.Namespace) -> dict[str, int | float | None]:
    return {name: getattr(args, name) for name, _ in LIMIT_FLAGS.values() if hasattr(args, name)}


def _row(info: KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "fingerprint": info.fingerprint,
        "role": info.role,
        "created_at": info.created_at.isoformat(),
        "revoked": info.revoked_at is not None,
        "limits": {
            name: getattr(info.limits, name)
            for name, _ in LIMIT_FLAGS.values()
            if getattr(info.limits, name) is not None
        },
    }


def _line(row: dict[str, Any]) -> str:
    state = "revoked" if row["revoked"] else "active"
    limits = " ".join(f"{name}={value:g}" for name, value in row["limits"].items())
    return f"{row['id']}  {row['fingerprint']:<18} {state:<8} {row['role']:<6} {row['name']}" + (
        f"  [{limits}]" if limits else ""
    )


async def _with_keys(settings: Settings, action: Callable[[KeyStore], Awaitable[int]]) -> int:
    settings.ensure_data_dir()
    db = Database(settings.resolved_database_url)
    try:
        await db.create_all()
        return await action(KeyStore(db, cache_seconds=0))
    finally:
        await db.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    async def create(store: KeyStore) -> int:
        key, info = await store.create(args.name, args.role, KeyLimits(**_limits_given(args)))
        if args.json:
            print(json.dumps({"id": info.id, "name": info.name, "role": info.role, "key": key}))
        else:
            print(key)
            print(f"created {info.role} key {info.id}; it is shown only once", file=sys.stderr)
        return 0

    async def list_keys(store: KeyStore) -> int:
        rows = [_row(info) for info in await store.list()]
        print(json.dumps(rows) if args.json else "\n".join(_line(row) for row in rows))
        return 0

    async def change(store: KeyStore) -> int:
        info = await store.update(args.key_id, args.role, _limits_given(args))
        if info is None:
            print(f"no key with id {args.key_id}", file=sys.stderr)
            return 1
        print(json.dumps(_row(info)) if args.json else _line(_row(info)))
        return 0

    async def revoke(store: KeyStore) -> int:
        if await store.revoke(args.key_id):
            print(f"revoked {args.key_id}", file=sys.stderr)
            return 0
        print(f"no active key with id {args.key_id}", file=sys.stderr)
        return 1

    actions = {"create": create, "list": list_keys, "set": change, "revoke": revoke}
    return asyncio.run(_with_keys(settings, actions[args.keys_command]))


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys, their roles and limits")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--role",
        choices=["admin", "user"],
        default="user",
        help="admin: manages keys and sees every key's records (default: user)",
    )
    add_limit_flags(create)
    key_commands.add_parser("list", help="list keys (never their secret)")
    change = key_commands.add_parser("set", help="change a key's role or limits")
    change.add_argument("key_id")
    change.add_argument("--role", choices=["admin", "user"], default=None)
    add_limit_flags(change)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(handler=run)
