// What the detail views of a workflow and of a chat run share: the record's status and timeline,
// live from its event stream, artifacts previewed inline, and its actions. `kind` says how to
// load, read and act on one kind of record (workflow_detail.js, run_detail.js).
import { authHeaders, errorOf } from '../api.js';
import { clear, duration, errorBox, h, statusBadge } from '../dom.js';
import { gallery } from '../media.js';
import { followEvents } from '../sse.js';
import { STOPPED, TERMINAL } from '../timeline.js';

const CONNECTION = {
  connecting: 'connecting…', open: 'live', retrying: 'reconnecting…', ended: 'closed',
  failed: 'stream failed', stopped: 'stopped',
};

/** A fresh Idempotency-Key, so a retried click does the action once. */
export function newKey() {
  return `console-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** The parts every detail view has; `kind` says which record it follows. */
function detailView(root, ctx, kind) {
  const parts = {
    title: h('h1', {}, kind.noun),
    status: h('span', { role: 'status', 'aria-live': 'polite', 'aria-label': 'Status', class: 'record-status' }),
    connection: h('span', { class: 'connection', 'aria-label': 'Stream' }),
    progress: h('span', { class: 'muted' }),
    meta: h('span', { class: 'muted' }),
    actions: h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }),
    errors: h('div', { class: 'errors' }),
    waiting: h('div', { class: 'waiting' }),
    timeline: h('ol', { class: 'timeline', 'aria-label': kind.timelineLabel }),
    text: h('div', { class: 'assistant-text', 'aria-label': 'Assistant text' }),
    artifacts: h('div', { 'aria-label': 'Artifacts' }),
    eventCount: h('span', {}),
    events: h('ol', { class: 'events', 'aria-label': 'Events' }),
  };
  clear(root, h('section', { class: 'detail' },
    h('p', {}, h('a', { href: kind.back }, `← ${kind.backText}`)),
    parts.title,
    h('p', { class: 'meta' }, 'Status: ', parts.status, ' · Stream: ', parts.connection, ' ',
      parts.progress, h('br'), parts.meta),
    parts.actions, parts.errors, parts.waiting,
    h('div', { class: 'panes' },
      h('div', {}, h('h2', {}, kind.timelineLabel), parts.timeline,
        kind.hasText ? [h('h2', {}, 'Answer'), parts.text] : null),
      h('div', {}, h('h2', {}, 'Artifacts'), parts.artifacts)),
    h('details', { class: 'event-log' }, h('summary', {}, 'Events (', parts.eventCount, ')'), parts.events)));
  parts.showError = (error) => parts.errors.append(errorBox(error));
  return parts;
}

function renderTimeline(list, items) {
  const all = [...items.values()];
  const starts = all.map((i) => i.start).filter((t) => !Number.isNaN(t));
  const ends = all.map((i) => (Number.isNaN(i.end) ? Date.now() : i.end)).filter((t) => !Number.isNaN(t));
  const t0 = Math.min(...starts);
  const span = Math.max(1, Math.max(...ends, t0) - t0);
  clear(list, all.map((item) => {
    const bar = h('span', { class: 'tl-bar' });
    if (!Number.isNaN(item.start)) {
      const end = Number.isNaN(item.end) ? Date.now() : item.end;
      bar.style.marginLeft = `${((item.start - t0) / span) * 100}%`;
      bar.style.width = `${Math.max(0.5, ((end - item.start) / span) * 100)}%`;
    }
    const took = Number.isNaN(item.start) || Number.isNaN(item.end) ? '' : duration(item.end - item.start);
    return h('li', { class: `tl-item s-${item.status}`, 'data-key': item.key },
      h('span', { class: 'tl-name' }, item.label),
      h('span', { class: 'tl-tool' }, item.tool || ''),
      statusBadge(item.status),
      h('span', { class: 'tl-dur', 'aria-label': 'Duration' }, took),
      h('span', { class: 'tl-track', 'aria-hidden': 'true' }, bar),
      item.error ? h('span', { class: 'tl-err' }, item.error) : null,
      item.detail ? h('span', { class: 'tl-detail muted' }, item.detail) : null);
  }));
}

function renderEvents(list, events, count) {
  count.textContent = String(events.length);
  for (const event of events.slice(list.childElementCount)) {
    const at = event.timestamp || event.at;
    const body = event.data ?? event.payload ?? {};
    list.append(h('li', {},
      h('code', {}, String(event.sequence)), ' ', h('strong', {}, event.type), ' ',
      h('span', { class: 'muted' }, at ? new Date(at).toLocaleTimeString() : ''), ' ',
      h('code', { class: 'payload' }, JSON.stringify(body).slice(0, 240))));
  }
}

/**
 * Shared life of a detail view: load the record, follow its stream (again after an action
 * that moves it on), re-render at most once a frame. Returns the cleanup.
 */
export function liveRecord(root, ctx, kind, id) {
  const parts = detailView(root, ctx, kind);
  const live = { record: null, state: null, follower: null, disposed: false, frame: 0, shownArtifacts: null };

  const render = () => {
    live.frame = 0;
    if (live.disposed || !live.state) return;
    const { state } = live;
    clear(parts.status, statusBadge(state.status));
    renderTimeline(parts.timeline, state.items);
    renderEvents(parts.events, state.events, parts.eventCount);
    kind.renderExtra(parts, live);
    const artifacts = kind.artifacts(live);
    const key = artifacts.map((a) => a.url).join(' ');
    if (key !== live.shownArtifacts) {
      live.shownArtifacts = key;
      clear(parts.artifacts, gallery(artifacts));
    }
    kind.renderActions(parts, live, actions);
  };
  const schedule = () => {
    if (!live.frame) live.frame = requestAnimationFrame(render);
  };

  const follow = () => {
    live.follower?.stop();
    const follower = followEvents(kind.streamUrl(id), {
      headers: () => authHeaders(),
      lastEventId: live.follower?.lastEventId ?? null,
      isFinal: kind.isFinal,
      onEvent: ({ data }) => {
        if (live.disposed || typeof data !== 'object') return;
        kind.apply(live, data, refresh);
        schedule();
      },
      onState: async (state, detail) => {
        parts.connection.textContent = CONNECTION[state] || state;
        parts.connection.dataset.state = state;
        if (state === 'failed') parts.showError(await errorOf(detail.error.response));
        if (state === 'ended') refresh();
      },
    });
    live.follower = follower;
  };

  let refreshTimer = 0;
  /** Read the record again soon (artifact URLs, waiting details live on the record). */
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        live.record = await kind.load(id);
        kind.merge(live);
        schedule();
      } catch (error) {
        parts.showError(error);
      }
    }, 100);
  }

  const actions = {
    /** Run an action on the record, show the record it answers, and follow on. */
    async run(request) {
      clear(parts.errors);
      const record = await request();
      if (record) {
        live.record = record;
        kind.merge(live);
      }
      if (!TERMINAL.has(live.state.status)) follow();
      schedule();
    },
    error: (error) => parts.showError(error),
    navigate: ctx.navigate,
  };

  (async () => {
    try {
      live.record = await kind.load(id);
    } catch (error) {
      parts.showError(error);
      return;
    }
    if (live.disposed) return;
    live.state = kind.initial(live.record);
    kind.merge(live);
    render();
    follow();
  })();

  return () => {
    live.disposed = true;
    live.follower?.stop();
    clearTimeout(refreshTimer);
    cancelAnimationFrame(live.frame);
  };
}

/** The record is newer than its stream only once it has stopped: trust it then. */
export function isStopped(status) {
  return STOPPED.has(status);
}

/** Replace the action buttons only when the set changes (keeps focus and pending clicks). */
export function setActions(parts, buttons) {
  const key = buttons.map((b) => b.textContent).join('|');
  if (parts.actions.dataset.key !== key) {
    parts.actions.dataset.key = key;
    clear(parts.actions, buttons);
  }
}
