"""The go1 runtime (runtimes.md §3): openfc serves the Runtime API 2020-11-11 inside each instance and runs the
user's binary `/code/<handler>` with FC_RUNTIME_API set. The fc-runtime-go-sdk module cannot be downloaded here, so
the function is a small Go program written from the spec that speaks the Runtime API as the SDK does (long-polls
`/next`, a goroutine per invocation, the SDK's log markers, `/response` and `/error` with the SDK's error bodies,
`x-fc-http-params` for HTTP); it is built in the test with Debian's golang-go into a zip. Through the official
SDKs (fc2 and the 2021 Tea SDK) and raw signed requests: event and JSON round trips, context fields from the
`/next` headers, environment, handled and panicking errors' exact bodies, log tail and per-function logs,
initializer (and its timeout), pre-stop, HTTP trigger, memory limit, timeout, process exit, concurrent requests on
one instance (and an SDK that takes one at a time), layers at /opt, the exec-bit repair."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import ROOT
from helpers import b64, unique
from invoke_helpers import (UNHANDLED, code_zip, health, invoke, invoke_fails, invoke_ok, new_function,
                            new_service, wait_until)

# A go1 function as the SDK would make it, from the spec alone (runtimes.md §7.2). Behaviour by event:
# `{json}` -> {"greeting", "input"}; `cmd:arg` commands below; initializer (x-fc-function-type 1) and pre-stop (2)
# hooks; an HTTP variant when `x-fc-http-params` comes. FIXTURE_SEQUENTIAL=1 takes one `/next` at a time (SDKs
# before the concurrent-invoke fix).
GO_MAIN = r'''// A go1 test function written from openfc's runtimes.md §3 (the fc-runtime-go-sdk module cannot be downloaded
// here): it speaks the Runtime API 2020-11-11 as the SDK does. Standard library only.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var (
	base      string
	client    = &http.Client{Timeout: 0}
	inits     int64
	invokes   int64
	active    int64
	maxActive int64
	keep      [][]byte
)

type invocation struct {
	id       string
	deadline time.Time
	timeout  int
	fnType   string
	header   http.Header
	body     []byte
}

func main() {
	api := os.Getenv("FC_RUNTIME_API")
	if api == "" {
		log.Fatalf("expected ali FC environment variables [FC_RUNTIME_API] are not defined")
	}
	base = "http://" + api + "/2020-11-11/runtime/invocation/"
	sequential := os.Getenv("FIXTURE_SEQUENTIAL") == "1"
	for {
		inv, err := next()
		if err != nil {
			log.Printf("next: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if sequential {
			handle(inv)
		} else {
			go handle(inv)
		}
	}
}

func next() (*invocation, error) {
	resp, err := client.Get(base + "next")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	h := resp.Header
	ms, err := strconv.ParseInt(h.Get("x-fc-function-deadline"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad x-fc-function-deadline %q: the event is dropped", h.Get("x-fc-function-deadline"))
	}
	timeout, err := strconv.Atoi(h.Get("x-fc-function-timeout"))
	if err != nil {
		return nil, fmt.Errorf("bad x-fc-function-timeout %q: the event is dropped", h.Get("x-fc-function-timeout"))
	}
	return &invocation{id: h.Get("x-fc-request-id"), deadline: time.UnixMilli(ms), timeout: timeout,
		fnType: h.Get("x-fc-function-type"), header: h, body: body}, nil
}

func post(path string, body []byte, header map[string]string) {
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Printf("post %s: %v", path, err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

type frame struct {
	Path  string `json:"path"`
	Line  int    `json:"line"`
	Label string `json:"label"`
}

type fcError struct {
	Message    string  `json:"errorMessage"`
	Type       string  `json:"errorType"`
	StackTrace []frame `json:"stackTrace,omitempty"`
}

type result struct {
	body   []byte
	header map[string]string
	err    *fcError
}

func handle(inv *invocation) {
	kind := map[string]string{"1": "Initialize", "2": "PreStop", "3": "PreFreeze"}[inv.fnType]
	if kind == "" {
		kind = "Invoke"
	}
	fmt.Printf("FC %s Start RequestId: %s\n", kind, inv.id)
	r := run(inv)
	if r.err != nil {
		fmt.Printf("FC %s End RequestId: %s, Error: Unhandled function error\n", kind, inv.id)
		b, _ := json.Marshal(r.err)
		post(inv.id+"/error", b, nil)
		return
	}
	fmt.Printf("FC %s End RequestId: %s\n", kind, inv.id)
	post(inv.id+"/response", r.body, r.header)
}

func run(inv *invocation) (r result) {
	defer func() {
		if v := recover(); v != nil {
			var frames []frame
			pcs := make([]uintptr, 32)
			n := runtime.Callers(3, pcs)
			it := runtime.CallersFrames(pcs[:n])
			for {
				f, more := it.Next()
				frames = append(frames, frame{Path: f.File, Line: f.Line, Label: f.Function})
				if !more {
					break
				}
			}
			r = result{err: &fcError{Message: fmt.Sprint(v), Type: fmt.Sprintf("%T", v), StackTrace: frames}}
		}
	}()
	switch inv.fnType {
	case "1":
		if ms, _ := strconv.Atoi(os.Getenv("INIT_SLEEP_MS")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		if os.Getenv("INIT_FAIL") == "1" {
			return result{err: &fcError{Message: "init failed", Type: "*errors.errorString"}}
		}
		atomic.AddInt64(&inits, 1)
		fmt.Println("initializer ran")
		return result{}
	case "2":
		fmt.Printf("prestop ran after %d invocations\n", atomic.LoadInt64(&invokes))
		return result{}
	case "3":
		return result{}
	}
	atomic.AddInt64(&invokes, 1)
	now := atomic.AddInt64(&active, 1)
	defer atomic.AddInt64(&active, -1)
	for {
		m := atomic.LoadInt64(&maxActive)
		if now <= m || atomic.CompareAndSwapInt64(&maxActive, m, now) {
			break
		}
	}
	if p := inv.header.Get("x-fc-http-params"); p != "" {
		return httpInvoke(inv, p)
	}
	event := inv.body
	if len(event) > 0 && event[0] == '{' {
		var in map[string]interface{}
		if err := json.Unmarshal(event, &in); err != nil {
			return result{err: &fcError{Message: err.Error(), Type: fmt.Sprintf("%T", err)}}
		}
		out, _ := json.Marshal(map[string]interface{}{"greeting": fmt.Sprintf("hello %v", in["name"]), "input": in})
		return result{body: out}
	}
	cmd, arg, _ := strings.Cut(string(event), ":")
	switch cmd {
	case "echo":
		return result{body: []byte(arg)}
	case "binary":
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return result{body: b}
	case "context":
		h := inv.header
		atoi := func(k string) int { n, _ := strconv.Atoi(h.Get(k)); return n }
		out, _ := json.Marshal(map[string]interface{}{
			"requestId": h.Get("x-fc-request-id"),
			"credentials": map[string]interface{}{"accessKeyId": h.Get("x-fc-access-key-id"),
				"accessKeySecret": h.Get("x-fc-access-key-secret"), "securityToken": h.Get("x-fc-security-token"),
				"present": len(h.Values("x-fc-access-key-id")) + len(h.Values("x-fc-access-key-secret")) + len(h.Values("x-fc-security-token"))},
			"function": map[string]interface{}{"name": h.Get("x-fc-function-name"), "handler": h.Get("x-fc-function-handler"),
				"memory": h.Get("x-fc-function-memory"), "timeout": inv.timeout},
			"service": map[string]interface{}{"name": h.Get("x-fc-service-name"), "logProject": h.Get("x-fc-service-logproject"),
				"logStore": h.Get("x-fc-service-logstore"), "qualifier": h.Get("x-fc-qualifier"), "versionId": h.Get("x-fc-version-id")},
			"region": h.Get("x-fc-region"), "accountId": h.Get("x-fc-account-id"), "retryCount": atoi("x-fc-retry-count"),
			"functionType": inv.fnType, "deadlineInMs": time.Until(inv.deadline).Milliseconds(),
			"inits": atomic.LoadInt64(&inits), "invokes": atomic.LoadInt64(&invokes), "pid": os.Getpid(), "uid": os.Getuid(),
		})
		return result{body: out}
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		wd, _ := os.Getwd()
		out, _ := json.Marshal(map[string]interface{}{"env": env, "cwd": wd, "args": os.Args})
		return result{body: out}
	case "error":
		return result{err: &fcError{Message: arg, Type: "*errors.errorString"}}
	case "panic":
		panic(arg)
	case "sleep":
		ms, _ := strconv.Atoi(arg)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return result{body: []byte(fmt.Sprintf("slept %d pid %d", ms, os.Getpid()))}
	case "exit":
		fmt.Println("exiting on purpose")
		os.Exit(3)
	case "hang":
		select {}
	case "alloc":
		mb, _ := strconv.Atoi(arg)
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		return result{body: []byte(fmt.Sprintf("allocated %d MB", mb))}
	case "log":
		_, file, line, _ := runtime.Caller(0)
		fmt.Printf("%s %s [INFO] %s:%d: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.999Z"), inv.id,
			file[strings.LastIndex(file, "/")+1:], line, arg)
		return result{body: []byte("logged")}
	case "readfile":
		b, err := os.ReadFile(arg)
		if err != nil {
			return result{err: &fcError{Message: err.Error(), Type: fmt.Sprintf("%T", err)}}
		}
		return result{body: b}
	case "stats":
		out, _ := json.Marshal(map[string]interface{}{"inits": atomic.LoadInt64(&inits), "invokes": atomic.LoadInt64(&invokes),
			"maxActive": atomic.LoadInt64(&maxActive), "pid": os.Getpid()})
		return result{body: out}
	}
	return result{err: &fcError{Message: "unknown command " + cmd, Type: "*errors.errorString"}}
}

type httpParams struct {
	Path       string              `json:"path"`
	Method     string              `json:"method"`
	RequestURI string              `json:"requestURI"`
	ClientIP   string              `json:"clientIP"`
	Host       string              `json:"host"`
	Queries    map[string][]string `json:"queriesMap"`
	Headers    map[string][]string `json:"headersMap"`
}

func httpInvoke(inv *invocation, raw string) result {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return result{err: &fcError{Message: err.Error(), Type: fmt.Sprintf("%T", err)}}
	}
	var p httpParams
	if err := json.Unmarshal(b, &p); err != nil {
		return result{err: &fcError{Message: err.Error(), Type: fmt.Sprintf("%T", err)}}
	}
	// As the SDK does: an http.Request from the params, headers as given.
	req, err := http.NewRequest(p.Method, p.RequestURI, bytes.NewReader(inv.body))
	if err != nil {
		return result{err: &fcError{Message: err.Error(), Type: fmt.Sprintf("%T", err)}}
	}
	req.URL.Path = p.Path
	req.Header = p.Headers
	if p.Path == "/boom" {
		panic("http boom")
	}
	body, _ := io.ReadAll(req.Body)
	out, _ := json.Marshal(map[string]interface{}{"method": req.Method, "path": req.URL.Path, "requestURI": p.RequestURI,
		"clientIP": p.ClientIP, "host": p.Host, "query": req.URL.Query(), "queriesMap": p.Queries,
		"client": req.Header.Get("X-Client"), "contentType": req.Header.Get("Content-Type"), "body": string(body)})
	status := 201
	if s := req.URL.Query().Get("status"); s != "" {
		status, _ = strconv.Atoi(s)
	}
	params, _ := json.Marshal(map[string]interface{}{"status": status,
		"headersMap": map[string][]string{"Content-Type": {"application/json"}, "X-Custom": {"yes", "twice"}, "X-Fc-Forged": {"no"}}})
	return result{body: out, header: map[string]string{"x-fc-http-params": base64.StdEncoding.EncodeToString(params)}}
}
'''


def go_build(workdir):
    """Builds GO_MAIN offline into a static binary; returns its bytes."""
    go = shutil.which("go") or "/usr/bin/go"
    if not os.path.exists(go):
        msg = "go1 tests need Debian's golang-go (scripts/test.sh installs it)"
        if os.environ.get("OPENFC_REQUIRE_EXTERNAL") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    src = Path(workdir) / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text("module fixture\n\ngo 1.19\n")
    (src / "main.go").write_text(GO_MAIN)
    cache = ROOT / ".testenv" / "gocache" if (ROOT / ".testenv").is_dir() else Path(workdir) / "gocache"
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64", "GOPROXY": "off",
           "GOFLAGS": "-buildvcs=false", "GOCACHE": str(cache), "GOPATH": str(Path(workdir) / "gopath"),
           "HOME": str(workdir)}
    p = subprocess.run([go, "build", "-trimpath", "-o", "main", "."], cwd=src, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, f"go build failed:\n{p.stdout}\n{p.stderr}"
    return (src / "main").read_bytes()


@pytest.fixture(scope="module")
def go_main(tmp_path_factory):
    return go_build(tmp_path_factory.mktemp("gofixture"))


@pytest.fixture(scope="module")
def pkg(go_main):
    """The binary zipped with its exec bit (Info-ZIP style Unix mode)."""
    return code_zip({"main": (go_main, 0o755)})


@pytest.fixture(scope="module")
def srv(sqlite_server):
    return sqlite_server


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "gosvc")


def go_fn(srv, svc, pkg, **fields):
    fields.setdefault("handler", "main")
    return new_function(srv, svc, pkg, runtime="go1", **fields)


@pytest.fixture(scope="module")
def fn(srv, svc, pkg):
    return go_fn(srv, svc, pkg, environmentVariables={"GREETING": "from-env"}, timeout=5)


def log_file(srv, svc, fn):
    return srv.data_dir / "logs" / srv.account_id / svc / f"{fn}.log"


# --- invoke, round trips, context, environment -----------------------------------------------------------------
def test_event_invoke_binary_and_json_round_trips_through_the_sdks(srv, svc, fn):
    r = srv.fc2.invoke_function(svc, fn, payload=b"echo:hello go", headers={})
    assert r.data == b"hello go"
    r = srv.fc2.invoke_function(svc, fn, payload=json.dumps({"name": "openfc", "n": 3}).encode(), headers={})
    assert json.loads(r.data) == {"greeting": "hello openfc", "input": {"name": "openfc", "n": 3}}
    inv = invoke_ok(srv, svc, fn, b"binary:")
    assert inv.body == bytes(range(256))
    from alibabacloud_fc_open20210406 import models
    from alibabacloud_tea_util.models import RuntimeOptions
    r = srv.fc21.invoke_function_with_options(svc, fn, models.InvokeFunctionRequest(body=b"echo:tea"),
                                              models.InvokeFunctionHeaders(), RuntimeOptions())
    assert r.status_code == 200 and r.body == b"tea"


def test_every_next_carries_the_headers_the_sdk_needs(srv, svc, fn):
    """x-fc-request-id, x-fc-function-deadline (epoch ms) and x-fc-function-timeout (s), or the SDK drops the
    event; the context fields come from the other headers."""
    inv = invoke_ok(srv, svc, fn, b"context:")
    ctx = inv.json()
    assert ctx["requestId"] == inv.request_id
    assert 4000 <= ctx["deadlineInMs"] <= 5000, ctx
    assert ctx["function"] == {"name": fn, "handler": "main", "memory": "128", "timeout": 5}
    assert ctx["service"] == {"name": svc, "logProject": "", "logStore": "", "qualifier": "LATEST", "versionId": ""}
    assert ctx["region"] == srv.region and ctx["accountId"] == srv.account_id
    assert ctx["credentials"]["present"] == 3, "the three credential headers are sent (empty: no role)"
    assert ctx["retryCount"] == 0 and ctx["functionType"] == "0"
    assert ctx["uid"] == 65534, "the binary runs as nobody"


def test_environment(srv, svc, fn):
    got = invoke_ok(srv, svc, fn, b"env:").json()
    env = got["env"]
    assert env["FC_RUNTIME_API"] == "127.0.0.1:19001"
    assert env["FC_RUNTIME"] == "go1"
    assert env["GREETING"] == "from-env"
    assert env["FC_FUNCTION_NAME"] == fn and env["FC_SERVICE_NAME"] == svc
    assert env["FC_FUNCTION_HANDLER"] == "main" and env["FC_FUNC_CODE_PATH"] == "/code"
    assert got["cwd"] == "/code" and got["args"] == ["/code/main"]
    assert not any(k.startswith("OPENFC") for k in env), env


def test_the_runtime_api_is_not_on_the_host():
    """It listens inside each instance's network namespace only."""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 19001), timeout=1).close()


