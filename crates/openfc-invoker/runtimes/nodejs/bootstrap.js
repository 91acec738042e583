'use strict';
/*
 * openfc built-in Node.js runtime (FC 2.0 compatible).
 *
 * Run as:  /usr/bin/node /var/fc/runtime/nodejs/bootstrap.js
 *
 * Speaks the custom-runtime HTTP contract (spec fc-api.md section 8.1), so the invoker treats Node.js functions
 * exactly like custom runtimes:
 *
 *   POST /invoke        event handler  handler(event: Buffer, context, callback) | async handler(event, context)
 *   POST /initialize    initializer    initializer(context, callback) | async initializer(context); once per process
 *   GET  /pre-stop      lifecycle hook named by x-fc-instance-lifecycle-pre-stop-handler
 *   GET  /pre-freeze    lifecycle hook named by x-fc-instance-lifecycle-pre-freeze-handler
 *   any  (x-fc-control-path: /http-invoke)   HTTP handler(request, response, context)
 *
 * The dispatch key is the x-fc-control-path header when present, else the request path.
 * Failures answer 404 with `x-fc-status: 404`, `x-fc-error-type: HandledInvocationError` (callback(err), rejected
 * promise) or `UnhandledInvocationError` (synchronous throw, uncaught exception, load failure) and a JSON body
 * {"errorMessage", "errorType", "stackTrace"} (just {"errorMessage"} for an error that is no Error object).
 *
 * No npm dependencies; syntax kept to what Node 12 accepts.
 */

const http = require('http');
const path = require('path');
const fs = require('fs');
const util = require('util');

const env = process.env;
const CODE_DIR = env.FC_FUNC_CODE_PATH || '/code';

// The modules FC's Node.js runtimes ship built in (`openfc runtimes install`; openfc's runtime::BUILTINS_MOUNT and
// BUILTINS_SET): last on NODE_PATH, so a function's own copy wins. A require of one that fails while the set is
// missing says how to install it.
const BUILTINS_DIR = '/var/fc/runtime/builtins/v1/nodejs/node_modules';
const BUILTIN_MODULES = new Set(['co', 'gm', 'ali-oss', 'aliyun-sdk', 'tablestore', '@alicloud/fc2', 'body', 'raw-body',
  'ali-mns', '@alicloud/pop-core', '@alicloud/fnf-2019-03-15']);

const ERROR_STATUS = 404;
const UNHANDLED = 'UnhandledInvocationError';
const HANDLED = 'HandledInvocationError';

const DROPPED_RESPONSE_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te',
  'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'content-length',
]);

// ------------------------------------------------------------------------------------------------------------
// request-scoped state (request id for the logger, owner of uncaught exceptions)
// ------------------------------------------------------------------------------------------------------------

let als = null;
try {
  const AsyncLocalStorage = require('async_hooks').AsyncLocalStorage;
  if (AsyncLocalStorage) als = new AsyncLocalStorage();
} catch (e) {
  als = null;
}
const inflight = new Set();

function currentScope() {
  if (als) {
    const s = als.getStore();
    if (s) return s;
  }
  if (inflight.size === 1) return inflight.values().next().value;
  return null;
}

function runScoped(scope, fn) {
  inflight.add(scope);
  if (als) return als.run(scope, fn);
  return fn();
}

// ------------------------------------------------------------------------------------------------------------
// stdout markers and logger
// ------------------------------------------------------------------------------------------------------------

function writeStdout(text) {
  try {
    process.stdout.write(text);
  } catch (e) {
    // stdout gone: nothing useful to do
  }
}

function marker(kind, phase, requestId) {
  writeStdout('FC ' + kind + ' ' + phase + ' RequestId: ' + requestId + '\n');
}

const LEVELS = { verbose: 0, silly: 0, debug: 1, info: 2, warn: 3, error: 4 };

