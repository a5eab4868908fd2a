// The chat runs list, and a form that starts a durable run.
import { api, enc, query } from '../api.js';
import { clear, errorBox, field, h, select, statusBadge, when } from '../dom.js';
import { STATUSES, pagedList } from './list.js';
import { scopeFilter } from './workflows.js';

const RUNS = '/v1/chat/runs';

export const TOOL_SURFACES = [
  ['none', 'No hosted tools'], ['creative-tools', 'Creative tools'], ['creative-agent', 'Creative agent'],
];

function startForm(ctx) {
  const message = h('textarea', { rows: 3, required: true });
  const tools = select(TOOL_SURFACES, 'creative-agent');
  const maxTokens = h('input', { type: 'number', min: 1, step: 1, placeholder: 'model default' });
  const confirm = h('input', { type: 'checkbox' });
  const errors = h('div', {});
  const form = h('form', { class: 'card', 'aria-label': 'Start a chat run' },
    h('h2', {}, 'Start a chat run'),
    field('Run message', message),
    h('div', { class: 'row' }, field('Run tools', tools), field('Run max tokens', maxTokens)),
    h('label', { class: 'check' }, confirm, ' Ask me before each paid tool call'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start run')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      const answer = await api(RUNS, {
        method: 'POST',
        body: {
          messages: [{ role: 'user', content: message.value }],
          sogni_tools: tools.value,
          sampling: maxTokens.value ? { max_tokens: Number(maxTokens.value) } : undefined,
          runtime_config: confirm.checked ? { requireJobConfirmation: true } : undefined,
        },
      });
      ctx.navigate(`#/runs/${enc(answer.data.run.runId)}`);
    } catch (error) {
      errors.append(errorBox(error));
    }
  });
  return form;
}

function firstQuestion(run) {
  const message = (run.request?.messages || run.messages || []).find((m) => m.role === 'user');
  const content = message?.content;
  const text = typeof content === 'string' ? content
    : Array.isArray(content) ? content.map((part) => part.text || '').join(' ') : '';
  return text.slice(0, 80) || run.runId;
}

export function runsView(root, ctx) {
  const list = h('div', {});
  clear(root, h('section', {}, h('h1', {}, 'Chat runs'), list, startForm(ctx)));
  pagedList(list, {
    caption: 'Chat runs',
    filters: [['status', 'Status', STATUSES], ...scopeFilter()],
    load: async ({ offset, limit, status, scope }) => {
      const answer = await api(`${RUNS}${query({ limit, offset, status, scope })}`);
      return { rows: answer.data.runs, next: answer.data.next };
    },
    columns: [
      ['Run', (r) => h('a', { href: `#/runs/${enc(r.runId)}` }, firstQuestion(r))],
      ['Status', (r) => statusBadge(r.status)],
      ['Tool calls', (r) => String((r.toolCalls || []).length)],
      ['Artifacts', (r) => String((r.artifacts || []).length)],
      ['Created', (r) => when(r.timestamps?.createdAt)],
    ],
  });
}
