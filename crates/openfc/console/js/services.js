// Services (paged, searched by prefix) and one service: its functions, versions, aliases with their weights,
// its functions' triggers and the custom domains routing to it.

import { fc, q, enc } from './api.js';
import { h, clear, field, table, link, showError, confirmAction, busy, notice, time } from './ui.js';

const PAGE = 20;

export async function servicesView(main, params) {
  const prefix = params.get('prefix') || '';
  const token = params.get('token') || '';
  const search = h('input', { id: 'svc-prefix', type: 'search', value: prefix, placeholder: 'name prefix' });
  const searchForm = h('form', { role: 'search', class: 'inline', 'aria-label': 'Search services' },
    field('Services starting with', search), h('button', { type: 'submit' }, 'Search'));
  searchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/${q({ prefix: search.value.trim() })}`;
  });
  const list = h('div', { id: 'services-list', 'aria-live': 'polite' }, h('p', {}, 'Loading…'));
  clear(main, h('h1', {}, 'Services'), searchForm, list, createServiceForm());
  try {
    const page = await fc('GET', `/services${q({ limit: PAGE, prefix, nextToken: token })}`);
    const rows = (page.services || []).map((s) => [
      link(`#/s/${enc(s.serviceName)}`, s.serviceName), s.description || '', time(Date.parse(s.lastModifiedTime)),
    ]);
    const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of services' },
      token ? link(`#/${q({ prefix })}`, 'First page') : null,
      page.nextToken ? link(`#/${q({ prefix, token: page.nextToken })}`, 'Next page', { id: 'next-page' }) : null);
    clear(list, table('Services', ['Name', 'Description', 'Last modified'], rows,
      prefix ? `No service starts with “${prefix}”.` : 'No services yet: create one below.'), pager);
  } catch (e) {
    showError(list, e);
  }
}

function createServiceForm() {
  const name = h('input', { id: 'new-svc-name', required: true, pattern: '[A-Za-z_][A-Za-z0-9_-]{0,127}' });
  const desc = h('input', { id: 'new-svc-desc' });
  const err = h('div');
  const button = h('button', { type: 'submit', id: 'create-service' }, 'Create service');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-svc-title' },
    h('h2', { id: 'new-svc-title' }, 'New service'), field('Name', name), field('Description', desc), err, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      await fc('POST', '/services', { body: { serviceName: name.value.trim(), description: desc.value } });
      notice(`Service ${name.value} created`);
      location.hash = `#/s/${enc(name.value.trim())}`;
    });
  });
  return form;
}

function section(id, title, ...body) {
  return h('section', { 'aria-labelledby': `${id}-title`, id }, h('h2', { id: `${id}-title` }, title), ...body);
}

async function fill(where, load) {
  try { clear(where, await load()); } catch (e) { showError(where, e); }
}

export async function serviceView(main, svc, params) {
  const base = `/services/${enc(svc)}`;
  const info = h('div', {}, 'Loading…');
  const fns = h('div', {}, 'Loading…');
  const versions = h('div');
  const aliases = h('div');
  const triggers = h('div');
  const domains = h('div');
  const err = h('div');
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-service' }, 'Delete service');
  del.addEventListener('click', async () => {
    if (!(await confirmAction(`Delete service ${svc}? It must have no functions, versions or aliases left.`))) return;
    busy(del, err, async () => {
      await fc('DELETE', base);
      notice(`Service ${svc} deleted`);
      location.hash = '#/';
    });
  });
  const publish = h('button', { type: 'button', id: 'publish-version' }, 'Publish a version');
  publish.addEventListener('click', () => busy(publish, versions, async () => {
    await fc('POST', `${base}/versions`, { body: { description: '' } });
    notice('Version published');
    await fill(versions, () => versionsTable(base));
  }));
  const prefix = params.get('prefix') || '';
  clear(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('#/', 'Services'), ' / ', svc),
    h('h1', {}, svc), info,
    section('functions', 'Functions', h('p', {}, link(`#/s/${enc(svc)}/new`, 'New function', { class: 'button', id: 'new-function' })), fns),
    section('versions', 'Versions', publish, versions),
    section('aliases', 'Aliases', aliases),
    section('triggers', 'Triggers', triggers),
    section('domains', 'Custom domains', domains),
    h('div', { class: 'danger-zone' }, err, del));
  fill(info, async () => {
    const s = await fc('GET', base);
    return h('dl', { class: 'facts' },
      h('dt', {}, 'Description'), h('dd', {}, s.description || '—'),
      h('dt', {}, 'Internet access'), h('dd', {}, s.internetAccess === false ? 'no' : 'yes'),
      h('dt', {}, 'Last modified'), h('dd', {}, time(Date.parse(s.lastModifiedTime))));
  });
  let names = [];
  await fill(fns, async () => {
    const page = await fc('GET', `${base}/functions${q({ limit: 100, prefix })}`);
    names = (page.functions || []).map((f) => f.functionName);
    return table('Functions', ['Name', 'Runtime', 'Handler', 'Memory', 'Last modified'],
      (page.functions || []).map((f) => [
        link(`#/s/${enc(svc)}/f/${enc(f.functionName)}`, f.functionName), f.runtime, f.handler || '',
        `${f.memorySize} MB`, time(Date.parse(f.lastModifiedTime)),
      ]), 'No functions yet.');
  });
  fill(versions, () => versionsTable(base));
  fill(aliases, async () => {
    const list = await fc('GET', `${base}/aliases${q({ limit: 100 })}`);
    return table('Aliases', ['Alias', 'Version', 'Other versions (weight)', 'Description'],
      (list.aliases || []).map((a) => [a.aliasName, a.versionId,
        Object.entries(a.additionalVersionWeight || {}).map(([v, w]) => `${v}: ${Math.round(w * 100)}%`).join(', ') || '—',
        a.description || '']), 'No aliases.');
  });
  fill(triggers, async () => {
    const lists = await Promise.all(names.map(async (fn) => {
      const t = await fc('GET', `${base}/functions/${enc(fn)}/triggers${q({ limit: 100 })}`);
      return (t.triggers || []).map((x) => [fn, x.triggerName, x.triggerType, x.qualifier || 'LATEST']);
    }));
    return table('Triggers', ['Function', 'Trigger', 'Type', 'Qualifier'], lists.flat(), 'No triggers.');
  });
  fill(domains, async () => {
    const list = await fc('GET', `/custom-domains${q({ limit: 100 })}`);
    const rows = [];
    for (const d of list.customDomains || []) {
      for (const r of d.routeConfig?.routes || []) {
        if (r.serviceName === svc) rows.push([d.domainName, d.protocol, r.path, r.functionName, r.qualifier || 'LATEST']);
      }
    }
    return table('Custom domains', ['Domain', 'Protocol', 'Path', 'Function', 'Qualifier'], rows, 'No custom domain routes here.');
  });
}

async function versionsTable(base) {
  const list = await fc('GET', `${base}/versions${q({ limit: 100 })}`);
  return table('Versions', ['Version', 'Description', 'Created'],
    (list.versions || []).map((v) => [v.versionId, v.description || '', time(Date.parse(v.createdTime))]), 'No versions published.');
}