function makeLogger(requestId) {
  let threshold = LEVELS[(env.FC_LOG_LEVEL || 'verbose').toLowerCase()] || 0;
  function emit(level, tag, args) {
    if (LEVELS[level] < threshold) return;
    const line = new Date().toISOString() + ' ' + requestId + ' [' + tag + '] ' + util.format.apply(util, args);
    writeStdout(line.replace(/\n?$/, '\n'));
  }
  return {
    log: function () { emit('verbose', 'VERBOSE', arguments); },
    verbose: function () { emit('verbose', 'VERBOSE', arguments); },
    debug: function () { emit('debug', 'DEBUG', arguments); },
    info: function () { emit('info', 'INFO', arguments); },
    warn: function () { emit('warn', 'WARN', arguments); },
    error: function () { emit('error', 'ERROR', arguments); },
    setLogLevel: function (level) {
      const v = LEVELS[String(level).toLowerCase()];
      if (v !== undefined) threshold = v;
    },
  };
}

function logError(requestId, err) {
  let text;
  if (err && err.fcSanitize) text = err.name + ': ' + err.message;
  else if (err && err.stack) text = String(err.stack);
  else {
    try { text = util.inspect(err); } catch (e) { text = String(err); }
  }
  writeStdout(new Date().toISOString() + ' ' + requestId + ' [ERROR] ' + text + '\n');
}

// ------------------------------------------------------------------------------------------------------------
// context
// ------------------------------------------------------------------------------------------------------------

function toInt(v, dflt) {
  const n = parseInt(v, 10);
  return isNaN(n) ? dflt : n;
}

