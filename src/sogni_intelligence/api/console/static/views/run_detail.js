// A chat run's detail view: its LLM rounds and tool calls with their durations, the streamed
// answer, artifacts, and the actions cancel and confirm (or decline) a tool call's cost.
import { api, enc } from '../api.js';
import { actionButton, clear, h, when } from '../dom.js';
import { TERMINAL, applyRunEvent, runFinal, runState } from '../timeline.js';
import { isStopped, liveRecord, newKey, setActions } from './detail.js';

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
    if (isStopped(record.status)) {
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
    setActions(parts, buttons);
  },
};

export function runDetail(root, ctx, id) {
  return liveRecord(root, ctx, runKind, id);
}
