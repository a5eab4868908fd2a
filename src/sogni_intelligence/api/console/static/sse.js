// Server-sent events over fetch: EventSource cannot send an Authorization header.

/**
 * The frames of an SSE body, as `{id, event, data}` (data lines joined with "\n"). Comment
 * lines go to `onComment`; frames without data (heartbeats) are skipped. CR, LF and CRLF all
 * end a line, also when a chunk boundary falls between CR and LF.
 */
export async function* sseFrames(body, onComment) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let frame = { id: null, event: 'message', data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let at;
      while ((at = buffer.search(/[\r\n]/)) >= 0) {
        // A CR at the very end may be the first half of a CRLF: wait for more.
        if (buffer[at] === '\r' && at === buffer.length - 1) break;
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + (buffer.startsWith('\r\n', at) ? 2 : 1));
        if (line === '') {
          if (frame.data.length) yield { id: frame.id, event: frame.event, data: frame.data.join('\n') };
          frame = { id: null, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) {
          onComment?.(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'data') frame.data.push(value);
        else if (name === 'event') frame.event = value || 'message';
        else if (name === 'id' && !value.includes('\0')) frame.id = value;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parse(text) {
  try { return JSON.parse(text); } catch { return text; }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * Follow a record's event stream and survive dropped connections.
 *
 * Every reconnect sends `Last-Event-ID` = the last `id:` seen, so the server replays exactly
 * the events after it; an event whose id is not past that one is dropped, so nothing is
 * shown twice. The stream is over when the server closes it right after an event that
 * `isFinal(event, data)` accepts (terminal, or waiting for the user); a close after any other
 * event is a drop, and the follower reconnects with a growing pause.
 *
 * `options.headers()` gives the request headers (the key); `onEvent({id, event, data})`,
 * `onState(state, detail)` with state connecting|open|retrying|ended|failed.
 */
export function followEvents(url, options) {
  const {
    headers, onEvent, onState = () => {}, isFinal = () => false,
    lastEventId = null, fetchImpl = (...args) => fetch(...args),
    retryMs = [250, 1000, 2000, 5000],
  } = options;
  const controller = new AbortController();
  let last = lastEventId;
  let attempt = 0;

  async function once() {
    const requestHeaders = { Accept: 'text/event-stream', ...headers() };
    if (last !== null) requestHeaders['Last-Event-ID'] = String(last);
    const response = await fetchImpl(url, {
      headers: requestHeaders, signal: controller.signal, cache: 'no-store',
    });
    if (!response.ok) {
      const error = new Error(`The event stream answered HTTP ${response.status}`);
      error.status = response.status;
      error.response = response;
      throw error;
    }
    onState('open', { attempt });
    attempt = 0;
    let final = false;
    for await (const frame of sseFrames(response.body)) {
      if (frame.id !== null && last !== null && Number(frame.id) <= Number(last)) continue;
      if (frame.id !== null) last = frame.id;
      const data = parse(frame.data);
      final = Boolean(isFinal(frame.event, data));
      onEvent({ id: frame.id, event: frame.event, data });
    }
    return final;
  }

  const done = (async () => {
    while (!controller.signal.aborted) {
      onState(attempt ? 'retrying' : 'connecting', { attempt, lastEventId: last });
      try {
        if (await once()) {
          onState('ended', { lastEventId: last });
          return 'ended';
        }
      } catch (error) {
        if (controller.signal.aborted) break;
        const status = error.status ?? 0;
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          onState('failed', { error });
          return 'failed';
        }
      }
      if (controller.signal.aborted) break;
      await sleep(retryMs[Math.min(attempt, retryMs.length - 1)], controller.signal);
      attempt += 1;
    }
    return 'stopped';
  })();

  return {
    done,
    stop() { controller.abort(); },
    get lastEventId() { return last; },
  };
}
