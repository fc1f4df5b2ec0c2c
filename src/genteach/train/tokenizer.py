"""Hugging Face tokenizers from SentencePiece BPE models, without protobuf.

transformers turns a ``tokenizer.model`` into a fast tokenizer by parsing its protobuf with
a generated module that needs a recent protobuf runtime. genteach's ``[local]`` extra comes
with AutoGen, which pins protobuf 5.29, and then that conversion fails: ``AutoTokenizer``
raises, and ``LlamaTokenizerFast(vocab_file=...)`` silently tokenizes every text to nothing.
This module rebuilds the tokenizer from what the ``sentencepiece`` library itself reports
(pieces, scores, control and byte pieces) and checks the result against SentencePiece on
probe strings, so a model whose folder holds only ``tokenizer.model`` (Mistral-7B-v0.1's
original release, mistral-common's ``tokenizer.model.v1``) trains as it would elsewhere.

Example:
    >>> tok = tokenizer_from_sentencepiece("tokenizer.model")      # doctest: +SKIP
    >>> tok("[INST] Hi [/INST]", add_special_tokens=False).input_ids  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = [
    "PROBES",
    "SentencePieceMismatch",
    "load_tokenizer",
    "needs_sentencepiece_rebuild",
    "tokenizer_from_sentencepiece",
]

SPIECE = "\u2581"  # "▁", SentencePiece's word-boundary mark
#: Texts every rebuilt tokenizer must encode exactly as SentencePiece does.
PROBES = (
    "Hello world",
    "[INST] What is the capital of France? [/INST] Paris.",
    "  two leading spaces,  double  gaps and a trailing space ",
    "line one\nline two\n\n\tindented",
    "déjà vu, naïve, Straße, 東京, 🙂",
    "x = {'a': [1, 2.5e-3]}  # code",
)


class SentencePieceMismatch(ValueError):
    """The rebuilt tokenizer encodes a probe differently from SentencePiece."""


def _merges(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """BPE merges in SentencePiece's order: a merge's rank is its result's score (higher
    first), ties broken by the ids of its two parts."""
    found: list[tuple[float, int, int, str, str]] = []
    for piece, score in scores.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                found.append((-score, vocab[left], vocab[right], left, right))
    found.sort()
    return [(left, right) for _, _, _, left, right in found]


def tokenizer_from_sentencepiece(
    model_file: str | os.PathLike[str],
    *,
    probes: tuple[str, ...] = PROBES,
) -> PreTrainedTokenizerFast:
    """A fast tokenizer equal to a SentencePiece BPE model (Llama/Mistral style: identity
    normalisation, whitespace kept).

    Byte fallback, the dummy ``▁`` prefix and the control pieces (``<unk>``, ``<s>``,
    ``</s>``) are read from the model's behaviour, not from its protobuf. As in the Hugging
    Face tokenizers of Llama and Mistral, the prefix is added to each piece of text between
    special tokens, which is also how SentencePiece (and mistral-common) encode a chat one
    message at a time.

    Args:
        model_file: the ``tokenizer.model`` file.
        probes: texts that must encode to SentencePiece's ids, or the build fails.

    Raises:
        SentencePieceMismatch: a probe encodes differently (e.g. a Unigram model).
    """
    import sentencepiece
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    size = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(size)}
    special = [i for i in range(size) if sp.is_control(i) or sp.is_unknown(i)]
    byte_fallback = "<0x00>" in vocab
    scores = {
        sp.id_to_piece(i): sp.get_score(i)
        for i in range(size)
        if i not in special and not sp.is_byte(i)
    }
    dummy_prefix = sp.encode("a", out_type=str)[0].startswith(SPIECE)
    unk = sp.id_to_piece(sp.unk_id())
    core = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=_merges(vocab, scores),
            unk_token=unk,
            fuse_unk=True,
            byte_fallback=byte_fallback,
        )
    )
    steps: list[Any] = [normalizers.Prepend(SPIECE)] if dummy_prefix else []
    core.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPIECE)])
    core.decoder = decoders.Sequence(
        [
            decoders.Replace(SPIECE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            *([decoders.Strip(" ", 1, 0)] if dummy_prefix else []),
        ]
    )
    core.add_special_tokens(
        [AddedToken(sp.id_to_piece(i), special=True, normalized=False) for i in special]
    )
    names = {
        "bos_token": sp.bos_id(),
        "eos_token": sp.eos_id(),
        "unk_token": sp.unk_id(),
        "pad_token": sp.pad_id(),
    }
    tokens = {k: sp.id_to_piece(v) for k, v in names.items() if v >= 0}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, add_bos_token=True, **tokens)
    for text in probes:
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        theirs = sp.encode(text)
        if ours != theirs:
            raise SentencePieceMismatch(
                f"{model_file}: the rebuilt tokenizer encodes {text!r} as {ours[:12]}..., "
                f"SentencePiece as {theirs[:12]}...; only BPE models without whitespace or "
                "Unicode normalisation (Llama and Mistral style) can be rebuilt"
            )
    return tokenizer


def needs_sentencepiece_rebuild(path: str) -> bool:
    """True for a local folder with ``tokenizer.model`` and no ``tokenizer.json``."""
    return os.path.isfile(os.path.join(path, "tokenizer.model")) and not os.path.isfile(
        os.path.join(path, "tokenizer.json")
    )


def load_tokenizer(path: str, revision: str | None = None) -> PreTrainedTokenizerBase:
    """The model's tokenizer: ``AutoTokenizer``, or a SentencePiece rebuild for a local
    folder that has only ``tokenizer.model`` (see the module docstring)."""
    from transformers import AutoTokenizer

    if needs_sentencepiece_rebuild(path):
        return tokenizer_from_sentencepiece(os.path.join(path, "tokenizer.model"))
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path, revision=revision)
    return tokenizer
