"""The web console at `/console` in a real browser (Debian's chromium driven by Playwright)
against the real server process: sign in, follow workflows and runs live, act on them, run a
template, chat, and the admin pages. Screenshots are kept under `SOGNI_TEST_ARTIFACTS` (default:
a pytest temporary directory)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import RunningServer, start_workflow

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH (the Debian package; scripts/install.sh --test installs it)",
    ),
]
#: Generous for a 2-core machine, but bounded: every wait ends within these.
WAIT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 800}
expect.set_options(timeout=WAIT_MS)

FOUR_STEPS = {
    "title": "Boat poster, upscaled, with a voice line",
    "steps": [
        {
            "id": "poster",
            "toolName": "generate_image",
            "arguments": {
                "prompt": "a paper boat on a lake",
                "width": 256,
                "height": 256,
                "seed": 3,
            },
        },
        {
            "id": "bigger",
            "toolName": "upscale_image",
            "arguments": {"scale": 2},
            "dependsOn": [
                {
                    "sourceStepId": "poster",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                    "mediaType": "image",
                }
            ],
        },
        {
            "id": "facts",
            "toolName": "extract_metadata",
            "arguments": {"mediaType": "image"},
            "dependsOn": [
                {
                    "sourceStepId": "bigger",
                    "targetArgument": "sourceImageIndex",
                    "transform": "image_index",
                    "mediaType": "image",
                }
            ],
        },
        {
            "id": "voice",
            "toolName": "generate_speech",
            "arguments": {"prompt": "A paper boat drifts on the lake."},
        },
    ],
}

#: One long render: still running when the console's cancel button is clicked.
SLOW = {
    "title": "Long pan",
    "steps": [
        {
            "id": "pan",
            "toolName": "generate_video",
            "arguments": {"prompt": "long pan", "duration": 30, "width": 1280, "height": 720},
        }
    ],
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("SOGNI_TEST_ARTIFACTS")
    if configured:
        path = Path(configured) / "console"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("console")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


class ConsoleErrors:
    """Errors the page logs; a test names the ones it expects."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.expected: list[str] = []

    def unexpected(self) -> list[str]:
        return [m for m in self.seen if not any(e in m for e in self.expected)]


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def page(
    browser: Browser,
    server: RunningServer,
    artifacts: Path,
    console_errors: ConsoleErrors,
    request: Any,
) -> Iterator[Page]:
    """A fresh tab (its own session storage); fails the test on an unexpected console error."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    seen = console_errors.seen
    tab.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: seen.append(str(e)))
    try:
        yield tab
    finally:
        tab.screenshot(path=str(artifacts / f"{request.node.name}.png"))
        context.close()
    assert console_errors.unexpected() == []


@pytest.fixture(scope="module")
def admin_key(server: RunningServer) -> str:
    created = server.cli("keys", "--json", "create", "--name", "console admin", "--role", "admin")
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)["key"]


def sign_in(page: Page, key: str) -> None:
    page.goto("/console/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()


def start_plan(page: Page, plan: dict[str, Any]) -> str:
    """Start a workflow from the console's form; its id, once its detail view is open."""
    page.goto("/console/#/workflows")
    page.get_by_label("Plan (JSON)").fill(json.dumps(plan))
    page.get_by_role("button", name="Start workflow").click()
    page.wait_for_url(re.compile(r"#/workflows/wf_"))
    return page.url.rsplit("/", 1)[1]


def status(page: Page) -> Any:
    return page.get_by_role("status", name="Status")


