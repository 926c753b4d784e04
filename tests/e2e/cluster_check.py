"""Three gateway replicas behind HAProxy, one PostgreSQL, one Redis: restarts under load, as the
book's Deployment page (docs/src/deployment.md, "Cluster test") describes them.

HAProxy (Debian's package; `scripts/test.sh` installs it) balances round robin over three replicas,
takes a replica out when its `/readyz?scope=process` fails, buffers each request body and retries
a request on the next replica when the connection fails or the replica dies before answering, with
the same `x-request-id` (HAProxy's unique id), so the gateway's idempotency runs it once. The
replicas share one fresh PostgreSQL database and one Redis prefix, each with its own history spool,
and each calls its own strict OpenAI-compatible upstream (`mock_agents.serve_chat`, 50-200 ms
before an answer, 0.4 s between stream events), so every upstream execution is known with the
replica that made it. Every prompt carries a unique marker.

Under steady load (non-streamed and streamed workers through HAProxy, a rate-limited key, a key
whose team has a budget), replica A gets SIGTERM and is restarted, then replica B gets SIGKILL and
is restarted, then a route created through replica C's admin API must be served by all three.
The check asserts:
1. no non-streamed request fails at the client, and every answer is its own request's;
2. no marker is executed twice upstream, except when its first execution was on B when B was
   killed (that answer died with B: the retry has to run it again; the figures count these);
3. every admitted request has exactly one history row (PostgreSQL, read directly) once the
   restarts and flushes are done; every stream the kill cut is counted and its row is marked
   interrupted; no stream is cut by the SIGTERM;
4. the key's rate limit holds across the replicas (admitted <= burst + rate x time + each
   restart's share while it decides alone), and so does the team's budget (never passed, and
   refusals are budget_exceeded);
5. the route created on one replica is served by the three.
It prints the figures as a table.

    python3 tests/e2e/cluster_check.py target/debug/ai-gateway
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import mock_agents
from nodes_check import call, free_port, wait_until
from routes_check import PG, psql

ADMIN = "e2e-cluster-admin-token"
KEY = "sk-e2e-cluster"
UPSTREAM_KEY = "sk-e2e-cluster-upstream"
# The rate-limited key: `RPM` sustained, `BURST` at once (the global burst caps a key's).
RPM, BURST = 60, 10
# The strict mock answers 12 completion tokens; at $1,000 per million output tokens a request with
# max_tokens 12 reserves and costs $0.012, so the budget admits `BUDGET_REQUESTS` of them.
COST, BUDGET_REQUESTS = 0.012, 20
MARKER = re.compile(r"mk-[a-z]+-[0-9]+-[0-9]+-[0-9a-f]{8}")


class Replica:
    """One gateway process, restartable on the same port, database, Redis prefix and spool."""

    def __init__(self, name, binary, work, env, upstream_port):
        self.name, self.binary = name, binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(work, f"{name}.yaml")
        self.log_path = os.path.join(work, f"{name}.log")
        with open(self.config, "w") as f:
            f.write(f"providers:\n  - {{id: mock, kind: openai, base_url: 'http://127.0.0.1:{upstream_port}/v1', "
                    f"api_key: {UPSTREAM_KEY}, models: [m]}}\n"
                    "pricing: {models: [{provider: '*', model: m, input: 0, output: 1000}]}\n")
        self.env = dict(env, AI_GATEWAY_LISTEN=f"127.0.0.1:{self.port}",
                        AI_GATEWAY__HISTORY__SPOOL_PATH=os.path.join(work, f"{name}.spool"))
        self.proc = None

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=log)
        log.close()

    def ready(self):
        wait_until(f"replica {self.name} is ready",
                   lambda: self.proc.poll() is None and call("GET", f"{self.url}/readyz?scope=process")[0] == 200, 30)


def haproxy_config(port, replicas, sock):
    """Round robin; a replica is out after one failed probe of `/readyz?scope=process` and back
    after two good ones; a request whose replica refused the connection, closed it without an
    answer or did not answer in time is sent again, whole (the body is buffered), to another
    replica, with the same `x-request-id`."""
    servers = "".join(f"  server {r.name} 127.0.0.1:{r.port} check inter 500ms fall 1 rise 2\n" for r in replicas)
    return f"""global
  stats socket {sock} mode 600 level admin
  maxconn 2000

defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 30s
  timeout http-request 10s
  option http-buffer-request
  retries 3
  retry-on conn-failure empty-response response-timeout
  option redispatch 1

frontend gateway
  bind 127.0.0.1:{port}
  unique-id-format %[uuid()]
  unique-id-header x-request-id
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /readyz?scope=process
  http-check expect status 200
{servers}"""


def haproxy_stats(sock):
    """`show stat` of the backend: retries (`wretr`), redispatches (`wredis`) and the rest."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
    return {r["svname"]: r for r in rows if r["pxname"] == "replicas"}


class Load:
    """Client workers through HAProxy, each recording every request it made."""

    def __init__(self, lb_port):
        self.lb_port = lb_port
        self.stop = threading.Event()
        self.records = []
        self.threads = []

    def worker(self, kind, index, key, pause, stream=False, max_tokens=None):
        def run():
            conn = None
            seq = 0
            while not self.stop.is_set():
                seq += 1
                marker = f"mk-{kind}-{index}-{seq}-{uuid.uuid4().hex[:8]}"
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.lb_port, timeout=60)
                record = one_request(conn, kind, marker, key, stream, max_tokens)
                self.records.append(record)
                if record["error"] is not None:
                    conn.close()
                    conn = None
                time.sleep(pause)
            if conn:
                conn.close()

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)
            assert not t.is_alive(), "a client worker is still waiting for an answer"


def one_request(conn, kind, marker, key, stream=False, max_tokens=None, model="m"):
    """One chat completion; what came back: status, error (transport or cut), whether it was a
    replay, the request id, how long it took, and for a stream whether it was cut."""
    body = {"model": model, "messages": [{"role": "user", "content": f"cluster {marker}"}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    record = {"kind": kind, "marker": marker, "stream": stream, "status": None, "error": None, "cut": False,
              "replay": False, "request_id": None, "code": None, "started": time.monotonic()}
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"authorization": f"Bearer {key}", "content-type": "application/json"})
        resp = conn.getresponse()
        record["status"] = resp.status
        record["request_id"] = resp.getheader("x-request-id")
        record["replay"] = resp.getheader("x-ai-gateway-idempotent-replay") == "true"
        if resp.status != 200 or not stream:
            data = resp.read()
            if resp.status == 200:
                text = json.loads(data)["choices"][0]["message"]["content"]
                if marker not in text:
                    record["error"] = f"answered another request: {text!r}"
            else:
                record["code"] = (json.loads(data).get("error") or {}).get("code")
        else:
            text, done = "", False
            try:
                for line in resp:
                    if line.startswith(b"data: [DONE]"):
                        done = True
                    elif line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        for choice in event.get("choices") or []:
                            text += choice["delta"].get("content") or ""
                resp.read()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if not done:
                record["cut"] = True
                record["error"] = "stream cut"
            elif marker not in text:
                record["error"] = f"streamed another request: {text!r}"
    except (OSError, http.client.HTTPException) as e:
        record["error"] = f"{type(e).__name__}: {e}"
    record["ended"] = time.monotonic()
    return record


