"""End-to-end check of the real coding-agent CLIs through the gateway binary.

Claude Code (`claude -p`) and the Codex CLI (`codex exec`), as installed by `scripts/agents.sh`, each
run one tool-using turn through the gateway to four strict mock upstreams (`mock_agents.py`): an
`anthropic` provider, an `openai` provider that only speaks chat completions (`responses: auto`
finds out and bridges), an `openai` provider with native Responses, and a `gemini` provider. The
mock asks the agent to read a file, the agent runs its tool and sends the result, the mock quotes
it, and the check finds the file's secret in what the CLI printed. Codex also runs with its default
model (no `model` in its config), whose tools arrive in an `additional_tools` input item and whose
file read goes through its JavaScript `exec` custom tool, to the chat-only and the native upstream,
and with `gpt-5.5` (a `custom` apply_patch and OpenAI's `tool_search` beside its functions) to the
chat-only one.
Then the official SDKs: `openai` Responses with `store: true` and `previous_response_id` on a
bridged provider (created and streamed), and `anthropic` `messages.count_tokens` on an anthropic
provider (passed through) and on an openai one (estimated by the gateway).

Each run gets its own gateway and upstream; one line per run says what the CLI printed, or which
run failed and why (the upstream's refusal, the gateway's log, the CLI's output). Exits 1 if any
run failed. Usage: python tests/e2e/agents_check.py path/to/ai-gateway [--agents DIR] [--only NAME]
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import anthropic
import openai

sys.path.insert(0, os.path.dirname(__file__))
import mock_agents  # noqa: E402
from openai_sdk_check import free_port, wait_ready  # noqa: E402

CLIENT_KEY = "sk-gw-agents-client"
UPSTREAM_KEYS = {"anthropic": "sk-ant-upstream", "chat": "sk-chat-upstream", "responses": "sk-oai-upstream",
                 "gemini": "gemini-upstream-key"}
CLI_TIMEOUT = 240
# The model names the agents ask for: Claude Code's default and small models, the name Codex is
# configured with (one Codex has no metadata for, so it sends plain top-level tools), and Codex's
# default model (tools inside the input, file reads through its JavaScript `exec` custom tool).
CLAUDE_MODELS = ["claude-opus-5-5", "claude-haiku-5-5", "claude-haiku-4-5", "claude-haiku-4-5-20251001"]
CODEX_MODEL = "gpt-5"
CODEX_DEFAULT_MODEL = "gpt-6.2-sol"
# A Codex catalogue model that sends a `custom` apply_patch and OpenAI's `tool_search` beside its functions.
CODEX_PATCH_MODEL = "gpt-5.5"
# What each provider kind calls the model the agents' names are mapped to.
UPSTREAM_MODEL = {"anthropic": "claude-sonnet-4-5", "chat": "qwen3-coder", "responses": "gpt-5",
                  "gemini": "gemini-3-pro-preview"}
SERVE = {"anthropic": mock_agents.serve_anthropic, "chat": mock_agents.serve_chat,
         "responses": mock_agents.serve_responses, "gemini": mock_agents.serve_gemini}


def provider_yaml(target, upstream_port):
    base = {"anthropic": f"http://127.0.0.1:{upstream_port}", "gemini": f"http://127.0.0.1:{upstream_port}/v1beta"}
    kind = {"chat": "openai", "responses": "openai"}.get(target, target)
    names = CLAUDE_MODELS + [CODEX_MODEL, CODEX_DEFAULT_MODEL, CODEX_PATCH_MODEL]
    aliases = {name: UPSTREAM_MODEL[target] for name in names if name != UPSTREAM_MODEL[target]}
    lines = [f"  - id: {target}-up", f"    kind: {kind}",
             f"    base_url: {base.get(target, f'http://127.0.0.1:{upstream_port}/v1')}",
             f"    api_key: {UPSTREAM_KEYS[target]}",
             f"    models: [{UPSTREAM_MODEL[target]}]",
             f"    model_aliases: {json.dumps(aliases)}"]
    if target in ("chat", "responses"):
        lines.append(f"    responses: {'auto' if target == 'chat' else 'native'}")
    return "\n".join(lines)


class Gateway:
    """The gateway binary with one provider in front of one fresh mock upstream."""

    def __init__(self, binary, target, scratch, secret_path=""):
        self.target = target
        self.upstream = SERVE[target](UPSTREAM_KEYS[target], secret_path)
        self.port = free_port()
        config = f"""
listen: 127.0.0.1:{self.port}
auth:
  api_keys: ["{CLIENT_KEY}"]
