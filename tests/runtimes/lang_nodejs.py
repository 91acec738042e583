"""The built-in Node.js runtime's functions and answers (crates/openfc-invoker/runtimes/nodejs/bootstrap.js), for
the contract suite (test_runtime_contract.py) and the Node.js-only tests (test_node_runtime.py)."""

import json
import re

from runtime_helpers import NODE, Lang, check

INDEX = r'''
'use strict';

class MyError extends Error {
  constructor(message) { super(message); this.name = 'MyError'; }
}

exports.echo = (event, context, callback) => callback(null, event);
exports.eventType = (event, context, callback) => callback(null, Buffer.isBuffer(event) ? 'Buffer' : typeof event);
exports.retString = (event, context, callback) => callback(null, 'h\u00e9llo \u4e2d');
exports.retBuffer = (event, context, callback) => callback(null, Buffer.from([0, 255, 114, 97, 119]));
exports.retUint8 = (event, context, callback) => callback(null, new Uint8Array([65, 66]));
exports.retObject = (event, context, callback) => callback(null, { a: 1, b: [true, null], s: 'x' });
exports.retArray = (event, context, callback) => callback(null, [1, 'two', 3.5]);
exports.retNumber = (event, context, callback) => callback(null, 42);
exports.retBool = (event, context, callback) => callback(null, true);
exports.retNull = (event, context, callback) => callback(null, null);
exports.retUndefined = (event, context, callback) => callback();
exports.asyncReturn = async (event, context) => ({ async: true, event: event.toString() });
exports.asyncString = async () => 'async string';
exports.lateCallback = (event, context, callback) => setTimeout(() => callback(null, 'late'), 20);
exports.callbackTwice = (event, context, callback) => { callback(null, 'first'); callback(null, 'second'); };

exports.contextEcho = (event, context, callback) => {
  const c = context;
  callback(null, {
    requestId: c.requestId,
    credentials: c.credentials,
    function: c.function,
    service: c.service,
    region: c.region,
    accountId: c.accountId,
    loggerMethods: ['info', 'warn', 'error', 'debug', 'log'].filter((m) => typeof c.logger[m] === 'function'),
    hasTracing: typeof c.tracing === 'object',
    env: {
      FC_FUNCTION_NAME: process.env.FC_FUNCTION_NAME,
      FC_INSTANCE_ID: process.env.FC_INSTANCE_ID,
      MY_USER_VAR: process.env.MY_USER_VAR,
    },
    cwd: process.cwd(),
  });
};

exports.cbError = (event, context, callback) => callback(new TypeError('bad type'));
exports.cbCustom = (event, context, callback) => callback(new MyError('custom boom'));
exports.cbString = (event, context, callback) => callback('plain string error');
exports.throwSync = () => { throw new RangeError('sync boom'); };
exports.asyncReject = async () => { throw new Error('async boom'); };
exports.throwLater = (event, context, callback) => { setTimeout(() => { throw new Error('later boom'); }, 10); };
exports.unhandledRejection = (event, context, callback) => { Promise.reject(new Error('nobody catches me')); };
exports.notAFunction = 5;

let sleeping = 0;
exports.sleeper = (event, context, callback) => {
  sleeping++;
  setTimeout(() => { sleeping--; callback(null, 'slept'); }, 200);
};

exports.chatty = (event, context, callback) => {
  console.log('console.log from handler', context.requestId);
  console.error('console.error from handler');
  context.logger.info('hello %s', 'world');
  context.logger.warn({ k: 'v' });
  callback(null, 'ok');
};

exports.noisyFailure = (event, context, callback) => {
  console.log('about to fail');
  callback(new Error('noisy failure'));
};

exports.pid = (event, context, callback) => callback(null, String(process.pid));
'''

FILES = {
    "index.js": INDEX,
    "broken.js": "exports.handler = (event, context, callback) => { callback(null, 1) ;;; )\n",
    "needsDep.js": "require('not-installed-pkg');\nexports.handler = (e, c, cb) => cb(null, 1);\n",
    "sub/dir/mod.js": "exports.handler = (e, c, cb) => cb(null, 'nested:' + require('path').basename(__filename));\n",
    "esm.mjs": "export const handler = async (event) => 'esm:' + event.toString();\n",
    "node_modules/local-dep/index.js": "module.exports = 'from node_modules';\n",
    "usesDep.js": "const v = require('local-dep');\nexports.handler = (e, c, cb) => cb(null, v);\n",
}

