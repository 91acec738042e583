// A function's invoke panel (sync or async, with the result, duration, memory and log tail), its logs
// followed live, its stateful async invocations (stop, re-drive) and its instances, with a command runner
// into one (InstanceExec).

import { fc, q, enc, fromBase64 } from './api.js';
import { h, clear, field, table, showError, busy, notice, time } from './ui.js';

function fnPath(svc, fn) { return `/services/${enc(svc)}/functions/${enc(fn)}`; }

export function invokePanel(svc, fn) {
  const payload = h('textarea', { id: 'invoke-payload', rows: 4, spellcheck: 'false' }, '{}');
  const sync = h('input', { type: 'radio', name: 'invoke-type', id: 'invoke-sync', value: 'Sync', checked: true });
  const async = h('input', { type: 'radio', name: 'invoke-type', id: 'invoke-async', value: 'Async' });
  const out = h('div', { id: 'invoke-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', id: 'invoke' }, 'Invoke');
  const form = h('form', { 'aria-labelledby': 'invoke-title' },
    h('h2', { id: 'invoke-title' }, 'Invoke'), field('Payload', payload),
    h('fieldset', { class: 'inline' }, h('legend', {}, 'Invocation type'),
      h('label', {}, sync, ' Synchronous'), h('label', {}, async, ' Asynchronous')),
    button, out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, out, async () => {
      const type = async.checked ? 'Async' : 'Sync';
      const started = performance.now();
      const resp = await fc('POST', `${fnPath(svc, fn)}/invocations`, {
        raw: true, body: payload.value,
        headers: { 'X-Fc-Invocation-Type': type, 'X-Fc-Log-Type': type === 'Sync' ? 'Tail' : 'None', 'Content-Type': 'application/octet-stream' },
      });
      const text = await resp.text();
      const hd = (n) => resp.headers.get(n) || '';
      const errorType = hd('x-fc-error-type');
      const facts = h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { id: 'invoke-status' }, `${resp.status}${errorType ? ` (${errorType})` : ''}`),
        h('dt', {}, 'Request id'), h('dd', {}, hd('x-fc-request-id')),
        type === 'Sync' ? [
          h('dt', {}, 'Duration'), h('dd', { id: 'invoke-duration' }, `${hd('x-fc-invocation-duration') || '?'} ms (round trip ${Math.round(performance.now() - started)} ms)`),
          h('dt', {}, 'Max memory used'), h('dd', { id: 'invoke-memory' }, `${hd('x-fc-max-memory-usage') || '?'} MB`),
        ] : [h('dt', {}, 'Queued'), h('dd', {}, 'The invocation runs in the background: see the async invocations below.')]);
      const tail = fromBase64(hd('x-fc-log-result'));
      clear(out, facts,
        type === 'Sync' ? [h('h3', {}, 'Result'), h('pre', { id: 'invoke-body', class: errorType ? 'bad' : '' }, text || '(empty)')] : null,
        tail ? [h('h3', {}, 'Log tail'), h('pre', { id: 'invoke-log', class: 'log' }, tail)] : null);
    });
  });
  return h('section', {}, form);
}

export function logsPanel(svc, fn, cleanups) {
  const pre = h('pre', { id: 'logs', class: 'log', tabindex: 0, 'aria-label': 'Function logs', 'aria-live': 'off' }, '');
  const follow = h('input', { type: 'checkbox', id: 'logs-follow' });
  const err = h('div');
  let timer = null;
  const load = async () => {
    try {
      const r = await fc('GET', `${fnPath(svc, fn)}/logs${q({ limit: 200 })}`);
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = (r.lines || []).join('\n') || '(no output on this node yet)';
      if (atEnd || follow.checked) pre.scrollTop = pre.scrollHeight;
      clear(err);
    } catch (e) { showError(err, e); }
  };
  follow.addEventListener('change', () => {
    clearInterval(timer);
    timer = follow.checked ? setInterval(load, 2000) : null;
    if (follow.checked) load();
  });
  cleanups.push(() => clearInterval(timer));
  load();
  return h('section', { 'aria-labelledby': 'logs-title' }, h('h2', { id: 'logs-title' }, 'Logs'),
    h('p', { class: 'actions' }, h('label', {}, follow, ' Follow live'), h('button', { type: 'button', id: 'logs-refresh', onclick: load }, 'Refresh')),
    h('p', { class: 'note' }, 'What this function\'s instances wrote on this node, last 200 lines.'), err, pre);
}

const STOPPABLE = new Set(['Enqueued', 'Running', 'Retrying']);
const REDRIVABLE = new Set(['Failed', 'Stopped', 'Expired']);