def query(database, sql):
    """The rows `sql` reads from PostgreSQL, each a list of strings."""
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-AtF", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def history_rows(database):
    """(marker, request_id, status, stream, error_message) of every history row."""
    return query(database, "SELECT coalesce(substring(prompt from 'mk-[a-z]+-[0-9]+-[0-9]+-[0-9a-f]{8}'), ''), "
                           "request_id, status, stream, coalesce(error_message, '') FROM ai_requests")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway")
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(haproxy, os.X_OK):
        raise SystemExit("FAIL: haproxy is not installed (scripts/test.sh installs Debian's package)")
    clock = time.monotonic()
    upstreams = [mock_agents.serve_chat(UPSTREAM_KEY, latency=(0.05, 0.2), event_delay=0.4) for _ in range(3)]
    database = f"cluster_e2e_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {database}")
    work = tempfile.TemporaryDirectory()
    env = dict(os.environ, DATABASE_URL=f"{PG}/{database}", REDIS_URL="redis://127.0.0.1:6379",
               REDIS_PREFIX=f"{database}:", INTERNAL_API_TOKEN=ADMIN, API_KEYS=KEY, RUST_LOG="warn",
               LOG_PROMPTS="true", RATE_LIMIT_REPLICAS="3", RATE_LIMIT_BURST=str(BURST),
               # Only the key's own rate: the burst alone would turn the global limit on.
               RATE_LIMIT_ENABLED="false",
               SHUTDOWN_DRAIN_SECONDS="2", SHUTDOWN_GRACE_SECONDS="20",
               AI_GATEWAY__AUTH__REFRESH_SECONDS="1", AI_GATEWAY__RELOAD__POLL_SECONDS="1")
    for name in ("RATE_LIMIT_RPM", "API_KEY"):
        env.pop(name, None)
    replicas = [Replica(name, binary, work.name, env, up.server_address[1])
                for name, up in zip("ABC", upstreams)]
    a, b, c = replicas
    lb_port = free_port()
    sock = os.path.join(work.name, "haproxy.sock")
    lb_config = os.path.join(work.name, "haproxy.cfg")
    with open(lb_config, "w") as f:
        f.write(haproxy_config(lb_port, replicas, sock))
    lb = None
    load = None
    try:
        subprocess.run([haproxy, "-c", "-q", "-f", lb_config], check=True)
        for r in replicas:
            r.start()
        for r in replicas:
            r.ready()
        with open(os.path.join(work.name, "haproxy.log"), "w") as lb_log:
            lb = subprocess.Popen([haproxy, "-db", "-f", lb_config], stdout=subprocess.DEVNULL, stderr=lb_log)
        wait_until("HAProxy sees the three replicas up",
                   lambda: all(haproxy_stats(sock)[r.name]["status"] == "UP" for r in replicas), 15)

        admin = {"authorization": f"Bearer {ADMIN}"}
        status, _, body = call("PUT", f"{a.url}/api/v1/teams/cluster", {}, admin)
        assert status in (200, 201), (status, body)
        budget = {"scope": "team", "name": "cluster", "limit_usd": round(COST * BUDGET_REQUESTS, 6),
                  "period": "monthly"}
        status, _, body = call("POST", f"{a.url}/api/v1/budgets", budget, admin)
        assert status == 201, (status, body)
        status, _, body = call("POST", f"{a.url}/api/v1/keys", {"name": "cluster-limited", "rpm": RPM}, admin)
        assert status == 201, (status, body)
        limited = json.loads(body)["key"]
        wait_until("every replica has the team", lambda: all(
            call("GET", f"{r.url}/api/v1/teams", headers=admin)[2].count(b'"cluster"') for r in replicas), 10)
        status, _, body = call("POST", f"{a.url}/api/v1/keys", {"name": "cluster-budget", "team": "cluster"}, admin)
        assert status == 201, (status, body)
        budgeted = json.loads(body)["key"]
        # Each replica loads every key at once: the second key known means the first is too (asking
        # with the rate-limited key itself would spend its burst).
        for r in replicas:
            wait_until(f"replica {r.name} knows the keys and the budget", lambda r=r: call(
                "GET", f"{r.url}/v1/models", headers={"authorization": f"Bearer {budgeted}"})[0] == 200
                and b"team:cluster:monthly" in call("GET", f"{r.url}/api/v1/budgets", headers=admin)[2], 15)
        print(f"ok: three replicas behind HAProxy on 127.0.0.1:{lb_port}; keys, team and budget made through "
              f"replica A are known to all three")

        load = Load(lb_port)
        for i in range(6):
            load.worker("chat", i, KEY, 0.02)
        for i in range(4):
            load.worker("stream", i, KEY, 0.05, stream=True)
        load.worker("limited", 0, limited, 0.1)
        load.worker("budget", 0, budgeted, 0.5, max_tokens=12)
        load_started = time.monotonic()
        time.sleep(4)

        def relays_stream(index, least, most):
            """Replica `index` relays a stream that has run for `least` to `most` seconds."""
            return any(req["body"].get("stream") and "status" not in req
                       and least < time.monotonic() - req["at"] < most
                       for req in list(upstreams[index].state.requests))
        # A stream that has just started on A runs past the drain: the grace must let it finish.
        wait_until("replica A relays a stream", lambda: relays_stream(0, 0.0, 0.5), 10)
        a.proc.send_signal(signal.SIGTERM)
        sigterm_at = time.monotonic()
        code = a.proc.wait(timeout=40)
        assert code == 0, f"replica A exited with {code} after SIGTERM"
        a_stopped = time.monotonic()
        a.start()
        a.ready()
        print(f"ok: replica A drained and exited 0 {a_stopped - sigterm_at:.1f} s after SIGTERM, and is back")
        time.sleep(3)

        # A stream B has relayed for a while: its answer has started at the client.
        wait_until("replica B relays a stream", lambda: relays_stream(1, 0.8, 60), 10)
        b.proc.kill()
        killed_at = time.monotonic()
        b.proc.wait(timeout=10)
        time.sleep(1)
        b.start()
        b.ready()
        print(f"ok: replica B killed (SIGKILL) and restarted on its spool in {time.monotonic() - killed_at:.1f} s")

        status, _, body = call("POST", f"{c.url}/api/v1/routes",
                               {"name": "cluster-route", "strategy": "priority", "targets": ["mock:m"]}, admin)
        assert status == 201, (status, body)
        route_made = time.monotonic()
        seen = {}
        admin_records = []
        for r in replicas:
            def serves(r=r):
                conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
                try:
                    record = one_request(conn, "admin", f"mk-admin-0-{len(admin_records)}-{uuid.uuid4().hex[:8]}",
                                         KEY, model="cluster-route")
                finally:
                    conn.close()
                admin_records.append(record)
                return record["status"] == 200 and record["error"] is None
            wait_until(f"replica {r.name} serves the route made on replica C", serves, 10)
            seen[r.name] = time.monotonic() - route_made
        print("ok: the route created through replica C's admin API is served by "
              + ", ".join(f"{n} after {s:.1f} s" for n, s in seen.items()))
        time.sleep(max(0.0, 20 - (time.monotonic() - load_started)))
        load.finish()
        load_seconds = time.monotonic() - load_started
        stats = haproxy_stats(sock)["BACKEND"]
        records = load.records + admin_records

        # 1. No non-streamed request fails; every answer is its own request's.
        failed = [r for r in records if not r["stream"] and r["kind"] != "admin" and (
            r["error"] is not None or not (r["status"] == 200 or r["status"] == 429 and r["kind"] in ("limited", "budget")))]
        assert not failed, f"{len(failed)} non-streamed requests failed: {failed[:5]}"
        wrong = [r for r in records if r["error"] and r["error"] != "stream cut"]
        assert not wrong, wrong[:5]
        refused_streams = [r for r in records if r["stream"] and r["status"] != 200]
        assert not refused_streams, refused_streams[:5]
        print("ok: no non-streamed request failed at the client; every answer carried its own request's marker")

        # 2. No marker executed twice upstream, but for a first execution that died with B.
        by_marker = {r["marker"]: r for r in records}
        executions = {}
        for index, upstream in enumerate(upstreams):
            for req in upstream.state.requests:
                text = json.dumps((req["body"] or {}).get("messages"))
                marker = MARKER.search(text).group(0)
                executions.setdefault(marker, []).append((replicas[index].name, req["at"], req.get("status")))
        died_with_b = {m: [e for e in ex if e[0] == "B" and e[1] < killed_at] for m, ex in executions.items()}
        twice = {m: ex for m, ex in executions.items() if len(ex) - len(died_with_b[m]) > 1}
        assert not twice, f"executed twice upstream: {list(twice.items())[:5]}"
        rerun = {m for m, ex in executions.items() if len(ex) > 1}
        # What B's upstream did with the calls B was making when it died, and how long the retries
        # waited for B's claims to lapse before running.
        first_calls = [e[2] for m in rerun for e in died_with_b[m]]
        waited = [e[1] - killed_at for m in rerun for e in executions[m] if e not in died_with_b[m]]
        unknown = set(executions) - set(by_marker)
        assert not unknown, f"upstream saw markers no client sent: {sorted(unknown)[:5]}"
        not_admitted = [m for m in executions if by_marker[m]["status"] != 200]
        assert not not_admitted, f"executed upstream but refused at the client: {not_admitted[:5]}"
        print(f"ok: no request executed twice upstream ({len(executions)} executed; {len(rerun)} run again after "
              f"their first execution died with replica B)")

        # 3. Exactly one history row per admitted request; the cut streams' rows are interrupted.
        admitted = {r["marker"] for r in records if r["status"] == 200}
        cut = [r for r in records if r["cut"]]
        assert cut, "the kill cut no stream"
        drained = [m for m, ex in executions.items() if by_marker[m]["stream"]
                   and any(e[0] == "A" and e[1] < sigterm_at for e in ex) and by_marker[m]["ended"] > sigterm_at]
        assert drained and not any(by_marker[m]["cut"] for m in drained), drained
        early_cuts = [r for r in cut if not killed_at <= r["ended"] <= killed_at + 5]
        assert not early_cuts, f"streams cut other than by the kill: {early_cuts[:5]}"

        def counted():
            rows = {}
            for marker, *rest in history_rows(database):
                rows.setdefault(marker, []).append(rest)
            return rows

        def settled():
            rows = counted()
            return all(m in rows for m in admitted)
        wait_until("every admitted request has its history row", settled, 20)
        time.sleep(1)  # a duplicate would come with the same flush
        rows = counted()
        extra = {m: rows.get(m, []) for m in admitted
                 if len(rows.get(m, [])) != 1
                 and not (m in rerun and len(rows[m]) <= len([e for e in executions[m] if e[2] == 200]))}
        assert not extra, f"admitted requests without exactly one row: {list(extra.items())[:5]}"
        refused = {r["marker"] for r in records if r["status"] != 200}
        doubled = [m for m in refused if len(rows.get(m, [])) > 1]
        assert not doubled, doubled[:5]
        unknown_rows = set(rows) - set(by_marker) - {""}
        assert not unknown_rows, sorted(unknown_rows)[:5]
        for r in cut:
            (_, status, stream, error), = rows[r["marker"]]
            assert status == "error" and stream == "t" and error.startswith("interrupted"), (r, rows[r["marker"]])
        print(f"ok: {len(admitted)} admitted requests, one history row each; the {len(cut)} streams the kill cut "
              f"have rows marked interrupted")

        # 4. The rate limit and the budget hold across the replicas.
        limited_records = [r for r in records if r["kind"] == "limited"]
        passed = [r for r in limited_records if r["status"] == 200]
        throttled = [r for r in limited_records if r["status"] == 429]
        assert throttled and all(r["code"] == "rate_limit_exceeded" for r in throttled), throttled[:3]
        span = max(r["ended"] for r in limited_records) - min(r["started"] for r in limited_records)
        # Two restarts: each restarted replica may decide alone (its third of the burst) until its
        # Redis connection is up.
        bound = BURST + RPM * span / 60 + 2 * -(-BURST // 3)
        assert len(passed) <= bound, (len(passed), bound)
        budget_records = [r for r in records if r["kind"] == "budget"]
        spent = [r for r in budget_records if r["status"] == 200]
        over = [r for r in budget_records if r["status"] == 429]
        assert over and all(r["code"] == "budget_exceeded" for r in over), over[:3]
        assert BUDGET_REQUESTS - 1 <= len(spent) <= BUDGET_REQUESTS, len(spent)
        assert max(r["started"] for r in spent) < min(r["started"] for r in over), "admitted after a refusal"
        (ledger,), = query(database, "SELECT coalesce(sum(amount_usd), 0) FROM spend_ledger "
                                     "WHERE scope = 'team' AND name = 'cluster'")
        (charged,), = query(database, "SELECT coalesce(sum(cost_usd), 0) FROM ai_requests WHERE team = 'cluster'")
        assert float(ledger) <= COST * BUDGET_REQUESTS + 1e-9, ledger
        assert abs(float(charged) - float(ledger)) < 1e-9, (charged, ledger)
        print(f"ok: the key's limit ({RPM}/min, burst {BURST}) admitted {len(passed)} of {len(limited_records)} "
              f"in {span:.0f} s (bound {bound:.0f}); the budget admitted {len(spent)} of {BUDGET_REQUESTS} "
              f"requests' worth, then refused {len(over)} with budget_exceeded")

        plain = [r["ended"] - r["started"] for r in records if r["kind"] == "chat"]
        streams = [r for r in records if r["kind"] == "stream"]
        table = [
            ("load", f"{load_seconds:.0f} s, 6 non-streamed + 4 streamed workers, 1 rate-limited, 1 budgeted"),
            ("requests", f"{len(load.records)} through HAProxy ({len(plain)} non-streamed on the main key, "
                         f"{len(streams)} streams)"),
            ("non-streamed latency", f"p50 {percentile(plain, 0.5) * 1000:.0f} ms, "
                                     f"p99 {percentile(plain, 0.99) * 1000:.0f} ms, "
                                     f"max {max(plain) * 1000:.0f} ms"),
            ("non-streamed failures", "0"),
            ("requests HAProxy sent again", f"{int(stats['wretr']) + int(stats['wredis'])} "
                                            f"({stats['wretr']} retries, {stats['wredis']} redispatches)"),
            ("idempotent replays seen", str(sum(r["replay"] for r in records))),
            ("SIGTERM: drain to exit", f"{a_stopped - sigterm_at:.1f} s; {len(drained)} streams open, 0 cut"),
            ("SIGKILL: streams cut", str(len(cut))),
            ("executed twice upstream", f"0; {len(rerun)} run again after their call died with B" + (
                f" ({first_calls.count('abandoned')} of those calls abandoned upstream; run "
                f"{min(waited):.1f}-{max(waited):.1f} s after the kill)" if rerun else "")),
            ("history rows", f"{sum(len(rows[m]) for m in admitted)} for {len(admitted)} admitted requests "
                             f"(+{sum(len(rows.get(m, [])) for m in refused)} for refused ones)"),
            ("rate limit", f"{len(passed)} admitted of {len(limited_records)} (bound {bound:.0f})"),
            ("budget", f"{len(spent)} admitted of {BUDGET_REQUESTS} requests' worth (${float(ledger):.3f} of "
                       f"${COST * BUDGET_REQUESTS:.2f} spent), {len(over)} refused"),
            ("route change seen by A, B, C", ", ".join(f"{s:.1f} s" for s in seen.values())),
            ("wall clock", f"{time.monotonic() - clock:.0f} s"),
        ]
        width = max(len(k) for k, _ in table)
        print("\n".join(f"| {k.ljust(width)} | {v} |" for k, v in table))
        print("cluster check passed")
    except BaseException:
        for r in replicas:
            with open(r.log_path) as f:
                sys.stderr.write(f"replica {r.name} log:\n" + f.read()[-3000:])
        raise
    finally:
        if load:
            load.stop.set()
        if lb:
            lb.terminate()
            lb.wait()
        for r in replicas:
            if r.proc and r.proc.poll() is None:
                r.proc.terminate()
        for r in replicas:
            if r.proc:
                r.proc.wait(timeout=40)
        for up in upstreams:
            up.shutdown()
        keys = subprocess.run(["redis-cli", "--scan", "--pattern", f"{database}:*"], capture_output=True,
                              text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(["redis-cli", "DEL", *keys[i:i + 500]], capture_output=True)
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