function parseBaggages(v) {
  if (!v) return {};
  try {
    const parsed = JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch (e) {
    return {};
  }
}

function makeContext(headers, budgetHeader, budgetEnv) {
  function pick(header, envName, dflt) {
    const v = headers[header];
    if (v !== undefined && v !== '') return v;
    const e = envName ? env[envName] : undefined;
    if (e !== undefined && e !== '') return e;
    return dflt === undefined ? '' : dflt;
  }
  const requestId = headers['x-fc-request-id'] || '';
  const timeout = toInt(pick('x-fc-function-timeout', 'FC_FUNCTION_TIMEOUT', '3'), 3);
  const initTimeout = toInt(pick('x-fc-initialization-timeout', 'FC_INITIALIZATION_TIMEOUT', '3'), 3);
  const budget = budgetHeader ? toInt(pick(budgetHeader, budgetEnv, String(timeout)), timeout) : timeout;
  const deadline = Date.now() + budget * 1000;
  return {
    requestId: requestId,
    credentials: {
      accessKeyId: pick('x-fc-access-key-id', 'ALIBABA_CLOUD_ACCESS_KEY_ID'),
      accessKeySecret: pick('x-fc-access-key-secret', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET'),
      securityToken: pick('x-fc-security-token', 'ALIBABA_CLOUD_SECURITY_TOKEN'),
    },
    function: {
      name: pick('x-fc-function-name', 'FC_FUNCTION_NAME'),
      handler: pick('x-fc-function-handler', 'FC_FUNCTION_HANDLER'),
      memory: toInt(pick('x-fc-function-memory', 'FC_FUNCTION_MEMORY_SIZE', '128'), 128),
      timeout: timeout,
      initializer: pick('x-fc-function-initializer', 'FC_FUNCTION_INITIALIZER'),
      initializationTimeout: initTimeout,
    },
    service: {
      name: pick('x-fc-service-name', 'FC_SERVICE_NAME'),
      logProject: pick('x-fc-service-logproject', 'FC_SERVICE_LOG_PROJECT'),
      logStore: pick('x-fc-service-logstore', 'FC_SERVICE_LOG_STORE'),
      qualifier: pick('x-fc-qualifier', 'FC_QUALIFIER', 'LATEST'),
      versionId: pick('x-fc-version-id', 'FC_VERSION_ID'),
    },
    region: pick('x-fc-region', 'FC_REGION'),
    accountId: pick('x-fc-account-id', 'FC_ACCOUNT_ID'),
    retryCount: toInt(headers['x-fc-retry-count'], 0),
    logger: makeLogger(requestId),
    tracing: {
      openTracingSpanContext: headers['x-fc-tracing-opentracing-span-context'] || '',
      jaegerEndpoint: headers['x-fc-tracing-jaeger-endpoint'] || '',
      openTracingSpanBaggages: parseBaggages(headers['x-fc-tracing-opentracing-span-baggages']),
      parentSpanId: headers['x-fc-tracing-opentracing-parent-span-id'] || '',
    },
    getRemainingTimeInMS: function () { return Math.max(0, deadline - Date.now()); },
  };
}

// ------------------------------------------------------------------------------------------------------------
// user code loading
// ------------------------------------------------------------------------------------------------------------

function fcError(type, message) {
  const err = new Error(message);
  err.name = type;
  err.fcSanitize = true;
  return err;
}

const handlerCache = new Map();

function resolveModuleFile(modName) {
  const base = path.resolve(CODE_DIR, modName);
  const candidates = [base + '.js', base + '.cjs', base + '.mjs', base, path.join(base, 'index.js'),
    path.join(base, 'index.mjs')];
  for (let i = 0; i < candidates.length; i++) {
    try {
      if (fs.statSync(candidates[i]).isFile()) return candidates[i];
    } catch (e) { /* next */ }
  }
  try {
    if (fs.statSync(path.join(base, 'package.json')).isFile()) return base;
  } catch (e) { /* none */ }
  return null;
}

function importModule(file) {
  const url = require('url');
  return import(url.pathToFileURL(file).href);
}

// Returns a promise of the handler function.
function loadFunction(name) {
  const cached = handlerCache.get(name);
  if (cached) return Promise.resolve(cached);
  return new Promise(function (resolve) {
    const idx = (name || '').lastIndexOf('.');
    if (idx <= 0 || idx === name.length - 1) {
      throw fcError('InvalidHandler',
        "Invalid handler '" + name + "': expected '<file>.<function>', e.g. 'index.handler'");
    }
    const modName = name.slice(0, idx);
    const fnName = name.slice(idx + 1);
    const file = resolveModuleFile(modName);
    if (!file) {
      throw fcError('ModuleNotFoundError', "Module '" + path.resolve(CODE_DIR, modName) + ".js' is missing.");
    }
    let loaded;
    if (file.slice(-4) === '.mjs') {
      loaded = importModule(file);
    } else {
      try {
        loaded = require(file);
      } catch (err) {
        if (err && err.code === 'ERR_REQUIRE_ESM') loaded = importModule(file);
        else throw err;
      }
    }
    resolve(Promise.resolve(loaded).then(function (mod) {
      let fn = mod ? mod[fnName] : undefined;
      if (typeof fn !== 'function' && mod && mod.default && typeof mod.default[fnName] === 'function') {
        fn = mod.default[fnName];
      }
      if (typeof fn !== 'function') {
        throw fcError('HandlerNotFound', "Handler '" + fnName + "' is missing on module '" + modName + "'");
      }
      handlerCache.set(name, fn);
      return fn;
    }));
  });
}

// ------------------------------------------------------------------------------------------------------------
// calling user code
// ------------------------------------------------------------------------------------------------------------

// Calls fn(...args, callback) inside `scope`; resolves to {value} or {error, kind}. The first of callback,
// returned promise, synchronous throw or uncaught exception attributed to this scope wins.
function callUser(scope, fn, args, withCallback) {
  return new Promise(function (resolve) {
    let done = false;
    function finish(outcome) {
      if (done) return;
      done = true;
      inflight.delete(scope);
      resolve(outcome);
    }
    scope.fail = function (err) { finish({ error: err, kind: UNHANDLED }); };
    scope.finish = finish;
    runScoped(scope, function () {
      const callback = function (err, result) {
        if (err !== null && err !== undefined && err !== false) finish({ error: err, kind: HANDLED });
        else finish({ value: result });
      };
      let ret;
      try {
        ret = withCallback ? fn.apply(null, args.concat([callback])) : fn.apply(null, args);
      } catch (err) {
        finish({ error: err, kind: UNHANDLED });
        return;
      }
      if (ret && typeof ret.then === 'function') {
        ret.then(function (v) {
          if (withCallback) finish({ value: v });
        }, function (err) {
          finish({ error: err === undefined || err === null ? new Error(String(err)) : err, kind: HANDLED });
        });
      }
    });
  });
}

// FC's error bodies: an Error gives {errorMessage, errorType, stackTrace} with the lines of err.stack as they are
// ("Error: oops", "    at exports.handler (/code/index.js:2:12)"); anything else (callback('msg')) gives just
// {errorMessage} (FC's Node.js "Error handling" pages). openfc's own frames are left out.
function errorPayload(err) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    const stack = err.stack ? String(err.stack).split('\n') : [];
    const clean = stack.filter(function (l) { return l.indexOf(__filename) < 0 && !/\(node:internal/.test(l) && !/^\s*at node:internal/.test(l); });
    return {
      errorMessage: String(err.message) + builtinsHint(err),
      errorType: err.name || (err.constructor && err.constructor.name) || 'Error',
      stackTrace: err.fcSanitize ? [] : clean,
    };
  }
  let message;
  if (typeof err === 'string') message = err;
  else {
    try { message = JSON.stringify(err); } catch (e) { message = String(err); }
    if (message === undefined) message = String(err);
  }
  return { errorMessage: message };
}

function builtinsHint(err) {
  const m = err.code === 'MODULE_NOT_FOUND' && /^Cannot find module '([^']+)'/.exec(String(err.message));
  if (!m) return '';
  const parts = m[1].split('/');
  const name = parts[0].charAt(0) === '@' ? parts.slice(0, 2).join('/') : parts[0];
  if (!BUILTIN_MODULES.has(name)) return '';
  try { if (fs.statSync(BUILTINS_DIR).isDirectory()) return ''; } catch (e) { /* missing: the hint */ }
  return " ('" + name + "' is one of the modules Function Compute's Node.js runtimes ship built in; the runtime " +
    'built-ins are not installed on this openfc server: run `openfc runtimes install`)';
}