export function asyncPanel(svc, fn) {
  const where = h('div', { id: 'async-list' });
  const base = `/services/${enc(svc)}.LATEST/functions/${enc(fn)}/stateful-async-invocations`;
  const load = async () => {
    try {
      const r = await fc('GET', `${base}${q({ limit: 50, sortOrderByTime: 'desc' })}`);
      const rows = (r.invocations || []).map((i) => {
        const act = h('span', { class: 'actions' });
        if (STOPPABLE.has(i.status)) {
          const b = h('button', { type: 'button', 'aria-label': `Stop invocation ${i.invocationId}` }, 'Stop');
          b.addEventListener('click', () => busy(b, where, async () => { await fc('PUT', `${base}/${enc(i.invocationId)}`); notice('Stopped'); await load(); }));
          act.append(b);
        }
        if (REDRIVABLE.has(i.status)) {
          const b = h('button', { type: 'button', 'aria-label': `Re-drive invocation ${i.invocationId}` }, 'Re-drive');
          b.addEventListener('click', () => busy(b, where, async () => { await fc('POST', `${base}/${enc(i.invocationId)}/redrive`); notice('Re-driven'); await load(); }));
          act.append(b);
        }
        return [h('code', {}, i.invocationId), i.status, String((i.alreadyRetriedTimes || 0) + (i.status === 'Enqueued' ? 0 : 1)),
          time(i.startedTime), i.durationMs ? `${i.durationMs} ms` : '', i.invocationErrorMessage || '', act];
      });
      clear(where, table('Async invocations', ['Id', 'Status', 'Attempts', 'Started', 'Duration', 'Error', ''], rows, 'No async invocations.'));
    } catch (e) { showError(where, e); }
  };
  load();
  return h('section', { 'aria-labelledby': 'async-title' }, h('h2', { id: 'async-title' }, 'Async invocations'),
    h('button', { type: 'button', id: 'async-refresh', onclick: load }, 'Refresh'), where);
}

const FRAME_STDIN = 0;
const STREAMS = { 1: 'stdout', 2: 'stderr', 3: 'error' };

/**
 * A command in one instance over InstanceExec's WebSocket (the API's route; the browser sends the session
 * cookie and its Origin, which the session check compares with ours). No terminal: the command runs under
 * `sh -c`, its output is shown as it comes, and a line can be written to its stdin.
 */
export function execPanel(svc, fn, instanceId) {
  const cmd = h('input', { id: 'exec-command', value: 'ls -la /code', spellcheck: 'false' });
  const out = h('pre', { id: 'exec-output', class: 'log', 'aria-live': 'polite' });
  const stdin = h('input', { id: 'exec-stdin', 'aria-label': 'Line to send to the command\'s standard input', disabled: true });
  const status = h('p', { id: 'exec-status', role: 'status', class: 'note' });
  const run = h('button', { type: 'submit', id: 'exec-run' }, 'Run');
  let ws = null;
  const form = h('form', { class: 'card', 'aria-label': `Run a command in instance ${instanceId}` },
    field(`Command in ${instanceId} (run by sh -c)`, cmd), run, status, out,
    h('div', { class: 'env-row' }, stdin, h('button', { type: 'button', id: 'exec-send', onclick: () => send() }, 'Send')));
  const send = () => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const bytes = new TextEncoder().encode(`${stdin.value}\n`);
    const frame = new Uint8Array(bytes.length + 1);
    frame[0] = FRAME_STDIN;
    frame.set(bytes, 1);
    ws.send(frame);
    stdin.value = '';
  };
  stdin.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); send(); } });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (ws) ws.close();
    out.textContent = '';
    const params = new URLSearchParams({ stdin: 'true', stdout: 'true', stderr: 'true', tty: 'false' });
    for (const a of ['sh', '-c', cmd.value]) params.append('command', a);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${scheme}://${location.host}/2021-04-06/services/${enc(svc)}.LATEST/functions/${enc(fn)}/instances/${enc(instanceId)}/exec?${params}`);
    ws.binaryType = 'arraybuffer';
    const decoder = new TextDecoder();
    status.textContent = 'Running…';
    ws.onopen = () => { stdin.disabled = false; };
    ws.onmessage = (m) => {
      const data = new Uint8Array(m.data);
      const text = decoder.decode(data.subarray(1));
      out.append(data[0] === 1 ? text : h('span', { class: STREAMS[data[0]] || 'stderr' }, text));
    };
    ws.onclose = (e) => {
      stdin.disabled = true;
      status.textContent = e.reason ? `Ended: ${e.reason}` : `Closed (code ${e.code}): the instance may be gone or on another node`;
    };
  });
  return form;
}

export function instancesPanel(svc, fn) {
  const where = h('div', { id: 'instances-list' });
  const shell = h('div', { id: 'exec' });
  const load = async () => {
    try {
      const r = await fc('GET', `/services/${enc(svc)}.LATEST/functions/${enc(fn)}/instances`);
      clear(where, table('Instances', ['Instance', 'Version', ''],
        (r.instances || []).map((i) => [h('code', {}, i.instanceId), i.versionId || 'LATEST',
          h('button', { type: 'button', class: 'exec-open', 'aria-label': `Run a command in instance ${i.instanceId}`,
            onclick: () => { clear(shell, execPanel(svc, fn, i.instanceId)); shell.querySelector('input').focus(); } }, 'Exec')]),
        'No instance is running (functions scale to zero when idle).'));
    } catch (e) { showError(where, e); }
  };
  load();
  return h('section', { 'aria-labelledby': 'inst-title' }, h('h2', { id: 'inst-title' }, 'Instances'),
    h('button', { type: 'button', id: 'instances-refresh', onclick: load }, 'Refresh'), where, shell);
}
