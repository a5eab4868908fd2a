// Admin: API keys (list, create with role and limits, revoke) and metrics at a glance.
import { api, authHeaders, enc, errorOf } from '../api.js';
import { actionButton, clear, errorBox, field, h, select, when } from '../dom.js';

const LIMITS = [
  ['requestsPerMinute', 'Requests per minute'],
  ['tokensPerMinute', 'Tokens per minute'],
  ['concurrentRecords', 'Concurrent records'],
  ['dailyCapacityUnits', 'Daily capacity units'],
];

/** Prometheus text → [{name, labels, value}] (comments and malformed lines skipped). */
export function parseMetrics(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split('\n')) {
    if (!raw || raw.startsWith('#')) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const [, name, value] of (m[2] || '').matchAll(label)) labels[name] = value.replace(/\\(.)/g, '$1');
    const value = Number(m[3]);
    if (!Number.isNaN(value)) samples.push({ name: m[1], labels, value });
  }
  return samples;
}

function sum(samples, name, where = () => true) {
  return samples.filter((s) => s.name === name && where(s.labels)).reduce((total, s) => total + s.value, 0);
}

function format(value) {
  return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(2);
}

async function loadMetrics(box) {
  const response = await fetch('/metrics', { headers: authHeaders() });
  if (!response.ok) throw await errorOf(response);
  const samples = parseMetrics(await response.text());
  // Records by kind (rows) and status (columns), from `sogni_records{kind,status}`.
  const records = new Map();
  const statuses = new Set();
  for (const s of samples.filter((x) => x.name === 'sogni_records')) {
    const kind = s.labels.kind || 'record';
    statuses.add(s.labels.status);
    if (!records.has(kind)) records.set(kind, new Map());
    records.get(kind).set(s.labels.status, (records.get(kind).get(s.labels.status) || 0) + s.value);
  }
  const tiles = [
    ['HTTP requests', sum(samples, 'sogni_http_requests_total')],
    ['Server errors (5xx)', sum(samples, 'sogni_http_requests_total', (l) => String(l.status || l.code || '').startsWith('5'))],
    ['Completion tokens', sum(samples, 'sogni_llm_completion_tokens_total')],
    ['Prompt tokens', sum(samples, 'sogni_llm_prompt_tokens_total')],
    ['SSE subscribers', sum(samples, 'sogni_sse_subscribers')],
  ];
  clear(box,
    h('dl', { class: 'tiles' }, tiles.map(([name, value]) => h('div', { class: 'tile' }, h('dt', {}, name), h('dd', {}, format(value))))),
    h('h3', {}, 'Records by status'),
    records.size
      ? h('table', { class: 'compact' },
        h('caption', { class: 'visually-hidden' }, 'Records by status'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Kind'),
          [...statuses].map((status) => h('th', { scope: 'col' }, status.replaceAll('_', ' '))))),
        h('tbody', {}, [...records].map(([kind, counts]) => h('tr', {},
          h('th', { scope: 'row' }, kind.replaceAll('_', ' ')),
          [...statuses].map((status) => h('td', {}, format(counts.get(status) || 0)))))))
      : h('p', { class: 'muted' }, 'No records yet.'));
}

function limitsText(limits) {
  const parts = LIMITS.filter(([name]) => limits?.[name] !== null && limits?.[name] !== undefined)
    .map(([name, label]) => `${label.toLowerCase()}: ${limits[name]}`);
  return parts.join(', ') || 'defaults';
}

function usageText(usage) {
  if (!usage) return '';
  return [`${usage.requestsThisMinute ?? 0} req/min`, `${usage.tokensThisMinute ?? 0} tokens/min`,
    `${usage.capacityUnitsToday ?? 0} units today`].join(', ');
}