def test_console_pages_are_static_with_a_strict_policy(server: RunningServer) -> None:
    index = httpx.get(f"{server.url}/console/", timeout=10)
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    policy = index.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert httpx.get(f"{server.url}/console/app.js", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/console/../pyproject.toml", timeout=10).status_code == 404
    moved = httpx.get(f"{server.url}/console", timeout=10)
    assert moved.status_code == 308 and moved.headers["location"] == "/console/"


def test_a_refused_key_is_shown_plainly(browser: Browser, server: RunningServer) -> None:
    # Its own tab: the browser logs the 401 as a console error, which is the point here.
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    try:
        tab = context.new_page()
        tab.goto("/console/")
        tab.get_by_label("API key").fill("sk-not-a-key")
        tab.get_by_role("button", name="Sign in").click()
        expect(tab.get_by_role("alert")).to_contain_text("Invalid API key")
        expect(tab.get_by_role("navigation", name="Sections")).to_be_hidden()
        assert tab.evaluate("() => sessionStorage.length") == 0
        # A key revoked while signed in: the next call signs the tab out and says why.
        made = server.cli("keys", "--json", "create", "--name", "short-lived")
        key = json.loads(made.stdout)
        sign_in(tab, key["key"])
        assert server.cli("keys", "revoke", key["id"]).returncode == 0
        tab.get_by_role("button", name="Refresh").click()
        expect(tab.get_by_role("alert")).to_contain_text("refused the key")
        expect(tab.get_by_label("API key")).to_be_visible()
        assert tab.evaluate("() => sessionStorage.length") == 0
    finally:
        context.close()


def test_sign_in_and_watch_a_workflow_live(
    page: Page, server: RunningServer, artifacts: Path
) -> None:
    sign_in(page, server.key)
    assert page.evaluate("() => Object.keys(sessionStorage)") == ["sogni-console-key"]
    assert page.evaluate("() => localStorage.length") == 0

    start_plan(page, FOUR_STEPS)
    expect(status(page)).to_have_text("completed", timeout=WAIT_MS)
    steps = page.get_by_role("list", name="Steps").get_by_role("listitem")
    expect(steps).to_have_count(4)
    for step in ("poster", "bigger", "facts", "voice"):
        row = steps.filter(has_text=step)
        expect(row.locator(".badge")).to_have_text("completed")
        expect(row.get_by_label("Duration")).to_have_text(re.compile(r"\d+(\.\d+)? (ms|s)"))
    images = page.get_by_label("Artifacts").locator("img")
    expect(images).to_have_count(2)
    images.first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gallery img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    expect(page.get_by_label("Artifacts").locator("audio")).to_have_count(1)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "workflow-detail.png"))
    # Every event came once and in order through the stream.
    page.get_by_text("Events (").click()  # open the log
    events = page.get_by_role("list", name="Events").get_by_role("listitem")
    sequences = [int(t.split()[0]) for t in events.all_inner_texts()]
    assert sequences == list(range(len(sequences))) and len(sequences) >= 10


def test_cancel_a_running_workflow(page: Page, server: RunningServer) -> None:
    sign_in(page, server.key)
    workflow_id = start_plan(page, SLOW)
    expect(status(page)).to_have_text("running")
    expect(page.get_by_role("list", name="Steps").locator(".badge")).to_have_text("running")
    page.get_by_role("button", name="Cancel workflow").click()
    expect(status(page)).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel workflow")).to_have_count(0)
    record = httpx.get(
        f"{server.url}/v1/creative-agent/workflows/{workflow_id}",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    ).json()["data"]["workflow"]
    assert record["status"] == "cancelled"
    assert record["cancellationReason"] == "cancelled from the console"


def test_confirm_the_cost_of_a_workflow_then_cancel_it(page: Page, server: RunningServer) -> None:
    """Above the approval threshold the workflow waits (its stream closes); confirming in the
    console sets it running and the view follows on from the last event it had."""
    sign_in(page, server.key)
    page.goto("/console/#/workflows")
    page.get_by_label("Plan (JSON)").fill(json.dumps(SLOW))
    page.get_by_label("Approve the estimated cost now").uncheck()
    page.get_by_role("button", name="Start workflow").click()
    expect(status(page)).to_have_text("waiting for user")
    expect(page.get_by_text("Waiting for you: cost approval required")).to_be_visible()
    page.get_by_role("button", name="Confirm cost").click()
    expect(status(page)).to_have_text("running")
    expect(page.get_by_role("list", name="Steps").locator(".badge")).to_have_text("running")
    page.get_by_role("button", name="Cancel workflow").click()
    expect(status(page)).to_have_text("cancelled")
    page.get_by_text("Events (").click()
    events = page.get_by_role("list", name="Events").get_by_role("listitem")
    sequences = [int(t.split()[0]) for t in events.all_inner_texts()]
    assert sequences == list(range(len(sequences)))


