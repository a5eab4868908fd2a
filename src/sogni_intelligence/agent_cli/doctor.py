"""`--doctor`: check, in order, everything a first command needs (the server, the key, the
models, one tiny completion, one media upload) and say how to fix what fails.

A check that depends on a failed one is not run but reported as failed, so the first
failure is the one to fix.
"""

from __future__ import annotations

import struct
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sogni_intelligence.agent_cli.client import ApiError
from sogni_intelligence.agent_cli.failures import KEY_HINT, START_SERVER, api_hint
from sogni_intelligence.agent_cli.references import upload_content
from sogni_intelligence.agent_cli.session import APP_SOURCE, Context


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


class CheckFailed(Exception):
    """A check that failed for a reason of its own, with the hint that fixes it."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


def tiny_png() -> bytes:
    """A 1x1 orange PNG, made here so that the upload check needs no file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x80\x00")  # filter byte, then one pixel
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def check_server(ctx: Context) -> str:
    try:
        health = ctx.client.request("GET", "/health")
    except ApiError as exc:
        if exc.status == 0:
            raise CheckFailed(str(exc), START_SERVER) from exc
        hint = f"is {ctx.client.base_url} a Sogni Intelligence server? Check --api-base-url"
        raise CheckFailed(str(exc), hint) from exc
    return f"{ctx.client.base_url} answers (version {health.get('version', '?')})"


def check_key(ctx: Context) -> str:
    if not ctx.client.has_key:
        raise CheckFailed("no API key given", KEY_HINT)
    account = ctx.client.data("GET", "/v1/account/me").get("account") or {}
    role = f", role {account['role']}" if account.get("role") else ""
    return f"accepted: {account.get('name') or account.get('id')}{role}"


def check_models(ctx: Context) -> str:
    models = ctx.client.request("GET", "/v1/models").get("data") or []
    if not models:
        hint = "the server lists no chat model: check its model configuration (SOGNI_MODELS)"
        raise CheckFailed("no models listed", hint)
    ids = [str(model.get("id")) for model in models]
    more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
    return f"{len(ids)} listed: {', '.join(ids[:3])}{more}"


def check_completion(ctx: Context) -> str:
    body = {
        "messages": [{"role": "user", "content": "Say OK."}],
        "max_tokens": 4,
        "sogni_tools": "none",
        "stream": False,
        "app_source": APP_SOURCE,
    }
    started = time.monotonic()
    completion = ctx.client.request("POST", "/v1/chat/completions", body=body)
    tokens = (completion.get("usage") or {}).get("completion_tokens", "?")
    took = time.monotonic() - started
    return f"{completion.get('model')} answered {tokens} tokens in {took:.1f} s"


def check_upload(ctx: Context) -> str:
    png = tiny_png()
    job = f"sogni-agent-doctor-{uuid.uuid4().hex}"
    url = upload_content(ctx.client, "image", "referenceImage", png, "image/png", job)
    if ctx.client.get_signed(url) != png:
        hint = "the media store returns other bytes than it was given: check the server log"
        raise CheckFailed("the uploaded image came back changed", hint)
    return f"uploaded a {len(png)}-byte PNG and read it back from its signed URL"


#: (name, check, the checks it needs).
CHECKS: tuple[tuple[str, Callable[[Context], str], tuple[str, ...]], ...] = (
    ("server", check_server, ()),
    ("key", check_key, ("server",)),
    ("models", check_models, ("server", "key")),
    ("completion", check_completion, ("server", "key", "models")),
    ("upload", check_upload, ("server", "key")),
)


def run_checks(ctx: Context) -> list[Check]:
    done: dict[str, Check] = {}
    for name, check, needs in CHECKS:
        blocker = next((need for need in needs if not done[need].ok), None)
        if blocker is not None:
            done[name] = Check(name, False, f"not run: {blocker} failed", f"fix {blocker} first")
            continue
        try:
            done[name] = Check(name, True, check(ctx))
        except CheckFailed as exc:
            done[name] = Check(name, False, str(exc), exc.hint)
        except ApiError as exc:
            done[name] = Check(name, False, str(exc), api_hint(exc))
    return list(done.values())


def doctor(ctx: Context) -> int:
    checks = run_checks(ctx)
    success = all(check.ok for check in checks)
    if ctx.reporter.json_mode:
        ctx.reporter.emit({"success": success, "checks": [asdict(check) for check in checks]})
    else:
        for check in checks:
            mark = "ok" if check.ok else "FAIL"
            ctx.reporter.result(f"{mark:<4}  {check.name:<10}  {check.detail}")
            if check.hint:
                ctx.reporter.result(f"{'':<16}  hint: {check.hint}")
        failed = sum(not check.ok for check in checks)
        ctx.reporter.result("all checks passed" if success else f"{failed} of {len(checks)} failed")
    return 0 if success else 1
