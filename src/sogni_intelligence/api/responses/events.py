"""The one mapping from a turn's events to the Responses stream and the response object.

Every response is told as the chat-run event vocabulary (`run_created`, `run_started`,
`assistant_message_delta`, `assistant_message_completed`, `tool_call_dispatched`,
`tool_call_resolved`, `run_waiting_for_user`, `run_completed`, `run_partial_failure`,
`run_failed`, `run_cancelled`): a background response by its chat run's event log, one answered
in the request by the same events made from the agent loop as it runs. `ResponseFolder` folds
them in order into Responses events numbered from 0 and into the response object. It depends on
nothing but the events, so folding the same log again gives the same events with the same
sequence numbers: that is what `starting_after` replays.

Status mapping of a chat run: queued → `queued`, running → `in_progress`, completed →
`completed` (or `incomplete` when the answer was cut at the token limit), a run that asks the
user a clarifying question → `completed` with the question as its answer (continue it with
`previous_response_id`), partial_failure → `completed` when the model still answered (each
failed hosted call is a `sogni_tool_call` item with status `failed`) and `failed` when the run
broke off, failed → `failed`, cancelled → `cancelled`.
"""

from __future__ import annotations

import copy
from typing import Any

#: Responses events that end a stream.
TERMINAL = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.cancelled"}
)


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat-completions usage in the Responses shape."""
    if usage is None:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


class ResponseFolder:
    """Folds a response's internal events into Responses events and the response object.
    `base` holds the response's fixed fields (id, model, the request's echo)."""

    def __init__(self, base: dict[str, Any], background: bool) -> None:
        self.base = base
        self.background = background
        self.status = "queued" if background else "in_progress"
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.incomplete: dict[str, Any] | None = None
        self._sequence = 0
        self._open: int | None = None  # the index of the message item being written

    @property
    def done(self) -> bool:
        return self.status in ("completed", "incomplete", "failed", "cancelled")

    def response(self) -> dict[str, Any]:
        """The response object as the events so far make it."""
        return {
            **self.base,
            "status": self.status,
            "output": copy.deepcopy(self.output),
            "usage": self.usage,
            "error": self.error,
            "incomplete_details": self.incomplete,
        }

    def feed(self, kind: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The Responses events that one internal event makes (none for most)."""
        out: list[dict[str, Any]] = []
        if self.done:
            return out
        if kind == "run_created":
            self._emit(out, "response.created", response=self.response())
        elif kind == "run_started":
            self.status = "in_progress"
            self._emit(out, "response.in_progress", response=self.response())
        elif kind == "assistant_message_delta" and payload.get("delta"):
            index = self._message(out)
            self.output[index]["content"][0]["text"] += payload["delta"]
            self._emit(out, "response.output_text.delta", **self._at(index), delta=payload["delta"])
        elif kind == "assistant_message_completed":
            if self._open is not None or payload.get("content"):
                self._close(out, payload.get("content") or None)
        elif kind == "tool_call_dispatched":
            self._close(out)
            self._add(out, self._tool_item(payload))
        elif kind == "tool_call_resolved":
            self._resolve(out, payload)
        elif kind == "run_waiting_for_user":
            self._finish(out, {"content": payload.get("message") or ""})
        elif kind in ("run_completed", "run_partial_failure") and "content" in payload:
            self._finish(out, payload)
        elif kind in ("run_partial_failure", "run_failed"):
            self._close(out)
            self.status = "failed"
            self.error = {
                "code": payload.get("code") or "server_error",
                "message": payload.get("reason") or "the response failed",
            }
            self._emit(out, "response.failed", response=self.response())
        elif kind == "run_cancelled":
            self._close(out)
            self.status = "cancelled"
            self._emit(out, "response.cancelled", response=self.response())
        return out

    def fail(self, code: str | None, message: str, param: str | None) -> list[dict[str, Any]]:
        """A failure that broke the turn off: an `error` event, then `response.failed`."""
        out: list[dict[str, Any]] = []
        self._emit(out, "error", code=code, message=message, param=param)
        return out + self.feed("run_failed", {"reason": message, "code": code})

    # -- output items ------------------------------------------------------------------------

    def _emit(self, out: list[dict[str, Any]], kind: str, **fields: Any) -> None:
        out.append({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1

    def _item_id(self, prefix: str, index: int) -> str:
        return f"{prefix}_{self.base['id'].removeprefix('resp_')}_{index}"

    def _at(self, index: int) -> dict[str, Any]:
        return {"item_id": self.output[index]["id"], "output_index": index, "content_index": 0}

    def _add(self, out: list[dict[str, Any]], item: dict[str, Any]) -> int:
        index = len(self.output)
        self.output.append(item)
        self._emit(out, "response.output_item.added", output_index=index, item=copy.deepcopy(item))
        return index

    def _message(self, out: list[dict[str, Any]]) -> int:
        """The open message item, opened with its text part if there is none."""
        if self._open is None:
            item = {
                "type": "message",
                "id": self._item_id("msg", len(self.output)),
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._open = index = self._add(out, item)
            part = {"type": "output_text", "text": "", "annotations": []}
            item["content"].append(part)
            self._emit(out, "response.content_part.added", **self._at(index), part=dict(part))
        return self._open

    def _close(self, out: list[dict[str, Any]], text: str | None = None) -> None:
        """End the open message; `text` (the round's whole answer) is the text it keeps."""
        if self._open is None and not text:
            return
        index = self._message(out)
        item = self.output[index]
        part = item["content"][0]
        if text is not None and text != part["text"]:
            if not part["text"] and text:
                self._emit(out, "response.output_text.delta", **self._at(index), delta=text)
            part["text"] = text
        self._emit(out, "response.output_text.done", **self._at(index), text=part["text"])
        self._emit(out, "response.content_part.done", **self._at(index), part=dict(part))
        item["status"] = "completed"
        self._emit(out, "response.output_item.done", output_index=index, item=copy.deepcopy(item))
        self._open = None

    def _tool_item(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "sogni_tool_call",
            "id": self._item_id("stc", len(self.output)),
            "call_id": payload.get("toolCallId"),
            "name": payload.get("toolName"),
            "arguments": payload.get("arguments") or "{}",
            "status": "in_progress",
            "result": None,
        }

    def _resolve(self, out: list[dict[str, Any]], payload: dict[str, Any]) -> None:
        found = [
            i
            for i, item in enumerate(self.output)
            if item["type"] == "sogni_tool_call" and item["call_id"] == payload.get("toolCallId")
        ]
        index = found[-1] if found else self._add(out, self._tool_item(payload))
        item = self.output[index]
        status = payload.get("status")
        item["status"] = {"ok": "completed", "cancelled": "incomplete"}.get(status, "failed")
        item["result"] = {
            "status": status,
            "summary": payload.get("summary"),
            "error_code": payload.get("errorCode"),
            "artifacts": payload.get("artifacts") or [],
        }
        self._emit(out, "response.output_item.done", output_index=index, item=copy.deepcopy(item))

    def _finish(self, out: list[dict[str, Any]], payload: dict[str, Any]) -> None:
        """The answer: the open message ends; an answer the model never wrote as text (a
        control tool's question or summary) becomes a message of its own; then the client's
        function calls, and the response ends."""
        content = payload.get("content") or ""
        self._close(out)
        last = self.output[-1] if self.output else None
        written = last["content"][0]["text"] if last and last["type"] == "message" else None
        if content and content != written:
            self._close(out, content)
        for call in payload.get("toolCalls") or []:
            self._function_call(out, call)
        self.usage = usage_of(payload.get("usage"))
        if payload.get("finishReason") == "length":
            self.status = "incomplete"
            self.incomplete = {"reason": "max_output_tokens"}
            self._emit(out, "response.incomplete", response=self.response())
        else:
            self.status = "completed"
            self._emit(out, "response.completed", response=self.response())

    def _function_call(self, out: list[dict[str, Any]], call: dict[str, Any]) -> None:
        arguments = call["function"].get("arguments") or "{}"
        item = {
            "type": "function_call",
            "id": self._item_id("fc", len(self.output)),
            "call_id": call["id"],
            "name": call["function"]["name"],
            "arguments": "",
            "status": "in_progress",
        }
        index = self._add(out, item)
        at = {"item_id": item["id"], "output_index": index}
        self._emit(out, "response.function_call_arguments.delta", **at, delta=arguments)
        self._emit(out, "response.function_call_arguments.done", **at, arguments=arguments)
        item.update(arguments=arguments, status="completed")
        self._emit(out, "response.output_item.done", output_index=index, item=copy.deepcopy(item))


def fold(
    base: dict[str, Any], background: bool, events: list[tuple[str, dict[str, Any]]]
) -> tuple[ResponseFolder, list[dict[str, Any]]]:
    """Fold a whole list of events: the folder (its response) and every Responses event."""
    folder = ResponseFolder(base, background)
    out = [e for kind, payload in events for e in folder.feed(kind, payload)]
    return folder, out