# --- errors ----------------------------------------------------------------------------------------------------
def test_a_returned_error_is_passed_through_exactly(srv, svc, fn):
    inv = invoke(srv, svc, fn, b"error:bad input")
    assert (inv.status, inv.error_type) == (200, UNHANDLED), inv.describe()
    assert inv.body == b'{"errorMessage":"bad input","errorType":"*errors.errorString"}'
    from fc2.fc_exceptions import FcError
    with pytest.raises(FcError) as ei:
        srv.fc2.invoke_function(svc, fn, payload=b"error:sdk", headers={})
    assert ei.value.status_code == 200 and json.loads(ei.value.message)["errorMessage"] == "sdk"


def test_a_panic_has_the_sdks_body_and_the_process_keeps_serving(srv, svc, fn):
    before = invoke_ok(srv, svc, fn, b"echo:x")
    body, inv = invoke_fails(srv, svc, fn, b"panic:oops", log=True)
    assert body["errorMessage"] == "oops" and body["errorType"] == "string", body
    assert body["stackTrace"] and all(set(f) == {"path", "line", "label"} for f in body["stackTrace"]), body
    assert any(f["label"] == "main.run" for f in body["stackTrace"]), body
    assert f"FC Invoke End RequestId: {inv.request_id}, Error: Unhandled function error" in inv.log, inv.log
    after = invoke_ok(srv, svc, fn, b"echo:y")
    assert after.instance_id == before.instance_id == inv.instance_id, "a panic does not end the process"


