// Workflow templates: list, create from JSON, view one and run it with inputs.
import { api, enc, query } from '../api.js';
import { clear, errorBox, field, h, select, when } from '../dom.js';
import { pagedList } from './list.js';
import { WORKFLOWS } from './workflows.js';

const TEMPLATES = `${WORKFLOWS}/templates`;

const EXAMPLE = {
  name: 'Square art',
  description: 'One square image of a subject.',
  category: 'custom',
  inputs: [{ name: 'subject', type: 'text', required: true, description: 'What to draw' }],
  stages: [{ type: 'fixed', id: 'art', tool: 'generate_image', args: { prompt: '$inputs.subject', width: 512, height: 512 } }],
};

function createForm(ctx) {
  const text = h('textarea', { rows: 12, spellcheck: 'false', class: 'code' }, JSON.stringify(EXAMPLE, null, 2));
  const errors = h('div', {});
  const form = h('form', { class: 'card', 'aria-label': 'New template' },
    h('h2', {}, 'New template'),
    field('Template (JSON)', text),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create template')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      const answer = await api(TEMPLATES, { method: 'POST', body: JSON.parse(text.value) });
      ctx.navigate(`#/templates/${enc(answer.data.template.id)}`);
    } catch (error) {
      errors.append(errorBox(error));
    }
  });
  return form;
}

export function templatesView(root, ctx) {
  const list = h('div', {});
  clear(root, h('section', {}, h('h1', {}, 'Templates'), list, createForm(ctx)));
  pagedList(list, {
    caption: 'Templates',
    filters: [['visibility', 'Visibility', [['own', 'Mine'], ['public', 'Public'], ['all', 'All']]]],
    load: async ({ offset, limit, visibility }) => {
      const answer = await api(`${TEMPLATES}${query({ limit, offset, visibility })}`);
      return { rows: answer.data.templates, next: answer.data.next };
    },
    columns: [
      ['Template', (t) => h('a', { href: `#/templates/${enc(t.id)}` }, t.name)],
      ['Category', (t) => t.category || ''],
      ['Inputs', (t) => (t.inputs || []).filter((i) => !i.internal).map((i) => i.name).join(', ')],
      ['Visibility', (t) => t.visibility || ''],
      ['Updated', (t) => when(t.updatedAt)],
    ],
  });
}

/** A control for one template input, and how to read its value back. */
function inputControl(spec) {
  const label = `${spec.name}${spec.required ? ' (required)' : ''}`;
  let control;
  let read;
  if (spec.type === 'boolean') {
    control = h('input', { type: 'checkbox', checked: Boolean(spec.default) });
    read = () => control.checked;
  } else if (spec.type === 'select') {
    const options = (spec.options || []).map((o) => [String(o.value), o.label || String(o.value)]);
    control = select(spec.required ? options : [['', '—'], ...options], spec.default ?? '');
    read = () => {
      const option = (spec.options || []).find((o) => String(o.value) === control.value);
      return option ? option.value : undefined;
    };
  } else {
    const media = ['image', 'video', 'audio'].includes(spec.type);
    control = h('input', {
      type: spec.type === 'number' ? 'number' : media ? 'url' : 'text',
      value: spec.default ?? '', required: spec.required, step: spec.type === 'number' ? 'any' : null,
      placeholder: media ? `https://… (${spec.type} URL${spec.multiple ? 's, comma separated' : ''})` : null,
    });
    read = () => {
      const value = control.value.trim();
      if (value === '') return undefined;
      if (spec.type === 'number') return Number(value);
      if (spec.multiple) return value.split(',').map((v) => v.trim()).filter(Boolean);
      return value;
    };
  }
  return { node: field(label, control, spec.description), read };
}

export function templateDetail(root, ctx, id) {
  const section = h('section', { class: 'detail' }, h('p', {}, h('a', { href: '#/templates' }, '← Templates')));
  clear(root, section);
  (async () => {
    let template;
    try {
      template = (await api(`${TEMPLATES}/${enc(id)}`)).data.template;
    } catch (error) {
      section.append(errorBox(error));
      return;
    }
    const controls = (template.inputs || []).filter((i) => !i.internal).map((spec) => [spec.name, inputControl(spec)]);
    const approve = h('input', { type: 'checkbox', checked: true });
    const errors = h('div', {});
    const form = h('form', { class: 'card', 'aria-label': 'Run template' },
      h('h2', {}, 'Run with inputs'),
      controls.map(([, c]) => c.node),
      h('label', { class: 'check' }, approve, ' Approve the estimated cost now'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Run template')),
      errors);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clear(errors);
      const inputs = {};
      for (const [name, control] of controls) {
        const value = control.read();
        if (value !== undefined) inputs[name] = value;
      }
      try {
        const answer = await api(WORKFLOWS, {
          method: 'POST', body: { workflow_id: template.id, inputs, confirm_cost: approve.checked },
        });
        ctx.navigate(`#/workflows/${enc(answer.data.workflow.workflowId)}`);
      } catch (error) {
        errors.append(errorBox(error));
      }
    });
    section.append(
      h('h1', {}, template.name),
      h('p', { class: 'muted' }, [template.category, template.visibility, `version ${template.version ?? 1}`].filter(Boolean).join(' · ')),
      template.description ? h('p', {}, template.description) : null,
      form,
      h('details', { class: 'event-log' }, h('summary', {}, 'Stages'),
        h('pre', { class: 'code' }, JSON.stringify(template.stages, null, 2))));
  })();
}
