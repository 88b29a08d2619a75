"""The thumbnail grid: a ReactiveHTML component that renders cards and reports clicks and keys.

Python sets `content` ({cards, mode, round, page, pages}) and `images` ({id: PNG data URL},
only when the cards shown change, so that a label does not resend the thumbnails); the browser
sets `action` ({kind: "label" | "similar", id, value, nonce}) on a click or a key.

DOM (for tests and styling): `div.lvm-grid[data-mode][data-round][data-page]` holds one
`div.lvm-card[data-id][data-index][data-label][data-route]` per object (`data-label` comes from
the server, set only after the label store committed it; a click marks the card `data-saving`
until then), with an `img.lvm-thumb`,
buttons `.lvm-yes`, `.lvm-no`, `.lvm-unsure`, `.lvm-similar`, a link `a.lvm-viewer` and the
catalogue values in `.lvm-values`. The focused card has class `lvm-focus`.

Keys (ignored while typing in a text field): 1 yes, 0 no, u unsure (each moves focus to the
next card), space skips to the next card, arrows move the focus.
"""

from __future__ import annotations

import param
from panel.reactive import ReactiveHTML

_CSS = """
.lvm-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: 8px; outline: none; }
.lvm-card { border: 3px solid #ddd; border-radius: 6px; padding: 4px; font: 11px sans-serif;
  background: #fff; }
.lvm-card.lvm-focus { border-color: #222; }
.lvm-card[data-label="1"] { background: #d8f5d8; }
.lvm-card[data-label="0"] { background: #f5d8d8; }
.lvm-card[data-label="unsure"] { background: #f5f0c8; }
.lvm-card[data-saving] { border-style: dashed; }
.lvm-thumb { width: 100%; image-rendering: pixelated; cursor: pointer; display: block; }
.lvm-buttons { display: flex; gap: 2px; margin: 3px 0; }
.lvm-buttons button { flex: 1; font-size: 11px; padding: 2px; cursor: pointer; }
.lvm-id { font-weight: bold; overflow-wrap: anywhere; }
.lvm-values { color: #444; overflow-wrap: anywhere; }
"""

_RENDER = """
state.focus = 0;
state.nonce = 0;
state.send = (kind, id, value) => {
  state.nonce += 1;
  data.action = {kind: kind, id: id, value: value, nonce: state.nonce};
};
state.cards = () => Array.from(grid.querySelectorAll('.lvm-card'));
state.move = (i) => {
  const n = state.cards().length;
  state.focus = Math.max(0, Math.min(n - 1, i));
  self.paint();
};
state.columns = () => {
  const cards = state.cards();
  if (!cards.length) return 1;
  const top = cards[0].offsetTop;
  return Math.max(1, cards.filter(c => c.offsetTop === top).length);
};
state.onkey = (ev) => {
  const target = ev.composedPath ? ev.composedPath()[0] : ev.target;
  const tag = target && target.tagName ? target.tagName.toUpperCase() : '';
  const typing = ['INPUT', 'TEXTAREA', 'SELECT'].includes(tag);
  if (typing || (target && target.isContentEditable)) return;
  const cards = state.cards();
  if (!cards.length) return;
  const card = cards[Math.min(state.focus, cards.length - 1)];
  const labels = {'1': '1', '0': '0', 'u': 'unsure', 'U': 'unsure'};
  if (ev.key in labels) {
    state.send('label', card.dataset.id, labels[ev.key]);
    card.dataset.saving = labels[ev.key];  // coloured by data-label once the store confirms
    state.move(state.focus + 1);
  } else if (ev.key === ' ' || ev.key === 'ArrowRight') {
    state.move(state.focus + 1);
  } else if (ev.key === 'ArrowLeft') {
    state.move(state.focus - 1);
  } else if (ev.key === 'ArrowDown') {
    state.move(state.focus + state.columns());
  } else if (ev.key === 'ArrowUp') {
    state.move(state.focus - state.columns());
  } else {
    return;
  }
  ev.preventDefault();
};
document.addEventListener('keydown', state.onkey);
self.build();
"""

_BUILD = """
const content = data.content || {};
const cards = content.cards || [];
grid.dataset.mode = content.mode || '';
grid.dataset.round = String(content.round || '');
grid.dataset.page = String(content.page || 0);
grid.dataset.pages = String(content.pages || 1);
grid.dataset.ids = cards.map(c => c.id).join(',');
while (grid.firstChild) grid.removeChild(grid.firstChild);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
cards.forEach((c, i) => {
  const card = el('div', 'lvm-card');
  card.dataset.id = c.id;
  card.dataset.index = String(i);
  card.dataset.label = c.label || '';
  card.dataset.route = c.route || '';
  const img = el('img', 'lvm-thumb');
  img.src = (data.images || {})[c.id] || '';
  img.alt = c.id;
  img.addEventListener('click', () => state.move(i));
  card.appendChild(img);
  const buttons = el('div', 'lvm-buttons');
  [['lvm-yes', 'yes', '1'], ['lvm-no', 'no', '0'], ['lvm-unsure', '?', 'unsure']].forEach(b => {
    const btn = el('button', b[0], b[1]);
    btn.title = b[2] === '1' ? 'yes (1)' : (b[2] === '0' ? 'no (0)' : 'unsure (u)');
    btn.addEventListener('click', () => {
      state.send('label', c.id, b[2]);
      card.dataset.saving = b[2];  // coloured by data-label once the store confirms
      state.move(i);
    });
    buttons.appendChild(btn);
  });
  const similar = el('button', 'lvm-similar', '\u2248');
  similar.title = 'more like this';
  similar.addEventListener('click', () => state.send('similar', c.id, ''));
  buttons.appendChild(similar);
  card.appendChild(buttons);
  card.appendChild(el('div', 'lvm-id', c.id));
  const parts = [];
  if (c.score !== null && c.score !== undefined) parts.push('score ' + c.score);
  if (c.route) parts.push(c.route);
  Object.entries(c.values || {}).forEach(([k, v]) => { if (v !== null) parts.push(k + ' ' + v); });
  if (c.duplicates && c.duplicates.length) parts.push('+' + c.duplicates.length + ' duplicate(s)');
  card.appendChild(el('div', 'lvm-values', parts.join(' \u00b7 ')));
  if (c.url) {
    const a = el('a', 'lvm-viewer', 'Legacy Survey viewer');
    a.href = c.url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    card.appendChild(a);
  }
  grid.appendChild(card);
});
state.focus = Math.min(state.focus, Math.max(0, cards.length - 1));
self.paint();
"""

_PAINT = """
state.cards().forEach((c, i) => c.classList.toggle('lvm-focus', i === state.focus));
"""


class ThumbnailGrid(ReactiveHTML):
  """Cards of the visible objects; see the module docstring for the DOM and the keys."""

  content = param.Dict(default={}, doc="{cards, mode, round, page, pages} set by Python")
  images = param.Dict(default={}, doc="{id: PNG data URL}, sent only when the page changes")
  action = param.Dict(default={}, doc="the browser's latest click or key: {kind, id, value, nonce}")

  _template = '<div id="grid" class="lvm-grid" tabindex="0"></div>'
  _scripts = {"render": _RENDER, "content": "self.build()",
              "images": "self.build()", "build": _BUILD, "paint": _PAINT,
              "remove": "document.removeEventListener('keydown', state.onkey);"}
  _stylesheets = [_CSS]
