// Small DOM helpers: element building without innerHTML (no markup from data is ever parsed), messages in
// live regions, and a confirmation dialog.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An error box (role=alert: read out at once) with the FC code, message and request id. */
export function errorBox(err) {
  const text = typeof err?.describe === 'function' ? err.describe() : String(err?.message || err);
  return h('div', { class: 'error', role: 'alert' }, text);
}

/** Shows `err` in `where`, replacing its content. */
export function showError(where, err) {
  clear(where, errorBox(err));
}

/** A polite status line for outcomes that are not errors. */
export function notice(text) {
  const el = document.getElementById('status');
  if (el) { el.textContent = ''; setTimeout(() => { el.textContent = text; }, 30); }
}

/** Asks before something that cannot be undone; resolves true on confirmation. */
export function confirmAction(message, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-text' },
      h('p', { id: 'confirm-text' }, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'confirm-cancel', onclick: () => dlg.close('cancel') }, 'Cancel'),
        h('button', { type: 'button', id: 'confirm-ok', class: 'danger', onclick: () => dlg.close('ok') }, confirmLabel)));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue === 'ok'); });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('#confirm-cancel').focus();
  });
}

/** A labelled form field: the label names the control for assistive technology. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function table(caption, headers, rows, empty = 'None yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function time(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString();
}

/** Runs `fn` while the button shows it is busy; errors land in `errWhere`. */
export async function busy(button, errWhere, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try { return await fn(); } catch (e) { if (errWhere) showError(errWhere, e); else throw e; } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