function createForm(refresh, secretBox) {
  const name = h('input', { type: 'text', required: true, maxlength: 200 });
  const role = select([['user', 'User'], ['admin', 'Admin']], 'user');
  const limitInputs = LIMITS.map(([key, label]) => [key, label, h('input', { type: 'number', min: 0, step: 'any', placeholder: 'default' })]);
  const errors = h('div', {});
  const form = h('form', { class: 'card', 'aria-label': 'Create a key' },
    h('h3', {}, 'Create a key'),
    h('div', { class: 'row' }, field('Key name', name), field('Role', role)),
    h('div', { class: 'row' }, limitInputs.map(([, label, input]) => field(label, input))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create key')),
    errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    const limits = {};
    for (const [key, , input] of limitInputs) if (input.value !== '') limits[key] = Number(input.value);
    try {
      const answer = await api('/v1/keys', {
        method: 'POST',
        body: { name: name.value, role: role.value, limits: Object.keys(limits).length ? limits : undefined },
      });
      const secret = h('input', { type: 'text', readonly: true, value: answer.data.key, class: 'code', 'aria-label': 'New key secret' });
      clear(secretBox, h('div', { class: 'notice', role: 'alert' },
        h('p', {}, h('strong', {}, `Key “${answer.data.info?.name ?? name.value}” created.`), ' Copy it now: it is shown only once.'),
        h('div', { class: 'row' }, secret,
          h('button', { type: 'button', onclick: () => { secret.select(); navigator.clipboard?.writeText(secret.value).catch(() => {}); } }, 'Copy'),
          h('button', { type: 'button', class: 'quiet', onclick: () => clear(secretBox) }, 'Done'))));
      form.reset();
      refresh();
    } catch (error) {
      errors.append(errorBox(error));
    }
  });
  return form;
}

export function adminView(root) {
  const metrics = h('div', { 'aria-label': 'Metrics' }, h('p', { class: 'muted' }, 'Loading…'));
  const keys = h('div', {});
  const secretBox = h('div', {});
  const errors = h('div', {});

  async function refreshKeys() {
    try {
      const list = (await api('/v1/keys')).data.keys;
      clear(keys, h('table', {},
        h('caption', { class: 'visually-hidden' }, 'API keys'),
        h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Role', 'Limits', 'Used', 'Created', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((key) => h('tr', { class: key.revokedAt ? 'revoked' : '' },
          h('td', {}, key.name || key.id), h('td', {}, h('code', {}, key.prefix || '')), h('td', {}, key.role || 'user'),
          h('td', {}, limitsText(key.limits)), h('td', {}, usageText(key.usage)), h('td', {}, when(key.createdAt)),
          h('td', {}, key.revokedAt ? `revoked ${when(key.revokedAt)}` : 'active'),
          h('td', {}, key.revokedAt ? null : revokeButton(key)))))));
    } catch (error) {
      clear(keys, errorBox(error));
    }
  }

  function revokeButton(key) {
    // Two steps instead of a native dialog: "Revoke" arms, "Confirm revoke" acts.
    const button = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${key.name || key.id}` }, 'Revoke');
    button.addEventListener('click', async () => {
      if (button.dataset.armed !== 'yes') {
        button.dataset.armed = 'yes';
        button.textContent = 'Confirm revoke';
        button.setAttribute('aria-label', `Confirm revoke ${key.name || key.id}`);
        return;
      }
      button.disabled = true;
      try {
        await api(`/v1/keys/${enc(key.id)}`, { method: 'DELETE' });
        await refreshKeys();
      } catch (error) {
        errors.append(errorBox(error));
        button.disabled = false;
      }
    });
    return button;
  }

  const refreshMetrics = () => loadMetrics(metrics).catch((error) => clear(metrics, errorBox(error)));
  clear(root, h('section', {}, h('h1', {}, 'Admin'),
    h('h2', {}, 'Metrics'), metrics,
    h('div', { class: 'actions' }, actionButton('Refresh metrics', refreshMetrics, (e) => errors.append(errorBox(e)), { class: 'quiet' })),
    h('h2', {}, 'API keys'), errors, secretBox, keys, createForm(refreshKeys, secretBox)));
  refreshMetrics();
  refreshKeys();
}
