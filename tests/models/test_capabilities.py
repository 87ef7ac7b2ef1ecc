"""The model seam's optional capabilities are declared protocols, checked once."""

from __future__ import annotations

from monai_imc.models import HFVisionLanguageModel, RemoteModel
from monai_imc.models.base import (
    BatchChat,
    Capabilities,
    ChatRenderer,
    TokenScorer,
    VisionLanguageModel,
    image_token_of,
)


def test_every_hf_family_has_every_capability(tiny_model: HFVisionLanguageModel) -> None:
    assert isinstance(tiny_model, VisionLanguageModel)
    assert Capabilities.of(tiny_model) == Capabilities(True, True, True, True, True)
    assert image_token_of(tiny_model) == tiny_model.image_token and tiny_model.image_token


def test_a_remote_model_has_only_the_base_seam() -> None:
    # no server is contacted: the capabilities are a property of the class
    remote = RemoteModel("http://127.0.0.1:9/v1", model="m", timeout=0.1, max_retries=1)
    assert isinstance(remote, VisionLanguageModel)
    assert not isinstance(remote, (TokenScorer, BatchChat, ChatRenderer))
    assert Capabilities.of(remote) == Capabilities(False, False, False, False, False)
    assert image_token_of(remote) is None


def test_an_object_missing_one_method_lacks_that_capability(tiny_model: HFVisionLanguageModel) -> None:
    class ScoresOnly:
        def log_likelihoods(self, texts, context="", batch_size=64):
            return [0.0 for _ in texts]

    assert not isinstance(ScoresOnly(), TokenScorer)  # prompt_logprobs is missing
    ScoresOnly.prompt_logprobs = lambda self, prompt: []
    assert Capabilities.of(ScoresOnly()).token_scores
