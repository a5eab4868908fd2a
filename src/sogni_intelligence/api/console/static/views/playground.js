// Chat playground: streaming `POST /v1/chat/completions`, optional hosted tools, media upload.
import { api, authHeaders, enc, errorOf } from '../api.js';
import { clear, errorBox, field, h, select } from '../dom.js';
import { gallery } from '../media.js';
import { sseFrames } from '../sse.js';
import { TOOL_SURFACES } from './runs.js';

/** Upload files with `POST /v1/media`; their `media_references`. */
async function upload(files) {
  const references = [];
  for (const file of files) {
    const form = new FormData();
    form.append('file', file);
    const asset = (await api('/v1/media', { method: 'POST', body: form })).data.asset;
    references.push({ kind: asset.type, url: asset.url, filename: file.name });
  }
  return references;
}

/** Stream one completion into `bubble`; the assistant's text and the final chunk's extras. */
async function streamCompletion(body, bubble, progress) {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!response.ok) throw await errorOf(response);
  let text = '';
  let extras = {};
  const onComment = (comment) => {
    if (comment.startsWith('tool ')) progress.append(h('li', {}, comment.slice(5)));
  };
  for await (const frame of sseFrames(response.body, onComment)) {
    if (frame.data === '[DONE]') break;
    const chunk = JSON.parse(frame.data);
    if (chunk.error) throw new Error(chunk.error.message || 'The stream failed');
    const delta = chunk.choices?.[0]?.delta;
    if (delta?.content) {
      text += delta.content;
      bubble.textContent = text;
    }
    if (chunk.sogni_tool_results || chunk.creative_workflows) extras = chunk;
  }
  return { text, extras };
}

function toolMedia(extras) {
  const assets = [];
  for (const result of extras.sogni_tool_results || []) {
    for (const asset of result.output_assets || []) {
      assets.push({ ...asset, id: asset.asset_id, toolName: result.toolName });
    }
  }
  return assets;
}

export function playgroundView(root) {
  const history = [];
  const log = h('ol', { class: 'chat-log', 'aria-label': 'Conversation', 'aria-live': 'polite' });
  const model = select([['', 'Default model']], '');
  const tools = select(TOOL_SURFACES, 'none');
  const files = h('input', { type: 'file', multiple: true, accept: 'image/*,video/*,audio/*' });
  const required = h('input', { type: 'text', list: 'tool-names', spellcheck: 'false', placeholder: 'any' });
  const toolNames = h('datalist', { id: 'tool-names' },
    ['generate_image', 'edit_image', 'upscale_image', 'analyze_image', 'extract_metadata', 'generate_video',
      'animate_photo', 'generate_music', 'generate_speech'].map((name) => h('option', { value: name })));
  const maxTokens = h('input', { type: 'number', min: 1, step: 1, placeholder: 'model default' });
  const message = h('textarea', { rows: 3, required: true });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const errors = h('div', {});
  const form = h('form', { class: 'card chat-form', 'aria-label': 'Chat' },
    h('div', { class: 'row' }, field('Model', model), field('Hosted tools', tools),
      field('Call this tool first', required, 'Optional: the first round must call it.'), toolNames,
      field('Max tokens', maxTokens)),
    field('Attach media', files),
    field('Message', message),
    h('div', { class: 'actions' }, send,
      h('button', { type: 'button', class: 'quiet', onclick: () => { history.length = 0; clear(log); } }, 'Clear conversation')),
    errors);
  clear(root, h('section', {}, h('h1', {}, 'Chat playground'), log, form));

  api('/v1/models').then((answer) => {
    for (const m of answer.data || []) model.append(h('option', { value: m.id }, m.id));
  }).catch((error) => errors.append(errorBox(error)));

  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(errors);
    const text = message.value.trim();
    if (!text) return;
    send.disabled = true;
    const bubble = h('div', { class: 'bubble' });
    const progress = h('ul', { class: 'tool-progress', 'aria-label': 'Tool progress' });
    const media = h('div', {});
    const links = h('p', {});
    const answer = h('li', { class: 'msg assistant', 'aria-busy': 'true' }, h('span', { class: 'who' }, 'Assistant'), bubble, progress, media, links);
    try {
      const references = await upload([...files.files]);
      log.append(h('li', { class: 'msg user' }, h('span', { class: 'who' }, 'You'), h('div', { class: 'bubble' }, text),
        references.length ? [h('p', { class: 'muted' }, `with ${references.map((r) => r.filename).join(', ')}`),
          gallery(references.map((r) => ({ ...r, toolName: r.filename })))] : null));
      log.append(answer);
      history.push({ role: 'user', content: text });
      message.value = '';
      files.value = '';
      const body = {
        messages: history,
        sogni_tools: tools.value === 'none' ? false : tools.value,
        model: model.value || undefined,
        max_tokens: maxTokens.value ? Number(maxTokens.value) : undefined,
        media_references: references.length ? references : undefined,
      };
      const forced = required.value.trim();
      if (forced && tools.value !== 'none') body.tool_choice = { type: 'function', function: { name: forced } };
      const { text: reply, extras } = await streamCompletion(body, bubble, progress);
      history.push({ role: 'assistant', content: reply });
      if (!reply) bubble.textContent = '(no text)';
      const assets = toolMedia(extras);
      if (assets.length) media.append(gallery(assets));
      for (const workflow of extras.creative_workflows || []) {
        links.append(h('a', { href: `#/workflows/${enc(workflow.workflowId)}` }, `Workflow ${workflow.workflowId}`), ' ');
      }
    } catch (error) {
      errors.append(errorBox(error));
      answer.remove();
      if (history.at(-1)?.role === 'user') history.pop();
    } finally {
      answer.setAttribute('aria-busy', 'false');
      answer.classList.add('done');
      send.disabled = false;
    }
  });
}