function sendError(res, err, kind) {
  let body;
  try {
    body = Buffer.from(JSON.stringify(errorPayload(err)));
  } catch (e) {
    body = Buffer.from(JSON.stringify({ errorMessage: String(err), errorType: 'Error', stackTrace: [] }));
  }
  writeRaw(res, ERROR_STATUS, {
    'Content-Type': 'application/json',
    'x-fc-status': String(ERROR_STATUS),
    'x-fc-error-type': kind || UNHANDLED,
  }, body);
}

function failAndEnd(res, kind, requestId, err, errorKind) {
  logError(requestId, err);
  marker(kind, 'End', requestId);
  sendError(res, err, errorKind);
}

function writeRaw(res, status, headers, body) {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  const names = Object.keys(headers);
  for (let i = 0; i < names.length; i++) res.setHeader(names[i], headers[names[i]]);
  res.setHeader('Content-Length', body.length);
  res.end(body);
}

function encodeResult(value) {
  if (value === undefined || value === null) return { body: Buffer.alloc(0), type: 'application/octet-stream' };
  if (Buffer.isBuffer(value)) return { body: value, type: 'application/octet-stream' };
  if (value instanceof Uint8Array) return { body: Buffer.from(value.buffer, value.byteOffset, value.byteLength), type: 'application/octet-stream' };
  if (value instanceof ArrayBuffer) return { body: Buffer.from(value), type: 'application/octet-stream' };
  if (typeof value === 'string') return { body: Buffer.from(value, 'utf8'), type: 'application/octet-stream' };
  let json;
  try { json = JSON.stringify(value); } catch (e) { json = undefined; }
  if (json === undefined) return { body: Buffer.from(String(value), 'utf8'), type: 'application/octet-stream' };
  return { body: Buffer.from(json, 'utf8'), type: 'application/json' };
}

// ------------------------------------------------------------------------------------------------------------
// routes
// ------------------------------------------------------------------------------------------------------------

function handlerName(headers) {
  return headers['x-fc-function-handler'] || env.FC_FUNCTION_HANDLER || '';
}

function doInvoke(req, res, body) {
  const rid = req.headers['x-fc-request-id'] || '';
  marker('Invoke', 'Start', rid);
  const scope = { requestId: rid };
  loadFunction(handlerName(req.headers)).then(function (fn) {
    const context = makeContext(req.headers);
    return callUser(scope, fn, [body, context], true);
  }, function (err) {
    return { error: err, kind: UNHANDLED };
  }).then(function (outcome) {
    if (outcome.error !== undefined) {
      failAndEnd(res, 'Invoke', rid, outcome.error, outcome.kind);
      return;
    }
    let enc;
    try {
      enc = encodeResult(outcome.value);
    } catch (err) {
      failAndEnd(res, 'Invoke', rid, err, UNHANDLED);
      return;
    }
    marker('Invoke', 'End', rid);
    writeRaw(res, 200, { 'Content-Type': enc.type }, enc.body);
  });
}

