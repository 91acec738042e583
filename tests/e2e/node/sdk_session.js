// Drives openfc with the official Node.js SDK (@alicloud/fc2) the way a user's script would, and prints one
// JSON object per step on stdout; tests/e2e/test_node_sdk.py checks them. Settings come from the environment:
// OPENFC_ENDPOINT, OPENFC_ACCOUNT_ID, OPENFC_AK, OPENFC_SK, OPENFC_SERVICE, OPENFC_ZIP (a code package file).
'use strict';

const fs = require('fs');
const http = require('http');
const FC = require('@alicloud/fc2');

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};

const client = new FC(env('OPENFC_ACCOUNT_ID'), {
  accessKeyID: env('OPENFC_AK'),
  accessKeySecret: env('OPENFC_SK'),
  endpoint: env('OPENFC_ENDPOINT'),
  region: 'cn-hangzhou',
  timeout: 30000,
});

const out = (step, data) => console.log(JSON.stringify({ step, ...data }));

function download(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers }));
    }).on('error', reject);
  });
}

async function expectError(step, fn) {
  try {
    await fn();
    out(step, { error: null });
  } catch (e) {
    // The SDK gives the code as `code`, and the status and request id only inside the message.
    const m = /failed with (\d+)\. requestid: ([^,\s]+),/.exec(e.message || '');
    out(step, { error: e.code || null, status: m ? Number(m[1]) : null, requestId: m ? m[2] : null, message: e.message });
  }
}

(async () => {
  const svc = env('OPENFC_SERVICE');
  const zip = fs.readFileSync(env('OPENFC_ZIP'));

  const s = await client.createService(svc, { description: 'from the Node.js SDK', internetAccess: false });
  out('createService', { name: s.data.serviceName, status: s.headers['x-fc-request-id'] ? 'has request id' : 'no request id' });

  const f = await client.createFunction(svc, {
    functionName: 'echo', handler: 'index.handler', runtime: 'nodejs18', memorySize: 128, timeout: 10,
    code: { zipFile: zip.toString('base64') },
  });
  out('createFunction', { name: f.data.functionName, checksum: f.data.codeChecksum, size: f.data.codeSize });

  const g = await client.getFunction(svc, 'echo');
  out('getFunction', { runtime: g.data.runtime, etag: g.headers.etag || null });

  const code = await client.getFunctionCode(svc, 'echo');
  const dl = await download(code.data.url);
  out('getFunctionCode', {
    checksum: code.data.checksum, status: dl.status, same: Buffer.compare(dl.body, zip) === 0,
    crc: dl.headers['x-oss-hash-crc64ecma'] || null,
  });

  const inv = await client.invokeFunction(svc, 'echo', 'hello from node', { 'X-Fc-Log-Type': 'Tail' });
  out('invokeFunction', {
    body: String(inv.data), requestId: inv.headers['x-fc-request-id'] || null,
    log: Buffer.from(inv.headers['x-fc-log-result'] || '', 'base64').toString(),
    errorType: inv.headers['x-fc-error-type'] || null,
  });

  const v = await client.publishVersion(svc, 'v1');
  await client.createAlias(svc, 'live', String(v.data.versionId));
  await client.updateFunction(svc, 'echo', { description: 'changed after v1' });
  const viaAlias = await client.invokeFunction(svc, 'echo', 'via alias', {}, 'live');
  out('aliasInvoke', { versionId: String(v.data.versionId), version: viaAlias.headers['x-fc-invocation-service-version'] || null, body: String(viaAlias.data) });

  for (const name of ['second', 'third']) {
    await client.createFunction(svc, { functionName: name, handler: 'index.handler', runtime: 'nodejs18', code: { zipFile: zip.toString('base64') } });
  }
  const pages = [];
  let nextToken;
  do {
    const page = await client.listFunctions(svc, nextToken ? { limit: 2, nextToken } : { limit: 2 });
    pages.push(page.data.functions.map((x) => x.functionName));
    nextToken = page.data.nextToken;
  } while (nextToken && pages.length < 10);
  out('listFunctions', { pages });

  await expectError('getMissingFunction', () => client.getFunction(svc, 'missing'));
  await expectError('deleteServiceInUse', () => client.deleteService(svc));

  const configs = await client.getAccountConfigs({});
  out('getAccountConfigs', { codeSizeLimit: configs.data.codeSizeLimit });
  await expectError('createWithoutCodeLimit', () => client.createFunction(svc, {
    functionName: 'big', handler: 'index.handler', runtime: 'nodejs18', code: { zipFile: env('OPENFC_ZIP') },
    withoutCodeLimit: true,
  }));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