RESULT_CASES = [
    # handler, request body, expected response body, expected content type (None = not checked)
    ("index.echo", b"raw \x00\xff event", b"raw \x00\xff event", "application/octet-stream"),
    ("index.eventType", b"{}", b"Buffer", None),
    ("index.retString", b"", "h\u00e9llo \u4e2d".encode("utf-8"), "application/octet-stream"),
    ("index.retBuffer", b"", b"\x00\xffraw", "application/octet-stream"),
    ("index.retUint8", b"", b"AB", "application/octet-stream"),
    ("index.retObject", b"", json.dumps({"a": 1, "b": [True, None], "s": "x"}, separators=(",", ":")).encode(),
     "application/json"),
    ("index.retArray", b"", b'[1,"two",3.5]', "application/json"),
    ("index.retNumber", b"", b"42", "application/json"),
    ("index.retBool", b"", b"true", "application/json"),
    ("index.retNull", b"", b"", None),
    ("index.retUndefined", b"", b"", None),
    ("index.asyncReturn", b"ev", b'{"async":true,"event":"ev"}', "application/json"),
    ("index.asyncString", b"", b"async string", None),
    ("index.lateCallback", b"", b"late", None),
    ("index.callbackTwice", b"", b"first", None),
    ("sub/dir/mod.handler", b"", b"nested:mod.js", None),
    ("esm.handler", b"x", b"esm:x", None),
    ("usesDep.handler", b"", b"from node_modules", None),
]

ERROR_CASES = [
    # handler, kind, errorType, errorMessage substring, substring expected in the stack trace (or None)
    ("index.cbError", "Handled", "TypeError", "bad type", "index.js"),
    ("index.cbCustom", "Handled", "MyError", "custom boom", "index.js"),
    # FC: callback('msg') answers {"errorMessage": "msg"} alone (no errorType, no stackTrace).
    ("index.cbString", "Handled", None, "plain string error", None),
    ("index.asyncReject", "Handled", "Error", "async boom", "index.js"),
    ("index.throwSync", "Unhandled", "RangeError", "sync boom", "index.js"),
    ("index.throwLater", "Unhandled", "Error", "later boom", "index.js"),
    ("index.unhandledRejection", "Unhandled", "Error", "nobody catches me", "index.js"),
    ("nosuch.handler", "Unhandled", "ModuleNotFoundError", "nosuch", None),
    ("index.nosuch", "Unhandled", "HandlerNotFound", "Handler 'nosuch' is missing on module 'index'", None),
    ("index.notAFunction", "Unhandled", "HandlerNotFound", "notAFunction", None),
    ("broken.handler", "Unhandled", "SyntaxError", "", None),
    ("needsDep.handler", "Unhandled", "Error", "not-installed-pkg", None),
    ("noperiod", "Unhandled", "InvalidHandler", "noperiod", None),
]

COUNTER = {
    "index.js": '''
        let counter = 0;
        const seen = [];
        exports.init = (context, callback) => {
          setTimeout(() => {
            counter++;
            seen.push([context.requestId, context.function.initializationTimeout]);
            console.log('initializer ran');
            callback(null, '');
          }, 200);
        };
        exports.asyncInit = async (context) => { counter += 10; };
        exports.handler = (event, context, callback) => { counter++; callback(null, String(counter)); };
        exports.report = async () => ({ seen });
    ''',
}

INIT_FAILS_ONCE = {"index.js": '''
    let attempts = 0;
    exports.init = (context, callback) => {
      attempts++;
      if (attempts === 1) return callback(new Error('first attempt fails'));
      callback(null, '');
    };
    exports.handler = (event, context, callback) => callback(null, String(attempts));
'''}