let initDone = false;
let initRunning = null; // promise of the running initializer

function doInitialize(req, res) {
  const rid = req.headers['x-fc-request-id'] || '';
  const name = req.headers['x-fc-function-initializer'] || env.FC_FUNCTION_INITIALIZER || '';
  if (initDone || !name) {
    writeRaw(res, 200, {}, Buffer.alloc(0));
    return;
  }
  if (initRunning) {
    // Concurrent /initialize: wait for the running one, then answer as if called afterwards.
    initRunning.then(function () { doInitialize(req, res); });
    return;
  }
  marker('Initialize', 'Start', rid);
  const scope = { requestId: rid };
  initRunning = loadFunction(name).then(function (fn) {
    const context = makeContext(req.headers, 'x-fc-initialization-timeout', 'FC_INITIALIZATION_TIMEOUT');
    return callUser(scope, fn, [context], true);
  }, function (err) {
    return { error: err, kind: UNHANDLED };
  }).then(function (outcome) {
    initRunning = null;
    if (outcome.error !== undefined) {
      failAndEnd(res, 'Initialize', rid, outcome.error, outcome.kind);
    } else {
      initDone = true;
      marker('Initialize', 'End', rid);
      writeRaw(res, 200, {}, Buffer.alloc(0));
    }
  });
}

function doLifecycle(req, res, kind, header) {
  const rid = req.headers['x-fc-request-id'] || '';
  const name = req.headers[header] || '';
  if (!name) {
    writeRaw(res, 200, {}, Buffer.alloc(0));
    return;
  }
  marker(kind, 'Start', rid);
  const scope = { requestId: rid };
  loadFunction(name).then(function (fn) {
    return callUser(scope, fn, [makeContext(req.headers)], true);
  }, function (err) {
    return { error: err, kind: UNHANDLED };
  }).then(function (outcome) {
    if (outcome.error !== undefined) {
      failAndEnd(res, kind, rid, outcome.error, outcome.kind);
    } else {
      marker(kind, 'End', rid);
      writeRaw(res, 200, {}, Buffer.alloc(0));
    }
  });
}

// --- HTTP trigger ---------------------------------------------------------------------------------------------

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

function makeHttpRequest(req, body) {
  const Readable = require('stream').Readable;
  const querystring = require('querystring');
  const stream = new Readable({ read: function () {} });
  if (body.length) stream.push(body);
  stream.push(null);

  let target = req.url || '/';
  const m = /^https?:\/\/[^/]*(\/.*)?$/.exec(target);
  if (m) target = m[1] || '/';
  const q = target.indexOf('?');
  const rawPath = q >= 0 ? target.slice(0, q) : target;
  const rawQuery = q >= 0 ? target.slice(q + 1) : '';
  const parsed = querystring.parse(rawQuery);
  const queries = {};
  Object.keys(parsed).forEach(function (k) { queries[k] = parsed[k]; });

  const headers = {};
  Object.keys(req.headers).forEach(function (k) {
    if (k.indexOf('x-fc-') === 0 || k === 'transfer-encoding') return;
    headers[k] = req.headers[k];
  });
  if (body.length || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
    headers['content-length'] = String(body.length);
  }

  stream.headers = headers;
  stream.path = safeDecode(rawPath) || '/';
  stream.queries = queries;
  stream.method = req.method;
  stream.clientIP = req.headers['x-fc-client-ip'] || (req.socket && req.socket.remoteAddress) || '';
  stream.url = req.headers['x-fc-request-uri'] || target;
  stream.httpVersion = req.httpVersion;
  return stream;
}

function FCResponse(onSend) {
  this._statusCode = 200;
  this._headers = new Map(); // lower-case name -> [name, value]
  this._onSend = onSend;
  this._sent = false;
}

