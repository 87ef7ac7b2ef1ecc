"""The request to a vLLM server carrying IMC's calibrated image features as image embeddings.

vLLM itself is not shipped (and needs a GPU), so the server here is a FAKE: a tiny ``http.server`` on
loopback that checks each request against vLLM's documented schema for image-embedding inputs
(``docs/features/multimodal_inputs.md``, "Embedding Inputs": a content part ``{"type": "image_embeds",
"image_embeds": <base64 torch.save tensor>}``, Qwen-VL's dict form with ``image_grid_thw``, shape
``(1, feature_size, hidden_size)`` for a single image, ``(feature_size, hidden_size)`` each for several),
written here from the documentation, independently of :func:`check_chat_request`, and answers with an
OpenAI chat completion that reports what it received. The model (tower, projector) is a real tiny one.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from monai_imc.models.remote import RemoteModel, RemoteModelError
from monai_imc.models.vllm import VLLMEmbedsModel, chat_request, check_chat_request, image_embeds_parts


def _documented_tensor(text: str) -> torch.Tensor:
    return torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)


class _FakeVLLM(BaseHTTPRequestHandler):
    """vLLM's documented input schema, checked by hand; answers with the sums of the embeddings."""

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply(200, {"object": "list", "data": [{"id": "fake-vllm", "object": "model"}]})

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(payload)  # type: ignore[attr-defined]
        if self.path != "/v1/chat/completions" or payload.get("model") != "fake-vllm":
            return self._reply(404, {"error": "unknown route or model"})
        (message,) = payload["messages"]
        parts = [p for p in message["content"] if p["type"] == "image_embeds"]
        texts = [p["text"] for p in message["content"] if p["type"] == "text"]
        tensors = []
        for part in parts:
            value = part["image_embeds"]
            if isinstance(value, dict):  # Qwen2-VL / Qwen2.5-VL
                grid = _documented_tensor(value["image_grid_thw"])
                if tuple(grid.shape) != (1, 3):
                    return self._reply(400, {"error": f"image_grid_thw shape {tuple(grid.shape)}"})
                value = value["image_embeds"]
            tensors.append(_documented_tensor(value))
        if len(tensors) == 1 and (tensors[0].dim() != 3 or tensors[0].shape[0] != 1):
            return self._reply(400, {"error": "a single embedding must be (1, feature_size, hidden_size)"})
        if len(tensors) > 1 and any(t.dim() != 2 for t in tensors):
            return self._reply(400, {"error": "several embeddings must each be (feature_size, hidden_size)"})
        report = {
            "shapes": [list(t.shape) for t in tensors],
            "sums": [float(t.sum()) for t in tensors],
            "squares": [float((t * t).sum()) for t in tensors],
            "text": texts,
        }
        self._reply(200, {"choices": [{"message": {"role": "assistant", "content": json.dumps(report)}}]})


@pytest.fixture(scope="module")
def fake_vllm() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeVLLM)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_calibrated_features_reach_the_server_as_image_embeddings(tiny_model, images, fake_vllm) -> None:
    url = f"http://127.0.0.1:{fake_vllm.server_address[1]}"
    remote = VLLMEmbedsModel(tiny_model, RemoteModel(url, max_retries=0))
    raw = remote.encode_images(images[:1])
    ramp = torch.linspace(-1.0, 1.0, raw.tokens[0].shape[-1])  # not a constant: a norm layer keeps it
    calibrated = raw.with_tokens([t + ramp for t in raw.tokens])  # what PDC hands to generate
    hidden = tiny_model.model.config.get_text_config().hidden_size
    for features in (raw, calibrated):
        report = json.loads(remote.generate(features, "Is there an effusion?", max_new_tokens=4))
        with torch.inference_mode():
            local = tiny_model._project(features)[0].float()
        assert report["shapes"] == [[1, *local.shape]] and local.shape[-1] == hidden
        assert report["sums"][0] == pytest.approx(float(local.sum()), rel=1e-5)
        assert report["text"] == ["Is there an effusion?"]
    sent_raw, sent_calibrated = (json.loads(remote.generate(f, "q")) for f in (raw, calibrated))
    with torch.inference_mode():
        wanted = float((tiny_model._project(calibrated)[0].float() ** 2).sum())
    assert sent_calibrated["squares"][0] == pytest.approx(wanted, rel=1e-5)
    assert sent_raw["squares"][0] != pytest.approx(wanted, rel=1e-3), "the calibrated features, not the raw"
    sent = fake_vllm.requests[-1]
    assert sent["max_tokens"] == 128 and sent["temperature"] == 0.0
    assert check_chat_request(sent, hidden_size=hidden) == [(1, *local.shape)]


def test_several_images_are_one_2d_part_each(tiny_model, images, fake_vllm) -> None:
    features = tiny_model.encode_images(images[:2])
    payload = chat_request("fake-vllm", image_embeds_parts(tiny_model, features), "Compare.")
    shapes = check_chat_request(payload)
    assert len(shapes) == 2 and all(len(s) == 2 for s in shapes)
    assert [s[0] for s in shapes] == list(features.num_image_tokens)


def test_requests_that_break_the_schema_are_refused(tiny_model, images) -> None:
    features = tiny_model.encode_images(images[:1])
    good = chat_request("m", image_embeds_parts(tiny_model, features), "q")
    flat = json.loads(json.dumps(good))
    part = flat["messages"][0]["content"][0]
    embeds = (
        part["image_embeds"]["image_embeds"]
        if isinstance(part["image_embeds"], dict)
        else part["image_embeds"]
    )
    squeezed = base64.b64encode(_save(_documented_tensor(embeds)[0])).decode()
    flat["messages"][0]["content"][0] = {"type": "image_embeds", "image_embeds": squeezed}
    with pytest.raises(ValueError, match=r"vLLM expects \(1, feature_size, hidden_size\)"):
        check_chat_request(flat)
    with pytest.raises(ValueError, match="not a base64-encoded torch tensor"):
        check_chat_request(
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_embeds", "image_embeds": "bm90IGEgdGVuc29y"}],
                    }
                ],
            }
        )
    with pytest.raises(ValueError, match="unsupported content type 'image_url'"):
        check_chat_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            }
        )
    with pytest.raises(ValueError, match="hidden size"):
        check_chat_request(good, hidden_size=7)


def test_an_unreachable_server_is_named(tiny_model, images) -> None:
    remote = VLLMEmbedsModel(
        tiny_model, RemoteModel("http://127.0.0.1:9", model="m", max_retries=0, timeout=2)
    )
    with pytest.raises(RemoteModelError, match="127.0.0.1:9"):
        remote.generate(tiny_model.encode_images(images[:1]), "q")


def _save(tensor: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    return buffer.getvalue()