def test_process_exit_is_unhandled_and_the_instance_is_replaced(srv, svc, pkg):
    f = go_fn(srv, svc, pkg)
    before = invoke_ok(srv, svc, f, b"echo:x")
    body, inv = invoke_fails(srv, svc, f, b"exit:", log=True)
    assert body["errorType"] == "FunctionExitedError", body
    assert "exit code 3" in body["errorMessage"] and "exiting on purpose" in body["errorMessage"], body
    assert inv.instance_id == before.instance_id
    after = invoke_ok(srv, svc, f, b"echo:z")
    assert after.body == b"z" and after.instance_id != inv.instance_id


def test_timeout_is_unhandled_at_the_deadline_and_the_instance_is_replaced(srv, svc, pkg):
    f = go_fn(srv, svc, pkg, timeout=1)
    warm = invoke_ok(srv, svc, f, b"echo:x")
    t0 = time.monotonic()
    body, inv = invoke_fails(srv, svc, f, b"hang:", log=True)
    assert 0.95 <= time.monotonic() - t0 < 3.0
    assert body["errorType"] == "FunctionTimeoutError" and "timed out" in body["errorMessage"], body
    assert f"FC Invoke Start RequestId: {inv.request_id}" in inv.log
    assert inv.instance_id == warm.instance_id
    after = invoke_ok(srv, svc, f, b"echo:y")
    assert after.instance_id != inv.instance_id