HTTP = {
    "index.js": r'''
        const { Readable } = require('stream');

        exports.echo = (request, response, context) => {
          const chunks = [];
          request.on('data', (c) => chunks.push(c));
          request.on('end', () => {
            response.setStatusCode(201);
            response.setHeader('Content-Type', 'application/json');
            response.setHeader('X-Custom', 'yes');
            response.setHeader('X-Removed', 'gone');
            response.deleteHeader('x-removed');
            response.setHeader('X-Fc-Sneaky', 'no');
            response.setHeader('Connection', 'close');
            response.setHeader('Set-Cookie', ['a=1', 'b=2']);
            response.send(JSON.stringify({
              method: request.method,
              path: request.path,
              queries: request.queries,
              url: request.url,
              clientIP: request.clientIP,
              headers: request.headers,
              body: Buffer.concat(chunks).toString(),
              isStream: typeof request.pipe === 'function',
              requestId: context.requestId,
              functionName: context.function.name,
            }));
          });
        };

        exports.notFound = (request, response) => {
          response.setStatusCode(404);
          response.send('no such page');
        };

        exports.sendBuffer = (request, response) => response.send(Buffer.from([1, 2, 3]));
        exports.sendStream = (request, response) => response.send(Readable.from(['str', 'eam']));
        exports.asyncSend = async (request, response) => {
          await new Promise((r) => setTimeout(r, 10));
          response.send('async sent');
        };
        exports.throws = () => { throw new Error('http sync boom'); };
        exports.rejects = async () => { throw new Error('http async boom'); };
        exports.badStatus = (request, response) => { response.setStatusCode('abc'); };
    ''',
}

HTTP_CASES = [
    # handler, method, status, body, error
    ("index.notFound", "GET", 404, b"no such page", None),
    ("index.sendBuffer", "GET", 200, b"\x01\x02\x03", None),
    ("index.sendStream", "GET", 200, b"stream", None),
    ("index.asyncSend", "GET", 200, b"async sent", None),
    ("index.throws", "GET", 404, None, {"kind": "Unhandled", "errorType": "Error"}),
    ("index.rejects", "GET", 404, None, {"kind": "Handled", "errorType": "Error"}),
    ("index.badStatus", "GET", 404, None, {"kind": "Unhandled", "errorType": "TypeError"}),
    ("index.nosuch", "GET", 404, None, {"kind": "Unhandled", "errorType": "HandlerNotFound"}),
]

HOOKS = {
    "index.js": '''
        const fs = require('fs');
        const path = require('path');
        exports.handler = (event, context, callback) => callback(null, 'ok');
        exports.preStop = (context, callback) => {
          console.log('pre-stop ran ' + context.requestId);
          fs.writeFileSync(path.join(process.env.FC_FUNC_CODE_PATH, 'stopped'), context.function.name);
          callback(null, '');
        };
        exports.preFreeze = async (context) => { throw new Error('cannot freeze'); };
    ''',
}


def keep_alive_probe(rt, session):
    check(rt.invoke(b"a", handler="index.echo", session=session), 200, body=b"a")
    check(rt.invoke(b"b", handler="index.echo", session=session), 200, body=b"b")


def check_init_report(report, rid):
    assert report == {"seen": [[rid, 7]]}


TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "

PROFILE = Lang(
    name="nodejs",
    bare_cmd=[NODE, "-e", "0"],
    max_startup_overhead_ms=100,
    tiny_files={"index.js": "exports.handler = (e, c, cb) => cb(null, 1);\n"},
    files=FILES,
    result_cases=RESULT_CASES,
    ret_42="index.retNumber",
    keep_alive_probe=keep_alive_probe,
    error_cases=ERROR_CASES,
    bootstrap_frames=("bootstrap.js",),
    pid_handler="index.pid",
    noisy_failure="index.noisyFailure",
    noisy_error={"kind": "Handled"},
    noisy_inside=lambda rid: ["^about to fail$", re.escape(rid) + r" \[ERROR\] Error: noisy failure"],
    chatty="index.chatty",
    chatty_inside=lambda rid: ["^console.log from handler %s$" % rid,
                               TS + re.escape(rid) + r" \[INFO\] hello world$",
                               TS + re.escape(rid) + r" \[WARN\] \{ k: 'v' \}$"],
    chatty_order=("console.log from handler", "hello world", "k: 'v'"),
    chatty_never=(),
    chatty_stderr="^console.error from handler$",
    counter=COUNTER,
    check_init_report=check_init_report,
    header_init=("index.asyncInit", b"12"),
    init_fails_once=INIT_FAILS_ONCE,
    init_failure={"kind": "Handled", "errorType": "Error", "errorMessage": "first attempt fails"},
    http_files=HTTP,
    http_main="index.echo",
    http_fixed=("index.sendBuffer", b"\x01\x02\x03"),
    http_cases=HTTP_CASES,
    hooks=HOOKS,
    pre_stop="index.preStop",
    pre_freeze="index.preFreeze",
    pre_freeze_error={"kind": "Handled", "errorType": "Error", "errorMessage": "cannot freeze"},
)
