"""RemoteModel against a local OpenAI-compatible server.

The server below is a TEST FIXTURE, not a product: a few dozen lines of ``http.server`` that answer
``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions`` (with ``echo`` and ``logprobs``) in the
format vLLM uses, by running one of the tiny local models through our own local adapter. It lets the
tests check that the remote backend and the local one agree, without a GPU or vLLM.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from monai_imc.models import HFVisionLanguageModel, RemoteModel, RemoteModelError

SERVED_NAME = "tiny-llava"


class _FixtureServer(ThreadingHTTPServer):
    """Serves one local adapter the way vLLM's OpenAI server would (test fixture only)."""

    daemon_threads = True

    def __init__(self, model: HFVisionLanguageModel) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model = model
        self.lock = threading.Lock()
        self.fail_next: list[int] = []  # HTTP statuses to answer with before serving normally
        self.requests: list[tuple[str, dict]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: _FixtureServer

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._reply(200, {"object": "list", "data": [{"id": SERVED_NAME, "object": "model"}]})
        else:
            self._reply(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        server.requests.append((self.path, payload))
        if server.fail_next:
            self._reply(server.fail_next.pop(0), {"error": {"message": "injected failure"}})
            return
        if payload.get("model") != SERVED_NAME:
            self._reply(404, {"error": {"message": f"model {payload.get('model')!r} does not exist"}})
            return
        with server.lock:
            if self.path == "/v1/chat/completions":
                text = server.model.chat(payload["messages"], max_new_tokens=payload["max_tokens"])
                self._reply(
                    200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                )
            elif self.path == "/v1/completions":
                self._reply(200, self._completion(payload))
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

    def _completion(self, payload: dict) -> dict:
        """vLLM's echo format: per-token strings, log-probabilities and cumulative text offsets."""
        model = self.server.model
        assert payload["echo"] is True and payload["logprobs"] >= 0
        rows = model.prompt_logprobs(payload["prompt"])
        tokens = [t for t, *_ in rows]
        values = [v for _t, v, *_ in rows]
        # one generated token follows the prompt (max_tokens=1), as vLLM appends it to the echo
        tokens.append("!")
        values.append(-0.5)
        offsets, position = [], 0
        for token in tokens:
            offsets.append(position)
            position += len(token)
        return {
            "choices": [
                {
                    "index": 0,
                    "text": "".join(tokens),
                    "logprobs": {"tokens": tokens, "token_logprobs": values, "text_offset": offsets},
                }
            ],
            "usage": {"prompt_tokens": len(rows), "completion_tokens": 1, "total_tokens": len(rows) + 1},
        }


@pytest.fixture(scope="module")
def server(tiny_models) -> Iterator[_FixtureServer]:
    httpd = _FixtureServer(tiny_models["llava"])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def remote(server: _FixtureServer) -> RemoteModel:
    server.fail_next.clear()
    server.requests.clear()
    return RemoteModel(server.url + "/v1", timeout=10, max_retries=2, backoff=0.01)


def test_chat_round_trip_equals_local_chat(remote: RemoteModel, tiny_models) -> None:
    messages = [
        {"role": "system", "content": "You expand radiology abbreviations."},
        {"role": "user", "content": "RLL nodule 4 mm."},
    ]
    assert remote.name == SERVED_NAME  # from /v1/models
    assert remote.chat(messages, max_new_tokens=6) == tiny_models["llava"].chat(messages, max_new_tokens=6)


@pytest.mark.parametrize(("context", "text"), [("The CT shows", " a left lung nodule."), ("", "Answer: no.")])
def test_log_likelihood_equals_local(
    remote: RemoteModel, server: _FixtureServer, tiny_models, context, text
) -> None:
    local = tiny_models["llava"].log_likelihood(text, context)
    assert remote.log_likelihood(text, context) == pytest.approx(local, abs=1e-4)
    path, payload = server.requests[-1]
    assert path == "/v1/completions"
    assert payload["echo"] is True and payload["max_tokens"] == 1 and payload["prompt"] == context + text


def test_retries_transient_errors(remote: RemoteModel, server: _FixtureServer, tiny_models) -> None:
    server.fail_next.extend([503, 502])
    score = remote.log_likelihood(" nodule.", "A left")
    assert score == pytest.approx(tiny_models["llava"].log_likelihood(" nodule.", "A left"), abs=1e-4)
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(server: _FixtureServer) -> None:
    server.requests.clear()
    model = RemoteModel(server.url, model="no-such-model", timeout=5, max_retries=3, backoff=0.01)
    with pytest.raises(RemoteModelError, match=r"/v1/chat/completions.*404.*no-such-model"):
        model.chat([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1


def test_unreachable_server_names_the_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = RemoteModel(f"http://127.0.0.1:{port}", model="x", timeout=0.5, max_retries=2, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(
        RemoteModelError, match=rf"http://127\.0\.0\.1:{port}/v1/chat/completions.*3 attempt"
    ) as info:
        model.chat([{"role": "user", "content": "hi"}])
    assert time.monotonic() - start < 5
    assert info.value.url == f"http://127.0.0.1:{port}/v1/chat/completions"


def test_vision_stays_local(remote: RemoteModel) -> None:
    with pytest.raises(NotImplementedError, match="load_model"):
        remote.encode_images(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(NotImplementedError, match="local"):
        remote.generate(None, "question")  # type: ignore[arg-type]


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        RemoteModel("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        RemoteModel("http://127.0.0.1:1", max_retries=-1)
    with pytest.raises(ValueError, match="empty"):
        RemoteModel("http://127.0.0.1:1", model="x").log_likelihood("", "context")


def test_sms_runs_on_the_remote_backend_as_on_the_local_model(remote: RemoteModel, tiny_models) -> None:
    from monai_imc.guards import check_repair
    from monai_imc.refine import SMSPrompts, SMSRefiner

    text = "Is there no efusion in the lft lung, 3 cm below the rib?"
    # The generative path (judge, rewrite, review) on both; the reviewer accepts whatever passes the guards.
    options = {"prompts": SMSPrompts.instructed(), "vocabulary": None, "max_rounds": 2, "accept_margin": -1e9,
               "max_new_tokens": 12}
    remote_result = SMSRefiner(remote, **options).refine(text)
    local_result = SMSRefiner(tiny_models["llava"], **options).refine(text)
    assert remote_result.original == text and check_repair(text, remote_result.text) == []
    assert [(s.agent, s.output) for s in remote_result.trace] == [(s.agent, s.output) for s in local_result.trace]
    assert remote_result.text == local_result.text
    # The local adapter scores the reviewer's texts in one batched call, the server one request each.
    assert remote_result.calls >= local_result.calls
