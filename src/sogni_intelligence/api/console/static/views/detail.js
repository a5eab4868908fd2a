// Detail views of one workflow or chat run: the record's status and timeline, live from its
// event stream, with artifacts previewed inline and the actions its state allows.
import { api, authHeaders, enc, errorOf } from '../api.js';
import { actionButton, clear, duration, errorBox, h, statusBadge, when } from '../dom.js';
import { gallery } from '../media.js';
import { followEvents } from '../sse.js';
import {
  TERMINAL, applyRunEvent, applyWorkflowEvent, runFinal, runState, workflowFinal, workflowState,
} from '../timeline.js';

const CONNECTION = {
  connecting: 'connecting…', open: 'live', retrying: 'reconnecting…', ended: 'closed',
  failed: 'stream failed', stopped: 'stopped',
};

function newKey() {
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
function liveRecord(root, ctx, kind, id) {
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

// --- workflows -------------------------------------------------------------------------------

const WORKFLOWS = '/v1/creative-agent/workflows';

const workflowKind = {
  noun: 'Workflow', back: '#/workflows', backText: 'Workflows', timelineLabel: 'Steps', hasText: false,
  streamUrl: (id) => `${WORKFLOWS}/${enc(id)}/events/stream`,
  load: async (id) => (await api(`${WORKFLOWS}/${enc(id)}`)).data.workflow,
  initial: workflowState,
  isFinal: workflowFinal,
  apply(live, event, refresh) {
    applyWorkflowEvent(live.state, event);
    if (event.type === 'artifact_created' || workflowFinal(event.type, event)) refresh();
  },
  merge(live) {
    const { record, state } = live;
    // The record is newer than the stream only when it is stopped: trust it then.
    if (STOPPED_OR_TERMINAL(record.status)) state.status = record.status;
  },
  artifacts: (live) => live.record?.artifacts || [],
  renderExtra(parts, live) {
    const { record, state } = live;
    parts.title.textContent = record.title || 'Workflow';
    parts.meta.textContent = `${record.workflowId} · created ${when(record.timestamps?.createdAt)}`;
    parts.progress.textContent = state.progress ? `· ${state.progress}` : '';
    const reason = record.failureReason || record.cancellationReason;
    clear(parts.waiting, state.status === 'waiting_for_user'
      ? h('p', { class: 'notice' }, `Waiting for you: ${(record.waitingReason || 'input').replaceAll('_', ' ')}`,
        record.billingPreview ? ` (estimated ${record.billingPreview.estimatedCapacityUnits} capacity units)` : '')
      : reason && TERMINAL.has(state.status) ? h('p', { class: 'muted' }, reason) : null);
  },
  renderActions(parts, live, actions) {
    const { record, state } = live;
    const id = record.workflowId;
    const post = (path, body, headers) => api(`${WORKFLOWS}/${enc(id)}/${path}`, { method: 'POST', body, headers });
    const buttons = [];
    if (!TERMINAL.has(state.status)) {
      buttons.push(actionButton('Cancel workflow', () => actions.run(async () =>
        (await post('cancel', { reason: 'cancelled from the console' })).data.workflow), actions.error, { class: 'danger' }));
    }
    if (['waiting_for_user', 'queued'].includes(state.status) && !record.awaitingCostApproval) {
      buttons.push(actionButton('Resume', () => actions.run(async () =>
        (await post('resume', {})).data.workflow), actions.error));
    }
    if (state.status === 'waiting_for_user' && record.awaitingCostApproval) {
      buttons.push(actionButton('Confirm cost', () => actions.run(async () =>
        (await post('confirm-cost', { decision: 'confirm', acceptedCostPreview: live.record.billingPreview },
          { 'Idempotency-Key': newKey() })).data.workflow), actions.error, { class: 'primary' }));
      buttons.push(actionButton('Decline cost', () => actions.run(async () =>
        (await post('confirm-cost', { decision: 'cancel' }, { 'Idempotency-Key': newKey() })).data.workflow),
      actions.error));
    }
    if (['completed', 'partial_failure'].includes(state.status)) {
      buttons.push(actionButton('Reseed', async () => {
        const answer = await post('reseed', {}, { 'Idempotency-Key': newKey() });
        actions.navigate(`#/workflows/${enc(answer.data.workflow.workflowId)}`);
      }, actions.error));
    }
    const key = buttons.map((b) => b.textContent).join('|');
    if (parts.actions.dataset.key !== key) {
      parts.actions.dataset.key = key;
      clear(parts.actions, buttons);
    }
  },
};

function STOPPED_OR_TERMINAL(status) {
  return TERMINAL.has(status) || status === 'waiting_for_user';
}

export function workflowDetail(root, ctx, id) {
  return liveRecord(root, ctx, workflowKind, id);
}

// --- chat runs -------------------------------------------------------------------------------

const RUNS = '/v1/chat/runs';

const runKind = {
  noun: 'Chat run', back: '#/runs', backText: 'Chat runs', timelineLabel: 'Rounds and tool calls', hasText: true,
  streamUrl: (id) => `${RUNS}/${enc(id)}/events/stream`,
  load: async (id) => (await api(`${RUNS}/${enc(id)}`)).data.run,
  initial: runState,
  isFinal: runFinal,
  apply(live, event, refresh) {
    applyRunEvent(live.state, event);
    if (runFinal(event.type)) refresh();
  },
  merge(live) {
    const { record, state } = live;
    if (STOPPED_OR_TERMINAL(record.status)) {
      state.status = record.status;
      state.waiting = record.waiting || null;
    }
    for (const artifact of record.artifacts || []) {
      if (artifact.url && !state.artifacts.some((a) => a.id === artifact.id)) state.artifacts.push(artifact);
    }
  },
  artifacts: (live) => live.state.artifacts,
  renderExtra(parts, live) {
    const { record, state } = live;
    const question = record.request?.messages?.findLast?.((m) => m.role === 'user');
    parts.title.textContent = `Chat run: ${String(question?.content ?? '').slice(0, 80) || record.runId}`;
    parts.meta.textContent = `${record.runId} · created ${when(record.timestamps?.createdAt)}`;
    const rounds = [...state.text.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text).filter(Boolean);
    const answer = rounds.join('\n\n') || record.finalResponse?.content || '';
    if (parts.text.textContent !== answer) parts.text.textContent = answer;
    const waiting = state.waiting;
    const reason = record.failureReason || record.cancellationReason;
    clear(parts.waiting, waiting
      ? h('p', { class: 'notice' }, `Waiting for you: ${(waiting.reason || 'input').replaceAll('_', ' ')}`,
        waiting.message ? ` — ${waiting.message}` : '')
      : reason && TERMINAL.has(state.status) ? h('p', { class: 'muted' }, reason) : null);
  },
  renderActions(parts, live, actions) {
    const { record, state } = live;
    const id = record.runId;
    const post = (path, body, headers) => api(`${RUNS}/${enc(id)}/${path}`, { method: 'POST', body, headers });
    const buttons = [];
    if (!TERMINAL.has(state.status)) {
      buttons.push(actionButton('Cancel run', () => actions.run(async () =>
        (await post('cancel', { reason: 'cancelled from the console' })).data.run), actions.error, { class: 'danger' }));
    }
    const detailsNow = () => live.state.waiting?.details || live.record.waiting?.details;
    if (state.status === 'waiting_for_user' && detailsNow()?.costApprovalPreview) {
      // Read at click time: the preview must be the one the server holds now.
      const decide = (decision) => () => actions.run(async () => {
        const details = detailsNow();
        const preview = details.costApprovalPreview;
        const toolCallId = details.toolCallId || preview.perToolBreakdown?.[0]?.toolCallId;
        return (await post('confirm-cost', {
          tool_call_id: toolCallId, decision, acceptedCostPreview: decision === 'confirm' ? preview : undefined,
        }, { 'Idempotency-Key': newKey() })).data.run;
      });
      buttons.push(actionButton('Confirm cost', decide('confirm'), actions.error, { class: 'primary' }));
      buttons.push(actionButton('Decline cost', decide('cancel'), actions.error));
    }
    const key = buttons.map((b) => b.textContent).join('|');
    if (parts.actions.dataset.key !== key) {
      parts.actions.dataset.key = key;
      clear(parts.actions, buttons);
    }
  },
};

export function runDetail(root, ctx, id) {
  return liveRecord(root, ctx, runKind, id);
}