def test_memory_limit_is_enforced(srv, svc, pkg):
    f = go_fn(srv, svc, pkg, memorySize=128, timeout=20)
    assert invoke_ok(srv, svc, f, b"alloc:40").body == b"allocated 40 MB"
    body, inv = invoke_fails(srv, svc, f, b"alloc:400")
    assert body["errorType"] == "FunctionOOMError", body
    after = invoke_ok(srv, svc, f, b"echo:alive")
    assert after.instance_id != inv.instance_id


# --- logs --------------------------------------------------------------------------------------------------------
def test_log_tail_and_function_logs_have_fcs_lines(srv, svc, fn):
    inv = invoke_ok(srv, svc, fn, b"log:hello log", log=True)
    rid = inv.request_id
    lines = inv.log.splitlines()
    assert lines[0] == f"FC Invoke Start RequestId: {rid}", lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z " + re.escape(rid) + r" \[INFO\] main\.go:\d+: hello log",
                        lines[1]), lines
    assert lines[2] == f"FC Invoke End RequestId: {rid}", lines
    assert lines[3].startswith("Duration: ") and "Billed Duration" in lines[3], lines
    path = log_file(srv, svc, fn)
    wait_until(lambda: path.exists() and f"[INFO] main.go" in path.read_text() and rid in path.read_text(), 5,
               what="the function's log file")
    text = path.read_text()
    assert f"FC Invoke Start RequestId: {rid}" in text and f"FC Invoke End RequestId: {rid}" in text


