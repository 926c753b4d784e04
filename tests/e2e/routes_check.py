"""Routes, the admin API, the CLI, two replicas and the cache against the real binary, as the book's Admin API and CLI page (docs/src/admin.md) walks through it.

Two mock OpenAI upstreams (`mock_openai.py`, named `alpha` and `beta`) and two gateway replicas
sharing one fresh PostgreSQL database. Then, with the CLI and the admin API only:
1. `ai-gateway add-route --name support --strategy rotation --target alpha:m --target beta:m`;
2. `model: "rotation:support"` requests alternate between the two providers;
3. the route changed through replica A's admin API is served by replica B without a restart;
4. a repeated request with `x-ai-gateway-cache: on` is a cache hit, the upstream called once;
5. `ai-gateway teams set` through replica A and `budgets set` through replica B apply on both,
   `keys create --team` takes the team, and `ai-gateway spend` counts each provider's requests;
   the team's monthly budget (three requests' worth, prices from `pricing.models`, counters shared
   through Redis) admits three requests spread over both replicas and refuses the next ones with
   429 `budget_exceeded` and `x-should-retry: false`;
6. `ai-gateway smoke` passes against replica B, and fails (exit 1) once a route is broken.

    python3 tests/e2e/routes_check.py target/debug/ai-gateway
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from nodes_check import call, free_port, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = "e2e-admin-token"
KEY = "sk-e2e-client"
PG = "postgres://postgres@127.0.0.1:5432"


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql], check=True,
                   stdout=subprocess.DEVNULL)


def chat(gw, model, headers=None, text="hi"):
    status, resp_headers, body = call("POST", f"{gw}/v1/chat/completions",
                                      {"model": model, "messages": [{"role": "user", "content": text}]},
                                      {"authorization": f"Bearer {KEY}", **(headers or {})})
    assert status == 200, (status, body)
    lower = {k.lower(): v for k, v in resp_headers.items()}
    return lower.get("x-ai-gateway-provider"), lower.get("x-ai-gateway-cache"), json.loads(body)


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway")
    mock_ports = {"alpha": free_port(), "beta": free_port()}
    mocks = [subprocess.Popen([sys.executable, os.path.join(HERE, "mock_openai.py"), "--port", str(port),
                               "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, port in mock_ports.items()]
    database = f"routes_e2e_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {database}")
    work = tempfile.TemporaryDirectory()
    config = os.path.join(work.name, "gateway.yaml")
    gateways = []
    try:
        # A new user's start: the starter config, then their two providers appended to it.
        subprocess.run([binary, "init", "--config", config], check=True, stdout=subprocess.DEVNULL)
        with open(config) as f:
            text = f.read()
        providers = "providers:\n" + "".join(
            f"  - {{id: {name}, kind: openai, base_url: 'http://127.0.0.1:{port}/v1', models: [m]}}\n"
            for name, port in mock_ports.items())
        assert "\nproviders: []\n" in text, "the starter config declares an empty providers list"
        # Three completion tokens (what the mocks answer) at $1,000 per million: $0.003 a request.
        pricing = "pricing: {models: [{provider: '*', model: m, input: 0, output: 1000}]}\n"
        with open(config, "w") as f:
            f.write(text.replace("\nproviders: []\n", "\n" + providers) + pricing)
        log = open(os.path.join(work.name, "gateways.log"), "w")
        ports = [free_port(), free_port()]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for port in ports:
            env = dict(os.environ, DATABASE_URL=f"{PG}/{database}", INTERNAL_API_TOKEN=ADMIN, API_KEYS=KEY,
                       AI_GATEWAY_LISTEN=f"127.0.0.1:{port}", RUST_LOG="warn", REDIS_URL="redis://127.0.0.1:6379",
                       REDIS_PREFIX=f"{database}:")
            gateways.append(subprocess.Popen([binary, "serve", "--config", config], env=env,
                                             stdout=subprocess.DEVNULL, stderr=log))
        for url in urls:
            wait_until(f"{url} answers /livez", lambda url=url: call("GET", f"{url}/livez")[0] == 200, 30)
        a, b = urls
        cli_env = dict(os.environ, AI_GATEWAY_URL=a, AI_GATEWAY_ADMIN_TOKEN=ADMIN, AI_GATEWAY_API_KEY=KEY)

        def cli(*args, url=a):
            return subprocess.run([binary, *args], env=dict(cli_env, AI_GATEWAY_URL=url), capture_output=True,
                                  text=True, timeout=60)

        out = cli("add-route", "--name", "support", "--strategy", "rotation", "--target", "alpha:m",
                  "--target", "beta:m")
        assert out.returncode == 0, out.stderr
        listed = cli("routes", "list")
        assert listed.returncode == 0 and "support" in listed.stdout, listed
        print("ok: `ai-gateway add-route` stored the route; `routes list` shows it")

        served = [chat(a, "rotation:support")[0] for _ in range(6)]
        assert set(served) == {"alpha", "beta"} and all(x != y for x, y in zip(served, served[1:])), served
        print(f"ok: rotation:support alternates on replica A: {' '.join(served)}")

        wait_until("replica B serves the route",
                   lambda: call("GET", f"{b}/api/v1/routes/support", headers={"x-admin-token": ADMIN})[0] == 200, 10)
        changed = time.monotonic()
        status, _, body = call("PUT", f"{a}/api/v1/routes/support",
                               {"strategy": "priority", "targets": ["beta:m"]}, {"authorization": f"Bearer {ADMIN}"})
        assert status == 200, (status, body)

        def b_uses_only_beta():
            return all(chat(b, "support")[0] == "beta" for _ in range(4))

        wait_until("replica B applies the change", b_uses_only_beta, 10)
        print(f"ok: the route changed through replica A's admin API is served by replica B after "
              f"{time.monotonic() - changed:.1f} s, no restart")

        before = call("GET", f"{b}/metrics")[2].decode()
        first = chat(b, "support", {"x-ai-gateway-cache": "on"}, text="cache me")
        second = chat(b, "support", {"x-ai-gateway-cache": "on"}, text="cache me")
        assert (first[1], second[1]) == ("miss", "hit"), (first[1], second[1])
        assert first[2] == second[2], "a hit answers the stored body"
        after = call("GET", f"{b}/metrics")[2].decode()

        def hits(text):
            line = [x for x in text.splitlines() if x.startswith('gateway_cache_requests_total{result="hit"}')]
            return float(line[0].split()[-1]) if line else 0.0

        assert hits(after) - hits(before) == 1, (hits(before), hits(after))
        print("ok: a repeated request with x-ai-gateway-cache: on is a hit (miss, then hit; counted in /metrics)")

        out = cli("teams", "set", "research", "--rpm", "600", "--priority", "high")
        assert out.returncode == 0, out.stderr
        wait_until("replica B applies the team", lambda: "research" in cli("teams", "list", url=b).stdout, 10)
        out = cli("budgets", "set", "--scope", "team", "--name", "research", "--limit-usd", "0.009", "--period",
                  "monthly", url=b)
        assert out.returncode == 0, out.stderr
        wait_until("replica A applies the budget", lambda: "team:research:monthly" in cli("budgets", "list").stdout, 10)
        out = cli("keys", "create", "--name", "e2e-team-key", "--team", "research", url=b)
        assert out.returncode == 0, out.stderr
        team_key = out.stdout.splitlines()[1]
        wait_until("replica A knows the new key", lambda: call(
            "GET", f"{a}/v1/models", headers={"authorization": f"Bearer {team_key}"})[0] == 200, 15)
        refused = cli("keys", "create", "--name", "e2e-bad", "--team", "nobody")
        assert refused.returncode == 1 and "nobody" in refused.stderr, refused

        def providers_spent():
            out = cli("spend", "--group-by", "provider", "--json", url=b)
            assert out.returncode == 0, out.stderr
            return {g["group"]: g["requests"] for g in json.loads(out.stdout)["groups"]}

        wait_until("the spend report counts both providers' requests", lambda: {"alpha", "beta"} <= set(providers_spent()),
                   10)
        print(f"ok: teams and budgets set through either replica apply on both; `keys create --team` takes the team; "
              f"`spend` counts requests per provider: {providers_spent()}")

        statuses = []
        for i in range(5):
            status, resp_headers, body = call(
                "POST", f"{(a, b)[i % 2]}/v1/chat/completions",
                {"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]},
                {"authorization": f"Bearer {team_key}"})
            statuses.append(status)
            if status == 429:
                lower = {k.lower(): v for k, v in resp_headers.items()}
                error = json.loads(body)["error"]
                assert error["code"] == "budget_exceeded" and "team research" in error["message"], error
                assert lower.get("x-should-retry") == "false", lower
        assert statuses == [200, 200, 200, 429, 429], statuses
        listed = cli("budgets", "list", url=a)
        assert listed.returncode == 0 and "team:research:monthly" in listed.stdout, listed
        print(f"ok: the team's $0.009 monthly budget admits three $0.003 requests over both replicas, then refuses "
              f"with budget_exceeded: {statuses}")

        smoke = cli("smoke", url=b)
        assert smoke.returncode == 0 and "ok" in smoke.stdout, smoke
        status, _, _ = call("POST", f"{a}/api/v1/routes",
                            {"name": "broken", "strategy": "priority", "targets": ["alpha:m"]},
                            {"authorization": f"Bearer {ADMIN}"})
        assert status == 201
        mocks[0].terminate()
        mocks[0].wait()
        wait_until("replica B knows the new route",
                   lambda: call("GET", f"{b}/api/v1/routes/broken", headers={"x-admin-token": ADMIN})[0] == 200, 10)
        smoke = cli("smoke", url=b)
        assert smoke.returncode == 1 and "failed" in smoke.stdout, smoke
        print("ok: `ai-gateway smoke` passes, then exits 1 naming the broken route")
    except BaseException:
        with open(os.path.join(work.name, "gateways.log")) as f:
            sys.stderr.write("gateway logs:\n" + f.read()[-4000:])
        raise
    finally:
        for g in gateways:
            g.terminate()
        for g in gateways:
            g.wait(timeout=40)
        for m in mocks:
            m.terminate()
            m.wait()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
