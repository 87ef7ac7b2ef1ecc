"""Tokenizers and chat templates of the checkpoints this project trains: the reference model
(:mod:`monai_imc.reference.train`) and the tiny test checkpoints (:mod:`monai_imc.models.tiny`).

A byte-level BPE tokenizer trained on a corpus (no download), wrapped as a fast HF tokenizer with the
special tokens of its family, and the family's chat template.

Example:
    >>> from monai_imc.models.tokenizer import LLAVA_CHAT_TEMPLATE, train_tokenizer
    >>> tokenizer = train_tokenizer("llava", ["Is there a nodule?", "Answer: yes."], vocab_size=300)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = [
    "GEMMA_CHAT_TEMPLATE",
    "LLAVA_CHAT_TEMPLATE",
    "QWEN_CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "train_tokenizer",
]

#: The LLaVA chat template (``USER: <image>\n... ASSISTANT:``) of the reference and tiny LLaVA checkpoints.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] if message['content'] is string "
    "else message['content'][0]['text'] }}\n"
    "{% else %}{{ 'USER: ' if message['role'] == 'user' else 'ASSISTANT: ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}</s>{% endif %}\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


#: The Qwen2-VL chat template (``<|im_start|>user ...``) of the tiny Qwen checkpoints.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: The Gemma 3 chat template (``<start_of_turn>user ...``) of the tiny Gemma checkpoints.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' "
    "else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

#: The special tokens of each tokenizer family (``llava``, ``qwen``, ``gemma3``).
SPECIAL_TOKENS: dict[str, list[str]] = {
    "llava": ["<unk>", "<s>", "</s>", "<pad>", "<image>"],
    "qwen": [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ],
    "gemma3": [
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<end_of_image>",
        "<image_soft_token>",
    ],
}


def train_tokenizer(family: str, corpus: list[str], vocab_size: int, seed: int = 0):
    """Train a byte-level BPE tokenizer on ``corpus`` with the special tokens of ``family``.

    Args:
        family: ``"llava"``, ``"qwen2_vl"``, ``"qwen2_5_vl"`` or ``"gemma3"``.
        corpus: the training text.
        vocab_size: the vocabulary size (special tokens and the 256 byte symbols included).
        seed: unused by the BPE trainer (deterministic); kept for a uniform signature.

    Returns:
        A ``PreTrainedTokenizerFast`` with the family's special tokens (LLaVA: BOS added, ``<image>``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    key = "qwen" if family.startswith("qwen") else family
    specials = SPECIAL_TOKENS[key]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    if key == "llava":
        bos_id = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            extra_special_tokens={"image_token": "<image>"},
        )
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    if key == "qwen":
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            extra_special_tokens={
                "image_token": "<|image_pad|>",
                "video_token": "<|video_pad|>",
                "vision_bos_token": "<|vision_start|>",
                "vision_eos_token": "<|vision_end|>",
            },
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<end_of_turn>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={
            "image_token": "<image_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
    )