# --- lifecycle ---------------------------------------------------------------------------------------------------
def test_initializer_runs_once_before_the_first_request(srv, svc, pkg):
    f = go_fn(srv, svc, pkg, initializer="initializer", initializationTimeout=5)
    first = invoke_ok(srv, svc, f, b"context:", log=True).json()
    second = invoke_ok(srv, svc, f, b"context:").json()
    assert (first["inits"], second["inits"]) == (1, 1)
    assert first["pid"] == second["pid"]
    text = log_file(srv, svc, f).read_text()
    assert "FC Initialize Start RequestId:" in text and "initializer ran" in text and "FC Initialize End RequestId:" in text


@pytest.mark.parametrize("env, words", [({"INIT_FAIL": "1"}, "init failed"),
                                        ({"INIT_SLEEP_MS": "4000"}, "timed out after 1 s")])
def test_initializer_failure_and_timeout_fail_the_start(srv, svc, pkg, env, words):
    f = go_fn(srv, svc, pkg, initializer="initializer", initializationTimeout=1, environmentVariables=env)
    t0 = time.monotonic()
    inv = invoke(srv, svc, f, b"echo:x")
    assert time.monotonic() - t0 < 3.5
    assert inv.status == 412, inv.describe()
    body = inv.json()
    assert body["ErrorCode"] == "FunctionNotStarted" and "Initializer failed" in body["ErrorMessage"], body
    assert words in body["ErrorMessage"], body