FCResponse.prototype.setStatusCode = function (code) {
  const n = Number(code);
  if (!Number.isInteger(n) || n < 100 || n > 999) throw new TypeError('invalid status code: ' + code);
  this._statusCode = n;
};
FCResponse.prototype.setHeader = function (key, value) {
  this._headers.set(String(key).toLowerCase(), [String(key), value]);
};
FCResponse.prototype.getHeader = function (key) {
  const e = this._headers.get(String(key).toLowerCase());
  return e ? e[1] : undefined;
};
FCResponse.prototype.hasHeader = function (key) {
  return this._headers.has(String(key).toLowerCase());
};
FCResponse.prototype.deleteHeader = function (key) {
  this._headers.delete(String(key).toLowerCase());
};
FCResponse.prototype.send = function (body) {
  if (this._sent) return;
  this._sent = true;
  const self = this;
  if (body && typeof body.pipe === 'function' && typeof body.on === 'function') {
    const chunks = [];
    body.on('data', function (c) { chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c))); });
    body.on('end', function () { self._onSend(null, self, Buffer.concat(chunks)); });
    body.on('error', function (err) { self._onSend(err, self, null); });
    return;
  }
  let buf;
  if (body === undefined || body === null) buf = Buffer.alloc(0);
  else if (Buffer.isBuffer(body)) buf = body;
  else if (body instanceof Uint8Array) buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (typeof body === 'string') buf = Buffer.from(body, 'utf8');
  else buf = encodeResult(body).body;
  self._onSend(null, self, buf);
};

function doHttpInvoke(req, res, body) {
  const rid = req.headers['x-fc-request-id'] || '';
  marker('Invoke', 'Start', rid);
  const scope = { requestId: rid };
  loadFunction(handlerName(req.headers)).then(function (fn) {
    const context = makeContext(req.headers);
    const request = makeHttpRequest(req, body);
    const response = new FCResponse(function (err, r, buf) {
      if (err) scope.finish({ error: err, kind: UNHANDLED });
      else scope.finish({ value: { response: r, body: buf } });
    });
    return callUser(scope, fn, [request, response, context], false);
  }, function (err) {
    return { error: err, kind: UNHANDLED };
  }).then(function (outcome) {
    if (outcome.error !== undefined) {
      failAndEnd(res, 'Invoke', rid, outcome.error, outcome.kind);
      return;
    }
    const r = outcome.value.response;
    try {
      res.statusCode = r._statusCode;
      r._headers.forEach(function (entry, lower) {
        if (DROPPED_RESPONSE_HEADERS.has(lower) || lower.indexOf('x-fc-') === 0) return;
        res.setHeader(entry[0], entry[1]);
      });
      res.setHeader('Content-Length', outcome.value.body.length);
    } catch (err) {
      // invalid header name/value set by the user
      const names = typeof res.getHeaderNames === 'function' ? res.getHeaderNames() : [];
      names.forEach(function (n) { res.removeHeader(n); });
      failAndEnd(res, 'Invoke', rid, err, UNHANDLED);
      return;
    }
    marker('Invoke', 'End', rid);
    res.end(outcome.value.body);
  });
}

// ------------------------------------------------------------------------------------------------------------
// server
// ------------------------------------------------------------------------------------------------------------

function onRequest(req, res) {
  res.sendDate = false;
  const chunks = [];
  req.on('data', function (c) { chunks.push(c); });
  req.on('error', function () { /* client went away */ });
  req.on('end', function () {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    try {
      dispatch(req, res, body);
    } catch (err) {
      logError(req.headers['x-fc-request-id'] || '', err);
      sendError(res, err, UNHANDLED);
    }
  });
}

function dispatch(req, res, body) {
  const control = req.headers['x-fc-control-path'] || '';
  if (control === '/http-invoke') return doHttpInvoke(req, res, body);
  const route = control || (req.url || '').split('?')[0];
  switch (route) {
    case '/invoke': return doInvoke(req, res, body);
    case '/initialize': return doInitialize(req, res);
    case '/pre-stop': return doLifecycle(req, res, 'PreStop', 'x-fc-instance-lifecycle-pre-stop-handler');
    case '/pre-freeze': return doLifecycle(req, res, 'PreFreeze', 'x-fc-instance-lifecycle-pre-freeze-handler');
    default:
      writeRaw(res, 400, { 'Content-Type': 'text/plain' }, Buffer.from('unknown control path ' + JSON.stringify(route)));
  }
}

