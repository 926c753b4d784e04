"""A mock GPU node for trying the node pool by hand, stdlib only.

It speaks vLLM's OpenAI server as the gateway reads it (https://docs.vllm.ai/en/latest/serving/
openai_compatible_server.html): `GET /v1/models` lists the one loaded model, `GET /metrics` has
`vllm:num_requests_running` and `vllm:num_requests_waiting`, `GET /health` answers 200 with no
body, and `POST /v1/chat/completions` answers a `chat.completion` naming the node. It also has
seed 000's worker job API: `POST /generate` returns a `job_id`, `GET /status/<job_id>` and
`GET /download/<job_id>` answer for jobs this node accepted (404 for others).

    python3 tests/e2e/mock_node.py --port 9001 --model llama-3.1-8b
"""

import argparse
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model = "mock"
    port = 0
    jobs = set()
    counter = itertools.count(1)
    running = 0
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        print(f"[node :{self.port}] {self.command} {self.path}", flush=True)

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        url = f"http://127.0.0.1:{self.port}"
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 1733000000, "owned_by": "vllm"}]})
        elif self.path == "/metrics":
            text = (
                "# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{model_name="{self.model}"}} {float(Handler.running)}\n'
                "# TYPE vllm:num_requests_waiting gauge\n"
                f'vllm:num_requests_waiting{{model_name="{self.model}"}} 0.0\n'
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
        elif self.path == "/health":
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path.startswith("/status/") and self.path[8:] in self.jobs:
            self.send_json(200, {"job_id": self.path[8:], "status": "done", "node": url})
        elif self.path.startswith("/download/") and self.path[10:] in self.jobs:
            data = f"result of {self.path[10:]} from {url}\n".encode()
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_json(404, {"detail": f"not found on {url}"})

    def do_POST(self):
        body = self.read_body()
        url = f"http://127.0.0.1:{self.port}"
        if self.path == "/v1/chat/completions":
            with Handler.lock:
                Handler.running += 1
            try:
                model = json.loads(body or b"{}").get("model", self.model)
                self.send_json(200, {
                    "id": "chatcmpl-node", "object": "chat.completion", "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
                        "role": "assistant", "content": f"{model} answered from {url}"}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                })
            finally:
                with Handler.lock:
                    Handler.running -= 1
        elif self.path == "/generate":
            job = f"job-{self.port}-{next(self.counter)}"
            self.jobs.add(job)
            self.send_json(202, {"job_id": job, "status": "queued", "node": url})
        else:
            self.send_json(404, {"detail": f"not found on {url}"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    Handler.model = args.model
    Handler.port = args.port
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"mock node :{args.port} serving {args.model}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