def test_pre_stop_runs_before_an_idle_instance_stops(start_server, pkg):
    s = start_server(args=["--instance-idle-timeout", "1"])
    sv = new_service(s, "gostop")
    f = go_fn(s, sv, pkg, instanceLifecycleConfig={"preStop": {"handler": "prestop", "timeout": 3}})
    invoke_ok(s, sv, f, b"echo:x")
    invoke_ok(s, sv, f, b"echo:y")
    path = log_file(s, sv, f)
    wait_until(lambda: "prestop ran after 2 invocations" in path.read_text(), 15, what="the pre-stop hook's output")
    text = path.read_text()
    assert re.search(r"FC PreStop Start RequestId: \S+", text) and "FC PreStop End RequestId:" in text, text
    wait_until(lambda: health(s)["instances"]["alive"] == 0, 10, what="the idle instance stopped")


# --- concurrency -------------------------------------------------------------------------------------------------
def test_concurrent_requests_share_one_instance(srv, svc, pkg):
    f = go_fn(srv, svc, pkg, instanceConcurrency=5, timeout=10)
    invoke_ok(srv, svc, f, b"echo:warm")
    t0 = time.monotonic()
    with ThreadPoolExecutor(5) as ex:
        runs = list(ex.map(lambda _: invoke_ok(srv, svc, f, b"sleep:1000"), range(5)))
    elapsed = time.monotonic() - t0
    assert len({r.instance_id for r in runs}) == 1, [r.instance_id for r in runs]
    assert elapsed < 2.5, f"five 1 s invocations ran one after another ({elapsed:.1f} s)"
    assert invoke_ok(srv, svc, f, b"stats:").json()["maxActive"] == 5


