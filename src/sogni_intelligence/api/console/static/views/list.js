// A paged, filterable table of records.
import { actionButton, clear, errorBox, field, h, select } from '../dom.js';

export const STATUSES = [
  ['', 'Any status'], ['queued', 'Queued'], ['running', 'Running'],
  ['waiting_for_user', 'Waiting for user'], ['completed', 'Completed'],
  ['partial_failure', 'Partial failure'], ['failed', 'Failed'], ['cancelled', 'Cancelled'],
];

/**
 * `load({offset, limit, ...filters})` answers `{rows, next}`; `columns` are
 * `[heading, row => cell]`; `filters` are `[name, label, options]`.
 */
export function pagedList(container, { caption, columns, filters = [], load, limit = 20 }) {
  const values = Object.fromEntries(filters.map(([name, , options]) => [name, options[0][0]]));
  let offset = 0;
  const body = h('div', { class: 'list-body' });
  const controls = filters.map(([name, label, options]) => field(label, select(options, values[name], {
    onchange: (event) => { values[name] = event.target.value; offset = 0; refresh(); },
  })));
  const bar = h('div', { class: 'filters' }, controls,
    actionButton('Refresh', () => refresh(), (e) => clear(body, errorBox(e)), { class: 'quiet' }));
  container.append(bar, body);

  async function refresh() {
    let page;
    try {
      page = await load({ offset, limit, ...values });
    } catch (error) {
      clear(body, errorBox(error));
      return;
    }
    const table = page.rows.length
      ? h('table', {},
        h('caption', {}, caption),
        h('thead', {}, h('tr', {}, columns.map(([heading]) => h('th', { scope: 'col' }, heading)))),
        h('tbody', {}, page.rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row)))))))
      : h('p', { class: 'muted' }, `No ${caption.toLowerCase()} here.`);
    const pager = h('div', { class: 'pager' },
      h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - limit); refresh(); } }, 'Previous page'),
      h('span', { class: 'muted' }, page.rows.length ? `${offset + 1}–${offset + page.rows.length}` : ''),
      h('button', { type: 'button', disabled: page.next === null || page.next === undefined, onclick: () => { offset = page.next; refresh(); } }, 'Next page'));
    clear(body, table, pager);
  }
  refresh();
  return refresh;
}