providers:
{provider_yaml(target, self.upstream.server_address[1])}
routing:
  max_retries: 0
  timeout_seconds: 60
  first_token_timeout_seconds: 60
"""
        config_path = os.path.join(scratch, "gateway.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        env = dict(os.environ, RUST_LOG="warn", LOG_FORMAT="json", DATABASE_URL=f"sqlite://{scratch}/history.db")
        for name in ("API_KEYS", "API_KEY", "AUTH_REQUIRED", "RATE_LIMIT_ENABLED", "REDIS_URL", "AI_NODES",
                     "AI_GATEWAY_CONFIG", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
            env.pop(name, None)
        self.log_path = os.path.join(scratch, "gateway.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "serve", "--config", config_path], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_ready(f"http://127.0.0.1:{self.port}/readyz", self.proc)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines=6):
        self.log.flush()
        with open(self.log_path) as f:
            interesting = [line.strip() for line in f if '"WARN"' in line or '"ERROR"' in line]
        return interesting[-lines:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        self.upstream.shutdown()


def run_claude(agents, gateway, home, workdir):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "ANTHROPIC_BASE_URL": gateway.url,
           "ANTHROPIC_API_KEY": CLIENT_KEY, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1"}
    prompt = "Read the file secret.txt in the current directory and tell me what it says."
    # dontAsk refuses every tool not allowed up front; Read is allowed, so -p can run it unattended.
    cmd = [os.path.join(agents, "node_modules/.bin/claude"), "-p", prompt, "--permission-mode", "dontAsk",
           "--allowedTools", "Read"]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)


def run_codex(agents, gateway, home, workdir, model=CODEX_MODEL):
    """`codex exec` asking for `model`, or, with `model=None`, for its own default model."""
    os.makedirs(os.path.join(home, ".codex"), exist_ok=True)
    with open(os.path.join(home, ".codex", "config.toml"), "w") as f:
        f.write(f"""{f'model = "{model}"' if model else ""}
model_provider = "gateway"

[model_providers.gateway]
name = "ai-gateway"
base_url = "{gateway.url}/v1"
env_key = "AI_GATEWAY_KEY"
wire_api = "responses"
request_max_retries = 1
stream_max_retries = 1
""")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "AI_GATEWAY_KEY": CLIENT_KEY}
    prompt = "Print the contents of the file secret.txt in the current directory and tell me what it says."
    cmd = [os.path.join(agents, "node_modules/.bin/codex"), "exec", "--skip-git-repo-check", "-C", workdir, prompt]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)


def tail(text, lines=6, width=300):
    return [line[:width] for line in text.strip().splitlines()[-lines:]]


def upstream_checks(agent, target, requests):
    """What must have reached the upstream beyond the round trip itself; returns problems."""
    problems = []
    ok = [r for r in requests if r.get("status") == 200]
    if not ok:
        return ["no request reached the upstream and was accepted"]
    key_headers = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}.get(target, "authorization")
    for r in requests:
        if CLIENT_KEY in json.dumps(r["headers"]):
            problems.append(f"the client's key reached the upstream on {r['path']}")
        if UPSTREAM_KEYS[target] not in r["headers"].get(key_headers, ""):
            problems.append(f"the provider's key did not reach the upstream as {key_headers}")
    if target == "anthropic" and agent == "claude":
        betas = [r["headers"].get("anthropic-beta", "") for r in ok]
        if not any(mock_agents.CONTEXT_BETA in b for b in betas):
            problems.append("anthropic-beta with context-management never reached the upstream")
    if agent == "codex-default":
        return problems + default_model_checks(target, ok)
    if agent == "codex-patch":
        tools = {t["function"]["name"] for r in ok for t in r["body"].get("tools") or []}
        if not {"exec_command", "apply_patch"} <= tools:
            problems.append(f"exec_command and the apply_patch custom tool did not reach chat: {sorted(tools)}")
    if target == "chat" and agent == "codex":
        tools = [t["function"]["name"] for r in ok for t in r["body"].get("tools") or []]
        if not any(name.startswith("multi_agent_v1__") for name in tools):
            problems.append(f"the multi_agent_v1 namespace did not reach chat as flat functions: {sorted(set(tools))}")
        if not any(r["path"] == "/v1/responses" for r in requests):
            problems.append("responses: auto never tried the upstream's /v1/responses")
    if target == "responses" and agent == "codex":
        kinds = [t.get("type") for r in ok for t in r["body"].get("tools") or []]
        if "namespace" not in kinds or "web_search" not in kinds:
            problems.append(f"native Responses did not get Codex's tools as sent: {sorted(set(kinds))}")
    return problems


def default_model_checks(target, ok):
    """Codex's default model: its `additional_tools` item, and the `exec` custom tool round trip."""
    problems = []
    models = {r["body"].get("model") for r in ok}
    if models != {UPSTREAM_MODEL[target]}:
        problems.append(f"the upstream was asked for {sorted(models)}, not the routed {UPSTREAM_MODEL[target]}")
    if target == "chat":
        tools = [t["function"]["name"] for r in ok for t in r["body"].get("tools") or []]
        if "functions__exec" not in tools:
            problems.append(f"the exec custom tool did not reach chat as functions__exec: {sorted(set(tools))}")
        answered = [m for r in ok for m in r["body"]["messages"] if m.get("role") == "tool"]
        if not answered:
            problems.append("no tool message (the exec call's output) reached chat")
    if target == "responses":
        items = [i.get("type") for r in ok for i in r["body"].get("input") or [] if isinstance(i, dict)]
        for kind in ("additional_tools", "custom_tool_call", "custom_tool_call_output"):
            if kind not in items:
                problems.append(f"native Responses never got a `{kind}` input item: {sorted(set(items))}")
    return problems