def test_an_sdk_that_polls_one_at_a_time_still_gets_every_request(srv, svc, pkg):
    """Capacity is what the runtime asks for: with instanceConcurrency 3 and one `/next` at a time, the three
    requests run one after another on one instance, each within its own timeout."""
    f = go_fn(srv, svc, pkg, instanceConcurrency=3, timeout=3, environmentVariables={"FIXTURE_SEQUENTIAL": "1"})
    invoke_ok(srv, svc, f, b"echo:warm")
    t0 = time.monotonic()
    with ThreadPoolExecutor(3) as ex:
        runs = list(ex.map(lambda _: invoke_ok(srv, svc, f, b"sleep:600"), range(3)))
    assert time.monotonic() - t0 >= 1.7
    assert len({r.instance_id for r in runs}) == 1
    assert invoke_ok(srv, svc, f, b"stats:").json()["maxActive"] == 1


# --- HTTP trigger --------------------------------------------------------------------------------------------------
def test_http_trigger_method_path_query_headers_body(srv, svc, pkg):
    f = go_fn(srv, svc, pkg)
    r = srv.raw.post(f"/services/{svc}/functions/{f}/triggers", json={
        "triggerName": "web", "triggerType": "http",
        "triggerConfig": {"authType": "anonymous", "methods": ["GET", "POST", "PUT"]}})
    assert r.status_code == 200, r.text
    base = f"{srv.endpoint}/2016-08-15/proxy/{svc}/{f}"
    r = requests.put(f"{base}/a/b?x=1&y=2&y=3&sp=a%20b", data=b"the body",
                     headers={"X-Client": "me", "Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["X-Custom"] == "yes, twice"
    assert "X-Fc-Forged" not in r.headers
    got = r.json()
    assert got["method"] == "PUT" and got["path"] == "/a/b" and got["body"] == "the body"
    assert got["query"] == {"x": ["1"], "y": ["2", "3"], "sp": ["a b"]}, got
    assert got["requestURI"] == f"/2016-08-15/proxy/{svc}/{f}/a/b?x=1&y=2&y=3&sp=a%20b"
    assert got["client"] == "me" and got["contentType"] == "text/plain"
    assert requests.get(f"{base}/?status=404", timeout=30).status_code == 404, "a function's own 404 is a response"
    r = requests.get(f"{base}/boom", timeout=30)
    assert r.status_code == 200 and r.headers["X-Fc-Error-Type"] == UNHANDLED
    assert r.json()["errorMessage"] == "http boom"


# --- packaging, layers, sandbox ----------------------------------------------------------------------------------
def test_a_binary_zipped_without_its_exec_bit_still_runs(srv, svc, go_main):
    f = go_fn(srv, svc, code_zip({"main": (go_main, 0o644)}))
    assert invoke_ok(srv, svc, f, b"echo:repaired").body == b"repaired"


def test_a_missing_executable_does_not_start(srv, svc, pkg):
    f = go_fn(srv, svc, pkg, handler="nope")
    inv = invoke(srv, svc, f, b"x")
    assert inv.status == 412, inv.describe()
    assert "/code/nope" in inv.json()["ErrorMessage"]


def test_layers_are_at_opt(srv, svc, pkg):
    import zips
    layer = unique("golayer").replace("_", "-")
    r = srv.raw.post(f"/layers/{layer}/versions", json={"code": {"zipFile": b64(zips.make_zip({"data/hello.txt": b"from a layer\n"}))},
                                                     "compatibleRuntime": ["go1"]})
    assert r.status_code == 200, r.text
    f = go_fn(srv, svc, pkg, layers=[r.json()["arnV2"]])
    assert invoke_ok(srv, svc, f, b"readfile:/opt/data/hello.txt").body == b"from a layer\n"
    body, _ = invoke_fails(srv, svc, f, b"readfile:/proc/1/environ")
    assert "permission denied" in body["errorMessage"] or "no such" in body["errorMessage"], body


def test_cold_start_phases_are_measured(srv, svc, pkg):
    f = go_fn(srv, svc, pkg)
    invoke_ok(srv, svc, f, b"echo:x")
    metrics = srv.metrics()
    for phase in ("sandbox", "runtime_ready", "total"):
        assert f'openfc_cold_start_seconds_count{{phase="{phase}"}}' in metrics, phase
