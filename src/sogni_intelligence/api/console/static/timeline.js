// Timelines built from the event log: steps of a workflow, rounds and tool calls of a chat run,
// each with its status and duration (the time between its start and end events).

export const TERMINAL = new Set(['completed', 'partial_failure', 'failed', 'cancelled']);
export const STOPPED = new Set([...TERMINAL, 'waiting_for_user']);

const RUN_STATUS = {
  run_created: 'queued', run_queued: 'queued', run_started: 'running', run_resumed: 'running',
  run_waiting_for_user: 'waiting_for_user', run_completed: 'completed', run_failed: 'failed',
  run_partial_failure: 'partial_failure', run_cancelled: 'cancelled',
};

const ms = (iso) => (iso ? Date.parse(iso) : NaN);

/** Workflow: `state.items` are its steps, in plan order. */
export function workflowState(record) {
  const items = new Map();
  for (const step of record.steps || record.input?.steps || []) {
    items.set(step.id, {
      key: step.id, label: step.id, tool: step.toolName,
      status: step.status && step.status !== 'pending' ? step.status : 'pending',
      error: step.error?.message || null, start: NaN, end: NaN,
    });
  }
  return { kind: 'workflow', status: record.status, items, events: [], progress: null };
}

export function applyWorkflowEvent(state, event) {
  const data = event.data || {};
  state.events.push(event);
  if (event.status) state.status = event.status;
  const step = data.stepId !== undefined ? stepOf(state, data.stepId, data.toolName) : null;
  switch (event.type) {
    case 'step_started':
      Object.assign(step, { status: 'running', start: ms(event.timestamp), end: NaN, error: null });
      break;
    case 'step_completed':
      Object.assign(step, { status: 'completed', end: ms(event.timestamp) });
      step.detail = [...new Set([data.model, data.backend].filter(Boolean))].join(' · ');
      break;
    case 'step_failed':
      Object.assign(step, { status: 'failed', end: ms(event.timestamp), error: data.error?.message || 'failed' });
      break;
    case 'step_waiting_for_user':
      step.status = 'waiting_for_user';
      break;
    case 'workflow_progress':
      if (data.totalSteps) state.progress = `${data.completedSteps} of ${data.totalSteps} steps done`;
      break;
    default:
      break;
  }
  if (TERMINAL.has(state.status)) {
    for (const item of state.items.values()) {
      if (item.status === 'running' || item.status === 'pending') {
        item.status = state.status === 'cancelled' ? 'cancelled' : 'not run';
        if (!Number.isNaN(item.start)) item.end = ms(event.timestamp);
      }
    }
  }
  return state;
}

function stepOf(state, id, tool) {
  if (!state.items.has(id)) {
    state.items.set(id, { key: id, label: id, tool, status: 'pending', error: null, start: NaN, end: NaN });
  }
  return state.items.get(id);
}

/** Chat run: `state.items` are its LLM rounds and tool calls, in the order they started. */
export function runState(record) {
  return {
    kind: 'run', status: record.status, items: new Map(), events: [], text: new Map(),
    artifacts: [...(record.artifacts || [])], waiting: record.waiting || null,
  };
}

export function applyRunEvent(state, event) {
  const p = event.payload || {};
  const at = ms(event.at);
  state.events.push(event);
  state.status = RUN_STATUS[event.type] || (state.status === 'queued' ? 'running' : state.status);
  switch (event.type) {
    case 'llm_round_started':
      state.items.set(`round-${p.round}`, {
        key: `round-${p.round}`, label: `LLM round ${Number(p.round) + 1}`, tool: 'assistant',
        status: 'running', start: at, end: NaN, error: null,
      });
      break;
    case 'assistant_message_delta':
      state.text.set(p.round, (state.text.get(p.round) || '') + (p.delta || ''));
      break;
    case 'assistant_message_completed': {
      const item = state.items.get(`round-${p.round}`);
      if (item) Object.assign(item, { status: 'completed', end: at, detail: p.finishReason || '' });
      if (typeof p.content === 'string') state.text.set(p.round, p.content);
      break;
    }
    case 'tool_call_dispatched':
      state.items.set(`tool-${p.toolCallId}`, {
        key: `tool-${p.toolCallId}`, label: p.toolName, tool: 'tool call', status: 'running',
        start: at, end: NaN, error: null,
      });
      break;
    case 'tool_call_progress': {
      const item = state.items.get(`tool-${p.toolCallId}`);
      if (item && typeof p.progress === 'number') item.detail = `${Math.round(p.progress * 100)} %`;
      break;
    }
    case 'tool_call_resolved': {
      const item = state.items.get(`tool-${p.toolCallId}`);
      if (item) {
        Object.assign(item, {
          status: p.status === 'ok' ? 'completed' : p.status === 'err' ? 'failed' : p.status,
          end: at, detail: p.summary || '', error: p.status === 'err' ? (p.errorCode || 'error') : null,
        });
      }
      addArtifacts(state, p.artifacts || []);
      break;
    }
    case 'artifact_created':
      addArtifacts(state, [p.artifact]);
      break;
    case 'run_waiting_for_user':
      state.waiting = p;
      break;
    case 'run_cost_confirmation_resolved':
    case 'run_resumed':
      state.waiting = null;
      break;
    default:
      break;
  }
  if (TERMINAL.has(state.status)) {
    state.waiting = null;
    for (const item of state.items.values()) {
      if (item.status === 'running') Object.assign(item, { status: state.status === 'cancelled' ? 'cancelled' : 'stopped', end: at });
    }
  }
  return state;
}

function addArtifacts(state, artifacts) {
  for (const artifact of artifacts) {
    if (artifact?.url && !state.artifacts.some((a) => a.id === artifact.id)) state.artifacts.push(artifact);
  }
}

/** Whether the stream closes after this event (the server ends it there). */
export function workflowFinal(_event, data) {
  return STOPPED.has(data?.status);
}

export function runFinal(event) {
  return RUN_STATUS[event] !== undefined && STOPPED.has(RUN_STATUS[event]);
}
