// The workflows list, and a form that starts one from an inline plan.
import { api, enc, query, session } from '../api.js';
import { clear, errorBox, field, h, statusBadge, when } from '../dom.js';
import { STATUSES, pagedList } from './list.js';

export const WORKFLOWS = '/v1/creative-agent/workflows';

const EXAMPLE = {
  title: 'Poster',
  steps: [
    { id: 'poster', toolName: 'generate_image', arguments: { prompt: 'a paper boat on a calm lake at dawn', width: 512, height: 512 } },
  ],
};

export function scopeFilter() {
  return session.isAdmin ? [['scope', 'Whose', [['own', 'My records'], ['all', 'All keys']]]] : [];
}

function startForm(ctx) {
  const plan = h('textarea', { rows: 10, spellcheck: 'false', class: 'code' }, JSON.stringify(EXAMPLE, null, 2));
  const approve = h('input', { type: 'checkbox', checked: true });
  const errors = h('div', {});
  const form = h('form', { class: 'card', 'aria-label': 'Start a workflow' },
    h('h2', {}, 'Start a workflow'),
    field('Plan (JSON)', plan, 'The inline plan: {"title", "steps": [{"id", "toolName", "arguments", "dependsOn"}]}.'),
    h('label', { class: 'check' }, approve, ' Approve the estimated cost now'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start workflow')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    let input;
    try {
      input = JSON.parse(plan.value);
    } catch (error) {
      errors.append(errorBox(new Error(`The plan is not valid JSON: ${error.message}`)));
      return;
    }
    try {
      const answer = await api(WORKFLOWS, { method: 'POST', body: { input, confirm_cost: approve.checked } });
      ctx.navigate(`#/workflows/${enc(answer.data.workflow.workflowId)}`);
    } catch (error) {
      errors.append(errorBox(error));
    }
  });
  return form;
}

export function workflowsView(root, ctx) {
  const list = h('div', {});
  clear(root, h('section', {}, h('h1', {}, 'Workflows'), list, startForm(ctx)));
  pagedList(list, {
    caption: 'Workflows',
    filters: [['status', 'Status', STATUSES], ...scopeFilter()],
    load: async ({ offset, limit, status, scope }) => {
      const answer = await api(`${WORKFLOWS}${query({ limit, offset, status, scope })}`);
      return { rows: answer.data.workflows, next: answer.data.next };
    },
    columns: [
      ['Workflow', (w) => h('a', { href: `#/workflows/${enc(w.workflowId)}` }, w.title || w.workflowId)],
      ['Status', (w) => statusBadge(w.status)],
      ['Steps', (w) => String((w.steps || []).length)],
      ['Artifacts', (w) => String((w.artifacts || []).length)],
      ['Created', (w) => when(w.timestamps?.createdAt)],
    ],
  });
}
