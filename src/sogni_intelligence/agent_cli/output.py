"""Where output goes: results on stdout (one JSON object with `--json`), progress on stderr.

Progress is de-duplicated: an event stream repeats itself on reconnects and many ticks carry
the same rounded percentage, and neither should reach the reader twice. On a terminal a live
display redraws in place; elsewhere (logs, agents reading stderr) each new state is one line.
`quiet` drops progress and notes, never results or errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from sogni_intelligence.agent_cli.progress import LiveBoard, StepState

BAR_WIDTH = 24
TERMINAL_STATUSES = frozenset({"completed", "partial_failure", "failed", "cancelled"})


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def render_bar(label: str, fraction: float, eta_s: float | None = None) -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * BAR_WIDTH)
    text = f"{label} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {round(fraction * 100):3d}%"
    if eta_s is not None and fraction < 1:
        text += f" ETA {format_eta(eta_s)}"
    return text


class Reporter:
    """Writes everything the CLI shows; `json_mode` moves human results to stderr so that
    stdout carries only the final JSON object. `tty` (default: whether `err` is a terminal)
    chooses the live display over plain lines."""

    def __init__(
        self,
        json_mode: bool,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        quiet: bool = False,
        tty: bool | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        live = self.err.isatty() if tty is None else tty
        self._board = LiveBoard(self.err) if live else None
        self._said: set[str] = set()
        self._bars: dict[str, str] = {}
        self._labels: dict[str, str] = {}

    def note(self, text: str, *, once: bool = False) -> None:
        """A progress line on stderr; with `once`, a line already shown is not shown again."""
        if self.quiet:
            return
        if once:
            if text in self._said:
                return
            self._said.add(text)
        if self._board is not None:
            self._board.log(text)
        else:
            print(text, file=self.err, flush=True)

    def bar(self, key: str, label: str, fraction: float, eta_s: float | None = None) -> None:
        """Progress of one piece of work (`key`), shown only when its text changes."""
        if self.quiet:
            return
        text = render_bar(label, fraction, eta_s)
        if self._bars.get(key) == text:
            return
        self._bars[key] = text
        if self._board is not None:
            eta = f"ETA {format_eta(eta_s)}" if eta_s is not None and fraction < 1 else ""
            self._board.row(key, label, "started", min(1.0, max(0.0, fraction)), eta)
        else:
            print(text, file=self.err, flush=True)

    def step(self, key: str, label: str | None, state: StepState, detail: str = "") -> None:
        """A piece of work (`key`) that started or ended: a row of the live display, or the
        line `<label> <state>[: detail]`. A start names the work; at its end the name given at
        the start wins and `label` is only the fallback (None: skip work never started)."""
        if self.quiet:
            return
        if state == "started" and label:
            self._labels[key] = label
        name = self._labels.get(key) or label
        if name is None:
            return
        self._labels[key] = name
        if self._board is not None:
            self._board.row(key, name, state)
            if detail and state == "failed":
                self._board.log(f"{name} failed: {detail}")
            return
        self.note(f"{name} {state}{': ' + detail if detail else ''}", once=True)

    def result(self, text: str) -> None:
        """A human result line: stdout normally, stderr under `--json`."""
        self.finish()
        print(text, file=self.err if self.json_mode else self.out, flush=True)

    def emit(self, obj: Any) -> None:
        """The one JSON object of `--json` mode."""
        self.finish()
        print(json.dumps(obj, ensure_ascii=False), file=self.out, flush=True)

    def finish(self) -> None:
        """End the live display (before results, errors or the exit)."""
        if self._board is not None:
            self._board.stop()


# --- workflows -------------------------------------------------------------------------------


def event_line(event: dict[str, Any]) -> str:
    """One workflow event as a line: sequence, type, workflow status and the useful details."""
    payload = event.get("data") if isinstance(event.get("data"), dict) else {}
    details = []
    for key in ("stepId", "toolName", "reason", "completedSteps", "totalSteps"):
        if key in payload:
            details.append(f"{key}={payload[key]}")
    error = payload.get("error")
    if isinstance(error, dict) and error.get("message"):
        details.append(f"error={error['message']}")
    artifact = payload.get("artifact")
    if isinstance(artifact, dict):
        details.append(f"artifact={artifact.get('kind')}#{artifact.get('index')}")
    head = f"{event.get('sequence', '?'):>4} {event.get('type', 'event'):<26} {event.get('status')}"
    return f"{head}  {' '.join(details)}".rstrip()


def report_workflow_event(reporter: Reporter, workflow_id: str, event: dict[str, Any]) -> None:
    """Progress of a followed workflow, from one of its events."""
    kind = event.get("type")
    payload = event.get("data") if isinstance(event.get("data"), dict) else {}
    step = payload.get("stepId")
    if kind == "workflow_started":
        reporter.note(f"workflow {workflow_id} running", once=True)
    elif kind == "step_started":
        reporter.step(f"step:{step}", f"step {step} ({payload.get('toolName')})", "started")
    elif kind == "step_completed":
        reporter.step(f"step:{step}", f"step {step}", "completed")
    elif kind == "step_failed":
        message = (payload.get("error") or {}).get("message", "no reason given")
        reporter.step(f"step:{step}", f"step {step}", "failed", message)
    elif kind == "workflow_progress" and step and isinstance(payload.get("progress"), int | float):
        eta = payload.get("etaSeconds")
        label = f"step {step} {payload.get('message') or ''}".rstrip()
        eta_s = float(eta) if isinstance(eta, int | float) else None
        reporter.bar(f"step:{step}", label, float(payload["progress"]), eta_s)
    elif kind == "workflow_progress" and "totalSteps" in payload:
        total = max(1, int(payload["totalSteps"]))
        done = int(payload.get("completedSteps", 0))
        reporter.bar(workflow_id, f"workflow {done}/{total} steps", done / total)
    elif kind == "workflow_waiting_for_user":
        reporter.note(f"workflow {workflow_id} waits: {payload.get('reason', 'input')}", once=True)
    elif kind in ("workflow_completed", "workflow_failed", "workflow_cancelled"):
        reporter.note(f"workflow {workflow_id} {event.get('status')}", once=True)


def workflow_summary(workflow: dict[str, Any]) -> list[str]:
    """A workflow record for people: status, steps, artifacts and what to do next."""
    wid = workflow.get("workflowId")
    lines = [f"workflow {wid}: {workflow.get('status')}  {workflow.get('title') or ''}".rstrip()]
    for step in workflow.get("steps") or []:
        line = f"  step {step.get('id')} ({step.get('toolName')}): {step.get('status', 'pending')}"
        error = step.get("error")
        if isinstance(error, dict) and error.get("message"):
            line += f" - {error['message']}"
        lines.append(line)
    if workflow.get("status") == "waiting_for_user":
        reason = workflow.get("waitingReason") or "input"
        lines.append(f"  waiting for {reason}; continue with: sogni-agent --resume-workflow {wid}")
        preview = workflow.get("billingPreview")
        if isinstance(preview, dict) and "estimatedCapacityUnits" in preview:
            lines.append(f"  estimated capacity units: {preview['estimatedCapacityUnits']}")
    error = workflow.get("error")
    if isinstance(error, dict) and error.get("message"):
        lines.append(f"  error: {error['message']}")
    return lines


# --- chat runs -------------------------------------------------------------------------------


def _urls(items: Any) -> list[str]:
    """http(s) URLs of a list of strings or of objects with a `url`."""
    found = []
    for item in items if isinstance(items, list) else []:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            found.append(url)
    return found


def report_run_event(reporter: Reporter, run_id: str, event: dict[str, Any]) -> None:
    """Progress of a followed chat run, from one of its events (spec §3.2 payloads)."""
    kind = str(event.get("type", ""))
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    tool = payload.get("toolName") or "tool"
    call = payload.get("toolCallId") or tool
    if kind in ("run_queued", "run_started", "run_resumed"):
        reporter.note(f"run {run_id} {kind.removeprefix('run_')}", once=True)
    elif kind == "llm_round_started":
        # One row for the model's rounds: they follow each other, never overlap.
        reporter.step("rounds", f"model round {payload.get('round', '')}".rstrip(), "started")
    elif kind == "tool_call_dispatched":
        reporter.step(str(call), f"{tool} ({call})", "started")
    elif kind == "tool_call_progress":
        fraction = payload.get("progress", payload.get("jobProgress"))
        stage = payload.get("stepLabel") or payload.get("jobLabel")
        label = f"{tool} {stage}" if stage else str(tool)
        eta = payload.get("etaSeconds", payload.get("jobEtaSeconds"))
        if isinstance(fraction, int | float):
            eta_s = float(eta) if isinstance(eta, int | float) else None
            reporter.bar(str(call), label, float(fraction), eta_s)
        if payload.get("jobError"):
            reporter.note(f"{tool}: {payload['jobError']}", once=True)
        for url in [*_urls([payload.get("resultUrl")]), *_urls(payload.get("mediaUrls"))]:
            reporter.note(f"result: {url}", once=True)
    elif kind == "tool_call_resolved":
        summary = str(payload.get("summary") or payload.get("errorCode") or "")
        state = "completed" if payload.get("status", "ok") == "ok" else "failed"
        reporter.step(str(call), f"{tool} ({call})", state, summary)
        for url in [*_urls(payload.get("mediaUrls")), *_urls(payload.get("artifacts"))]:
            reporter.note(f"result: {url}", once=True)
    elif kind == "run_awaiting_cost_confirmation":
        cost = payload.get("estimatedCost")
        reporter.note(f"{tool} needs a cost confirmation (estimate {cost})", once=True)
    elif kind == "run_waiting_for_user":
        message = payload.get("message") or payload.get("reason") or "input"
        reporter.note(f"run {run_id} waits: {message}", once=True)
    elif kind in ("run_completed", "run_partial_failure", "run_failed", "run_cancelled"):
        reporter.step("rounds", None, "completed")
        reporter.note(f"run {run_id} {kind.removeprefix('run_')}", once=True)


def run_summary(run: dict[str, Any], answer: bool = True) -> list[str]:
    """A chat-run record for people: the answer (unless not asked for), then status and
    anything pending."""
    lines = []
    final = run.get("finalResponse") if isinstance(run.get("finalResponse"), dict) else {}
    if answer and final.get("content"):
        lines.append(str(final["content"]))
    lines.append(f"run {run.get('runId')}: {run.get('status')}")
    waiting = run.get("waiting")
    if run.get("status") == "waiting_for_user" and isinstance(waiting, dict):
        lines.append(f"  waiting: {waiting.get('reason')} {waiting.get('message') or ''}".rstrip())
    for key in ("failureReason", "cancellationReason"):
        if run.get(key):
            lines.append(f"  {key}: {run[key]}")
    return lines


# --- chat completions ------------------------------------------------------------------------


def completion_media_urls(completion: dict[str, Any]) -> list[str]:
    """Media URLs the hosted tools of a chat completion returned, each once."""
    urls: list[str] = []
    for result in completion.get("sogni_tool_results") or []:
        if not isinstance(result, dict):
            continue
        urls += _urls(result.get("urls"))
        urls += _urls([result.get("url")])
        urls += _urls(result.get("output_assets"))
    return list(dict.fromkeys(urls))


def completion_summary(completion: dict[str, Any]) -> list[str]:
    """A chat completion for people: the answer, client tool calls, started workflows."""
    lines = []
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    if message.get("content"):
        lines.append(str(message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        lines.append(f"tool call {function.get('name')}: {function.get('arguments')}")
    for result in completion.get("sogni_tool_results") or []:
        if isinstance(result, dict):
            state = "ok" if result.get("ok", result.get("success")) else "failed"
            detail = result.get("message") or ""
            name = result.get("toolName") or result.get("tool")
            lines.append(f"[{name}] {state} {detail}".rstrip())
    for workflow in completion.get("creative_workflows") or []:
        wid = workflow.get("workflowId")
        status = workflow.get("status")
        lines.append(f"workflow {wid}: {status} (follow: sogni-agent --stream-workflow {wid})")
    return lines


def models_lines(models: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for model in models:
        extra = f" (alias of {model['alias_of']})" if model.get("alias_of") else ""
        default = " [default]" if model.get("default") else ""
        lines.append(f"{model.get('id')}{extra}{default}")
    return lines
