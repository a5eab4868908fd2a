// A workflow's detail view: its steps with their durations, artifacts, and the actions cancel,
// resume, confirm cost and reseed.
import { api, enc } from '../api.js';
import { actionButton, clear, h, when } from '../dom.js';
import { TERMINAL, applyWorkflowEvent, workflowFinal, workflowState } from '../timeline.js';
import { isStopped, liveRecord, newKey, setActions } from './detail.js';

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
    if (isStopped(record.status)) state.status = record.status;
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
    setActions(parts, buttons);
  },
};

export function workflowDetail(root, ctx, id) {
  return liveRecord(root, ctx, workflowKind, id);
}
