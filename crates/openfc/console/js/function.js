// One function: its settings, code (download with checksum, replace from a zip or a folder), environment
// variables and deletion; the create/edit form. Invoking, logs, async invocations, instances and its chart
// live in `invoke.js`.

import { fc, enc, base64 } from './api.js';
import { h, clear, field, link, confirmAction, busy, notice, time } from './ui.js';
import { zip, folderEntries } from './zip.js';
import { invokePanel, logsPanel, asyncPanel, instancesPanel } from './invoke.js';
import { functionChart } from './activity.js';

const RUNTIMES = ['python3.10', 'python3.9', 'python3', 'nodejs18', 'nodejs16', 'nodejs14', 'custom.debian10',
  'custom', 'go1', 'php7.2', 'java11', 'java8'];

function fnPath(svc, fn) { return `/services/${enc(svc)}/functions/${enc(fn)}`; }

function crumbs(svc, fn, last) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('#/', 'Services'), ' / ',
    link(`#/s/${enc(svc)}`, svc), ' / ', last ? link(`#/s/${enc(svc)}/f/${enc(fn)}`, fn) : fn, last ? ` / ${last}` : '');
}

export async function functionView(main, svc, fn, session) {
  const path = fnPath(svc, fn);
  const f = await fc('GET', path);
  const err = h('div');
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-function' }, 'Delete function');
  del.addEventListener('click', async () => {
    if (!(await confirmAction(`Delete function ${fn} of ${svc}? Its code and triggers go with it.`))) return;
    busy(del, err, async () => {
      await fc('DELETE', path);
      notice(`Function ${fn} deleted`);
      location.hash = `#/s/${enc(svc)}`;
    });
  });
  const cleanups = [];
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'Runtime'), h('dd', {}, f.runtime),
    h('dt', {}, 'Handler'), h('dd', {}, f.handler || '—'),
    h('dt', {}, 'Memory'), h('dd', {}, `${f.memorySize} MB`),
    h('dt', {}, 'Timeout'), h('dd', {}, `${f.timeout} s`),
    h('dt', {}, 'Code size'), h('dd', {}, `${f.codeSize} bytes`),
    h('dt', {}, 'Code checksum (CRC-64)'), h('dd', { id: 'code-checksum' }, f.codeChecksum || '—'),
    h('dt', {}, 'Last modified'), h('dd', {}, time(Date.parse(f.lastModifiedTime))));
  clear(main, crumbs(svc, fn), h('h1', {}, fn),
    h('section', { 'aria-labelledby': 'ov-title' }, h('h2', { id: 'ov-title' }, 'Overview'), facts,
      h('p', { class: 'actions' }, link(`#/s/${enc(svc)}/f/${enc(fn)}/edit`, 'Edit or upload code', { class: 'button', id: 'edit-function' }),
        downloadButton(path))),
    invokePanel(svc, fn),
    functionChart(svc, fn, cleanups),
    envPanel(path, f.environmentVariables || {}),
    logsPanel(svc, fn, cleanups),
    asyncPanel(svc, fn),
    instancesPanel(svc, fn, session),
    h('div', { class: 'danger-zone' }, err, del));
  return () => cleanups.forEach((c) => c());
}

function downloadButton(path) {
  const out = h('span', { id: 'download-out' });
  const b = h('button', { type: 'button', id: 'download-code' }, 'Download code');
  b.addEventListener('click', () => busy(b, out, async () => {
    const code = await fc('GET', `${path}/code`);
    clear(out, link(code.url, 'code.zip', { download: 'code.zip', id: 'download-link' }), ` (CRC-64 ${code.checksum}; the link expires)`);
    out.querySelector('a').focus();
  }));
  return h('span', {}, b, ' ', out);
}