def cli_run(binary, agents, agent, target):
    scratch = tempfile.mkdtemp(prefix=f"agents-{agent}-{target}-")
    home, workdir = os.path.join(scratch, "home"), os.path.join(scratch, "work")
    os.makedirs(home)
    os.makedirs(workdir)
    secret = f"agents-secret-{secrets.token_hex(6)}"
    secret_path = os.path.join(workdir, "secret.txt")
    with open(secret_path, "w") as f:
        f.write(secret + "\n")
    gateway = Gateway(binary, target, scratch, secret_path)
    started = time.time()
    try:
        try:
            if agent == "claude":
                done = run_claude(agents, gateway, home, workdir)
            else:
                model = {"codex-default": None, "codex-patch": CODEX_PATCH_MODEL}.get(agent, CODEX_MODEL)
                done = run_codex(agents, gateway, home, workdir, model)
            out, err, code = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as timeout:
            out = timeout.stdout.decode() if isinstance(timeout.stdout, bytes) else timeout.stdout or ""
            err = timeout.stderr.decode() if isinstance(timeout.stderr, bytes) else timeout.stderr or ""
            code = f"timeout after {CLI_TIMEOUT}s"
        requests = gateway.upstream.state.requests
        problems = []
        if secret not in out:
            problems.append(f"the file's secret is not in the CLI's stdout (exit {code})")
        problems += upstream_checks(agent, target, requests)
        summary = " ".join(out.split())[-160:] or "(no stdout)"
        label = {"claude": "claude -p", "codex": "codex exec",
                 "codex-default": f"codex exec ({CODEX_DEFAULT_MODEL}, its default)",
                 "codex-patch": f"codex exec ({CODEX_PATCH_MODEL})"}[agent] + f" -> {target}"
        seconds = time.time() - started
        if not problems:
            print(f"PASS {label} ({seconds:.0f}s, {len(requests)} upstream calls): {summary}", flush=True)
            return True
        print(f"FAIL {label} ({seconds:.0f}s, {len(requests)} upstream calls): {summary}", flush=True)
        for problem in problems:
            print(f"     - {problem}")
        for r in [r for r in requests if r.get("status") != 200][:3]:
            print(f"     upstream answered {r.get('status')} to {r['path']}: {json.dumps(r.get('error'))[:400]}")
        for line in gateway.log_tail():
            print(f"     gateway log: {line[:400]}")
        for line in tail(out, 4):
            print(f"     cli stdout: {line}")
        for line in tail(err, 6):
            print(f"     cli stderr: {line}")
        return False
    finally:
        gateway.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def check(label, fn, *args):
    try:
        detail = fn(*args)
        print(f"PASS {label}: {detail}", flush=True)
        return True
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
        body = getattr(e, "body", None)
        status = getattr(e, "status_code", None)
        print(f"FAIL {label}: {type(e).__name__} {status or ''} {json.dumps(body)[:400] if body else str(e)[:400]}",
              flush=True)
        return False


def conversation_reached_upstream(upstream, first_input, first_answer, second_input):
    """The bridged continuation must send the stored turn before the new input."""
    sent = upstream.state.requests[-1]["body"]["messages"]
    turns = [(m["role"], (m["content"] if isinstance(m["content"], str)
                          else "".join(p.get("text", "") for p in m["content"])).strip()) for m in sent]
    expected = [("user", first_input), ("assistant", first_answer.strip()), ("user", second_input)]
    assert turns == expected, f"upstream got {turns}, expected {expected}"
    return len(sent)


