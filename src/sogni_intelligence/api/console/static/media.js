// Inline previews of artifacts. Their URLs are signed, so the browser loads them with no key.
import { h } from './dom.js';

const EXTENSIONS = { png: 'image', jpg: 'image', jpeg: 'image', webp: 'image', gif: 'image',
  mp4: 'video', mov: 'video', webm: 'video', wav: 'audio', mp3: 'audio', flac: 'audio', ogg: 'audio' };

/** image | video | audio | model | other, from whatever the artifact says about itself. */
export function mediaKind(artifact) {
  const mime = artifact.mimeType || artifact.mime_type || '';
  const stated = artifact.kind || artifact.mediaType || artifact.type || mime.split('/')[0];
  if (['image', 'video', 'audio', 'model'].includes(stated)) return stated;
  const ext = (artifact.url || '').split('?')[0].split('.').pop().toLowerCase();
  return EXTENSIONS[ext] || 'other';
}

export function preview(artifact, caption) {
  const kind = mediaKind(artifact);
  const label = caption || artifact.stepId || artifact.toolName || artifact.id || kind;
  let body;
  if (kind === 'image') {
    body = h('img', { src: artifact.url, alt: `${label} (image)`, loading: 'lazy', decoding: 'async' });
  } else if (kind === 'video') {
    body = h('video', { src: artifact.url, controls: true, preload: 'metadata', 'aria-label': `${label} (video)` });
  } else if (kind === 'audio') {
    body = h('audio', { src: artifact.url, controls: true, preload: 'metadata', 'aria-label': `${label} (audio)` });
  } else {
    body = h('p', {}, `A ${kind} file.`);
  }
  const size = artifact.width && artifact.height ? ` · ${artifact.width}×${artifact.height}` : '';
  return h('figure', { class: `artifact k-${kind}` }, body,
    h('figcaption', {}, `${label}${size} · `,
      h('a', { href: artifact.url, target: '_blank', rel: 'noopener' }, 'open')));
}

export function gallery(artifacts, emptyText = 'No artifacts yet.') {
  // Pictures first, then video, then audio (which takes a whole row).
  const order = { image: 0, video: 1, model: 2, other: 3, audio: 4 };
  const items = artifacts.filter((a) => a && a.url)
    .map((a, i) => [order[mediaKind(a)] ?? 3, i, a]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, , a]) => a);
  return items.length
    ? h('div', { class: 'gallery' }, items.map((a) => preview(a)))
    : h('p', { class: 'muted' }, emptyText);
}