function envPanel(path, vars) {
  const rows = h('div', { class: 'env-rows' });
  const addRow = (k = '', v = '') => {
    const key = h('input', { 'aria-label': 'Variable name', value: k, class: 'env-key' });
    const val = h('input', { 'aria-label': 'Variable value', value: v, class: 'env-value' });
    const rm = h('button', { type: 'button', 'aria-label': k ? `Remove variable ${k}` : 'Remove this variable', onclick: () => row.remove() }, '✕');
    const row = h('div', { class: 'env-row' }, key, val, rm);
    rows.append(row);
  };
  Object.entries(vars).forEach(([k, v]) => addRow(k, v));
  const err = h('div');
  const save = h('button', { type: 'submit', id: 'save-env' }, 'Save variables');
  const form = h('form', { 'aria-labelledby': 'env-title' }, h('h2', { id: 'env-title' }, 'Environment variables'), rows,
    h('p', { class: 'actions' }, h('button', { type: 'button', id: 'env-add', onclick: () => addRow() }, 'Add variable'), save), err);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, err, async () => {
      const env = {};
      for (const r of rows.querySelectorAll('.env-row')) {
        const k = r.querySelector('.env-key').value.trim();
        if (k) env[k] = r.querySelector('.env-value').value;
      }
      await fc('PUT', path, { body: { environmentVariables: env } });
      clear(err);
      notice('Environment variables saved');
    });
  });
  return h('section', {}, form);
}

/** The code to send: a zip file as is, or a folder zipped here. `null` when nothing was chosen. */
async function packageFrom(zipInput, dirInput) {
  if (zipInput.files.length) return new Uint8Array(await zipInput.files[0].arrayBuffer());
  if (dirInput.files.length) return zip(await folderEntries(Array.from(dirInput.files)));
  return null;
}

export async function functionForm(main, svc, fn) {
  const editing = fn !== null;
  const current = editing ? await fc('GET', fnPath(svc, fn)) : {};
  const name = h('input', { id: 'fn-name', required: true, value: fn || '', readonly: editing });
  const runtime = h('select', { id: 'fn-runtime' }, RUNTIMES.map((r) => h('option', { value: r, selected: r === (current.runtime || 'python3.10') }, r)));
  if (current.runtime && !RUNTIMES.includes(current.runtime)) runtime.prepend(h('option', { value: current.runtime, selected: true }, current.runtime));
  const handler = h('input', { id: 'fn-handler', value: current.handler || 'index.handler' });
  const memory = h('input', { id: 'fn-memory', type: 'number', min: 128, step: 64, value: current.memorySize || 128 });
  const timeout = h('input', { id: 'fn-timeout', type: 'number', min: 1, value: current.timeout || 3 });
  const desc = h('input', { id: 'fn-desc', value: current.description || '' });
  const zipInput = h('input', { id: 'fn-zip', type: 'file', accept: '.zip,application/zip' });
  const dirInput = h('input', { id: 'fn-dir', type: 'file', webkitdirectory: true, multiple: true });
  const err = h('div');
  const submit = h('button', { type: 'submit', id: 'save-function' }, editing ? 'Save' : 'Create function');
  const progress = h('p', { role: 'status', class: 'note' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'form-title' },
    h('h2', { id: 'form-title' }, editing ? 'Settings and code' : 'New function'),
    field('Name', name), field('Runtime', runtime), field('Handler', handler, 'e.g. index.handler'),
    field('Memory (MB)', memory), field('Timeout (s)', timeout), field('Description', desc),
    h('fieldset', {}, h('legend', {}, editing ? 'New code (leave empty to keep the current code)' : 'Code'),
      field('A zip file', zipInput), field('…or a folder (zipped in the browser)', dirInput)),
    progress, err, submit);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, err, async () => {
      progress.textContent = 'Packing…';
      const pkg = await packageFrom(zipInput, dirInput);
      if (!editing && !pkg) throw new Error('Choose a zip file or a folder with the function\'s code.');
      const body = {
        runtime: runtime.value, handler: handler.value.trim(), memorySize: Number(memory.value),
        timeout: Number(timeout.value), description: desc.value,
      };
      if (pkg) body.code = { zipFile: base64(pkg) };
      progress.textContent = pkg ? `Uploading ${pkg.length} bytes…` : 'Saving…';
      const fname = name.value.trim();
      if (editing) await fc('PUT', fnPath(svc, fname), { body });
      else await fc('POST', `/services/${enc(svc)}/functions`, { body: { functionName: fname, ...body } });
      progress.textContent = '';
      notice(editing ? 'Function saved' : 'Function created');
      location.hash = `#/s/${enc(svc)}/f/${enc(fname)}`;
    }).finally(() => { if (err.childElementCount) progress.textContent = ''; });
  });
  clear(main, crumbs(svc, fn || 'new function', editing ? 'edit' : null), h('h1', {}, editing ? `Edit ${fn}` : 'New function'), form);
  name.focus();
  return null;
}