def responses_chain_created(gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    first = client.responses.create(model=CODEX_MODEL, input="Remember the word kiwi.", store=True)
    assert first.output_text == "echo: Remember the word kiwi.", first
    second = client.responses.create(model=CODEX_MODEL, input="Which word?", previous_response_id=first.id,
                                     store=True)
    assert second.output_text == "echo: Which word?", second
    count = conversation_reached_upstream(gateway.upstream, "Remember the word kiwi.", first.output_text,
                                         "Which word?")
    return f"{first.id} -> {second.id}, {count} messages upstream, answer {second.output_text!r}"


def responses_chain_streamed(gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    with client.responses.stream(model=CODEX_MODEL, input="Remember the word fig.", store=True) as stream:
        first = stream.get_final_response()
    assert first.output_text.strip() == "echo: Remember the word fig.", first
    with client.responses.stream(model=CODEX_MODEL, input="Which word?", previous_response_id=first.id,
                                 store=True) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        second = stream.get_final_response()
    assert text.strip() == "echo: Which word?" and second.status == "completed", (text, second)
    count = conversation_reached_upstream(gateway.upstream, "Remember the word fig.", first.output_text,
                                         "Which word?")
    return f"{first.id} -> {second.id}, {count} messages upstream, answer {text.strip()!r}"


COUNT_REQUEST = {"model": "claude-opus-5-5", "system": "Be brief.",
                 "messages": [{"role": "user", "content": "How many tokens is this?"}]}


def count_tokens_passthrough(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    raw = client.messages.with_raw_response.count_tokens(**COUNT_REQUEST)
    counted = raw.parse()
    calls = [r for r in gateway.upstream.state.requests if r["path"].startswith("/v1/messages/count_tokens")]
    assert calls and gateway.upstream.state.counted, gateway.upstream.state.requests
    assert counted.input_tokens == gateway.upstream.state.counted[-1], (counted, gateway.upstream.state.counted)
    assert raw.headers.get("x-ai-gateway-token-count") != "estimate", dict(raw.headers)
    return f"input_tokens {counted.input_tokens} from the upstream's count_tokens"


def count_tokens_estimate(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    raw = client.messages.with_raw_response.count_tokens(**COUNT_REQUEST)
    counted = raw.parse()
    assert raw.headers.get("x-ai-gateway-token-count") == "estimate", dict(raw.headers)
    assert counted.input_tokens > 0, counted
    assert not gateway.upstream.state.requests, gateway.upstream.state.requests
    return f"input_tokens {counted.input_tokens}, x-ai-gateway-token-count: estimate"


def sdk_check(binary, target, label, fn):
    scratch = tempfile.mkdtemp(prefix=f"agents-sdk-{target}-")
    gateway = Gateway(binary, target, scratch)
    try:
        return check(label, fn, gateway)
    finally:
        gateway.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default="target/debug/ai-gateway")
    parser.add_argument("--agents", default=".agents", help="folder where scripts/agents.sh installed the CLIs")
    parser.add_argument("--only", help="run only the runs whose label contains this (e.g. codex, gemini, sdk)")
    args = parser.parse_args()
    binary, agents = os.path.abspath(args.binary), os.path.abspath(args.agents)
    runs = [(agent, target) for agent in ("claude", "codex") for target in ("anthropic", "chat", "responses", "gemini")]
    runs += [("codex-default", target) for target in ("chat", "responses")]
    runs.append(("codex-patch", "chat"))
    sdk = [("chat", "openai SDK responses.create store + previous_response_id (bridged)", responses_chain_created),
           ("chat", "openai SDK responses.stream store + previous_response_id (bridged)", responses_chain_streamed),
           ("anthropic", "anthropic SDK messages.count_tokens (anthropic provider)", count_tokens_passthrough),
           ("chat", "anthropic SDK messages.count_tokens (openai provider)", count_tokens_estimate)]
    results = []
    for agent, target in runs:
        if args.only and args.only not in f"{agent} {target}":
            continue
        results.append(cli_run(binary, agents, agent, target))
    for target, label, fn in sdk:
        if args.only and args.only not in f"sdk {label}":
            continue
        results.append(sdk_check(binary, target, label, fn))
    failed = results.count(False)
    print(f"coding agents end-to-end: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