def test_run_a_template_with_inputs(page: Page, server: RunningServer) -> None:
    sign_in(page, server.key)
    page.get_by_role("link", name="Templates").click()
    template = {
        "name": "Console square art",
        "inputs": [{"name": "subject", "type": "text", "required": True}],
        "stages": [
            {
                "type": "fixed",
                "id": "art",
                "tool": "generate_image",
                "args": {"prompt": "$inputs.subject", "width": 256, "height": 256},
            }
        ],
    }
    page.get_by_label("Template (JSON)").fill(json.dumps(template))
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("heading", name="Console square art")).to_be_visible()
    page.get_by_label("subject (required)").fill("a red fox in snow")
    page.get_by_role("button", name="Run template").click()
    page.wait_for_url(re.compile(r"#/workflows/wf_"))
    expect(status(page)).to_have_text("completed")
    expect(page.get_by_role("list", name="Steps").get_by_role("listitem")).to_have_text(
        re.compile("art")
    )
    page.wait_for_function(
        "() => { const img = document.querySelector('.gallery img');"
        " return img && img.complete && img.naturalWidth === 256; }"
    )
    first = page.url
    page.get_by_role("button", name="Reseed").click()
    page.wait_for_url(lambda url: url != first and "#/workflows/wf_" in url)
    expect(status(page)).to_have_text("completed")


def test_chat_playground_streams_an_answer(page: Page, server: RunningServer) -> None:
    sign_in(page, server.key)
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Hosted tools").select_option("none")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Message", exact=True).fill("Say hello in one short sentence.")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("li.msg.assistant.done .bubble")
    expect(answer).to_have_text(re.compile(r"\w"))
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_playground_uploads_media(page: Page, server: RunningServer, tmp_path: Path) -> None:
    picture = tmp_path / "square.png"
    Image.new("RGB", (128, 128), (200, 40, 40)).save(picture)
    sign_in(page, server.key)
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Hosted tools").select_option("none")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Attach media").set_input_files(str(picture))
    page.get_by_label("Message", exact=True).fill("What colour is my picture?")
    page.get_by_role("button", name="Send").click()
    sent = page.locator("li.msg.user")
    expect(sent).to_contain_text("with square.png")
    page.wait_for_function(
        "() => { const img = document.querySelector('li.msg.user .gallery img');"
        " return img && img.complete && img.naturalWidth === 128; }"
    )
    expect(page.locator("li.msg.assistant.done .bubble")).to_have_text(re.compile(r"\S"))


def test_durable_chat_run_followed_live(page: Page, server: RunningServer) -> None:
    sign_in(page, server.key)
    page.get_by_role("link", name="Chat runs").click()
    page.get_by_label("Run message").fill("Name one colour.")
    page.get_by_label("Run tools").select_option("none")
    page.get_by_label("Run max tokens").fill("24")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"#/runs/run_"))
    expect(status(page)).to_have_text("completed")
    rounds = page.get_by_role("list", name="Rounds and tool calls").get_by_role("listitem")
    expect(rounds.first).to_contain_text("LLM round 1")
    expect(page.get_by_label("Assistant text")).to_have_text(re.compile(r"\w"))