// Errors thrown asynchronously by user code fail the invocation they belong to; the runtime keeps running.
process.on('uncaughtException', function (err) {
  const scope = currentScope();
  if (scope && scope.fail) scope.fail(err);
  else logError(scope ? scope.requestId : '', err);
});
process.on('unhandledRejection', function (reason) {
  const scope = currentScope();
  if (scope && scope.fail) scope.fail(reason === undefined || reason === null ? new Error('Unhandled promise rejection: ' + reason) : reason);
  else logError(scope ? scope.requestId : '', reason);
});

function prepareProcess() {
  try {
    process.chdir(CODE_DIR);
  } catch (e) { /* keep cwd */ }
  // Layers: /opt/nodejs/node_modules (and /opt/nodejs/nodeXX/node_modules) resolve like NODE_PATH entries.
  const extra = ['/opt/nodejs/node' + process.versions.node.split('.')[0] + '/node_modules', '/opt/nodejs/node_modules',
    path.join(CODE_DIR, 'node_modules'), BUILTINS_DIR];
  const present = extra.filter(function (p) {
    try { return fs.statSync(p).isDirectory(); } catch (e) { return false; }
  });
  if (present.length) {
    const cur = env.NODE_PATH ? env.NODE_PATH.split(path.delimiter) : [];
    env.NODE_PATH = cur.concat(present.filter(function (p) { return cur.indexOf(p) < 0; })).join(path.delimiter);
    try { require('module').Module._initPaths(); } catch (e) { /* best effort */ }
  }
}

// A pre-started runtime (OPENFC_PRESTARTED=1): the shim is loaded while no function is known; one line on stdin,
// written by the sandbox's init once the function's package is at /code, gives the function's environment
// (assignments to process.env call setenv, so native code sees it too).
function awaitFunction() {
  // What the first request needs, loaded while no function is known.
  ['url', 'stream', 'querystring', 'module'].forEach(function (m) { require(m); });
  const line = fs.readFileSync(0, 'utf8');
  if (!line) process.exit(0); // no function came: openfc discarded this runtime
  JSON.parse(line).env.forEach(function (kv) { env[kv[0]] = kv[1]; });
  delete env.OPENFC_PRESTARTED;
}

// While no function is known, one request through a throwaway server on a loopback port runs Node's HTTP
// server and client code once, so the function's first request does not pay for compiling it.
function warmUp(done) {
  const srv = http.createServer(function (req, res) {
    req.on('data', function () {});
    req.on('end', function () {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(Buffer.from('ok'));
    });
  });
  let finished = false;
  function finish() {
    if (finished) return;
    finished = true;
    srv.close();
    done();
  }
  srv.on('error', finish);
  srv.listen(0, '127.0.0.1', function () {
    const req = http.request({ host: '127.0.0.1', port: srv.address().port, method: 'POST', path: '/invoke',
      headers: { 'x-fc-request-id': 'warm-up', 'content-type': 'application/octet-stream' } }, function (res) {
      res.on('data', function () {});
      res.on('end', finish);
    });
    req.on('error', finish);
    req.end(Buffer.from('{}'));
  });
}

function main() {
  if (env.OPENFC_PRESTARTED === '1' && !main.warm) {
    main.warm = true;
    warmUp(function () { awaitFunction(); main(); });
    return;
  }
  const PORT = parseInt(env.FC_CUSTOM_LISTEN_PORT || '9000', 10);
  let server;
  try {
    server = http.createServer({ noDelay: true }, onRequest);
  } catch (e) {
    server = http.createServer(onRequest);
  }
  // The invoker pools connections: never close idle keep-alive sockets, never time requests out here
  // (the invoker enforces function timeouts by killing the instance).
  server.keepAliveTimeout = 0;
  server.timeout = 0;
  if ('requestTimeout' in server) server.requestTimeout = 0;
  server.on('connection', function (socket) { socket.setNoDelay(true); });
  server.listen(PORT, '0.0.0.0');
  prepareProcess();
}

main();