def test_event_stream_reader_resumes_after_a_drop(page: Page, server: RunningServer) -> None:
    """The console's SSE follower in the browser, fed by a fetch that drops the connection
    after two events: it reconnects with Last-Event-ID, skips the replayed duplicate and stops
    at the final event. Frames are cut at awkward places (inside CRLF, inside a field)."""
    page.goto("/console/")
    outcome = page.evaluate(
        """async () => {
        const { followEvents } = await import('/console/sse.js');
        const frame = (id, status) =>
          `id: ${id}\\r\\nevent: step\\r\\ndata: {"sequence":${id},\\r\\ndata: "status":"${status}"}\\r\\n\\r\\n`;
        const bodies = [
          [': hello\\n\\n' + frame(0, 'running') + frame(1, 'running')],
          [frame(1, 'running') + frame(2, 'completed')],
        ];
        const seen = [];
        const fetchImpl = async (url, init) => {
          seen.push(init.headers['Last-Event-ID'] ?? null);
          const text = bodies.shift().join('');
          const bytes = new TextEncoder().encode(text);
          const cuts = [0, 5, 17, 30, 31, 32, 60, bytes.length];
          return new Response(new ReadableStream({
            start(controller) {
              for (let i = 1; i < cuts.length; i += 1) controller.enqueue(bytes.slice(cuts[i - 1], cuts[i]));
              controller.close();
            },
          }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
        };
        const events = [];
        const states = [];
        const follower = followEvents('/x', {
          headers: () => ({}), fetchImpl, retryMs: [10],
          isFinal: (_event, data) => data.status === 'completed',
          onEvent: (e) => events.push([e.id, e.data.status]),
          onState: (s) => states.push(s),
        });
        const end = await follower.done;
        return { end, seen, events, states };
    }"""
    )
    assert outcome["end"] == "ended"
    assert outcome["seen"] == [None, "1"]
    assert outcome["events"] == [["0", "running"], ["1", "running"], ["2", "completed"]]
    assert outcome["states"] == ["connecting", "open", "retrying", "open", "ended"]


def test_chat_runs_list_with_filters(page: Page, server: RunningServer) -> None:
    sign_in(page, server.key)
    page.get_by_role("link", name="Chat runs").click()
    page.get_by_label("Run message").fill("Name one fruit.")
    page.get_by_label("Run tools").select_option("none")
    page.get_by_label("Run max tokens").fill("24")
    page.get_by_role("button", name="Start run").click()
    expect(status(page)).to_have_text("completed")
    page.get_by_role("link", name="← Chat runs").click()
    table = page.get_by_role("table", name="Chat runs")
    expect(table.get_by_role("link", name="Name one fruit.").first).to_be_visible()
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No chat runs here.")).to_be_visible()
    page.get_by_label("Status").select_option("completed")
    expect(table.get_by_role("link", name="Name one fruit.").first).to_be_visible()
    expect(page.get_by_label("Whose")).to_have_count(0)  # not an admin


def test_admin_keys_and_metrics(
    page: Page, server: RunningServer, admin_key: str, console_errors: ConsoleErrors
) -> None:
    title = "A user key's poster"
    plan = {"title": title, "steps": [FOUR_STEPS["steps"][0]]}
    start_workflow(server, plan)
    sign_in(page, admin_key)
    expect(page.get_by_text("console admin (admin)")).to_be_visible()
    page.get_by_role("link", name="Admin").click()
    keys = page.get_by_role("table", name="API keys")
    expect(keys.get_by_role("row").filter(has_text="console admin")).to_contain_text("admin")
    expect(keys.get_by_role("row").filter(has_text="e2e")).to_contain_text("user")

    page.get_by_label("Key name").fill("made in the console")
    page.get_by_label("Role").select_option("user")
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New key secret").input_value()
    made = keys.get_by_role("row").filter(has_text="made in the console")
    expect(made).to_contain_text("requests per minute: 60")
    me = httpx.get(
        f"{server.url}/v1/account/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert me.status_code == 200 and me.json()["data"]["account"]["role"] == "user"

    made.get_by_role("button", name="Revoke made in the console").click()
    made.get_by_role("button", name="Confirm revoke made in the console").click()
    expect(made).to_contain_text("revoked")
    gone = httpx.get(
        f"{server.url}/v1/account/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert gone.status_code == 401

    tiles = page.get_by_label("Metrics")
    expect(tiles).to_contain_text("HTTP requests")
    expect(tiles).to_contain_text("Records by status")

    # An admin may list every key's records, and open another key's workflow.
    page.get_by_role("link", name="Workflows").click()
    page.get_by_label("Whose").select_option("all")
    others = page.get_by_role("table", name="Workflows").get_by_role("link", name=title)
    expect(others).to_have_count(1)
    page.get_by_label("Whose").select_option("own")
    expect(page.get_by_role("link", name=title)).to_have_count(0)
    page.get_by_label("Whose").select_option("all")
    page.get_by_role("link", name=title).click()
    expect(status(page)).to_have_text("completed")
