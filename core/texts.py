"""What one input row is: a text, or a pair of texts (premise and hypothesis, two questions).

A pair travels through DistilLab as a ``(first, second)`` tuple wherever a text would: the
tokenizer encodes it as a pair (``[CLS] a [SEP] b [SEP]`` with ``token_type_ids``), tables
show it as two columns (``text``, ``text_pair``). These helpers are the one place that
knows the two shapes, so the loop, the predictor and the views stay one.
"""

from __future__ import annotations

from collections.abc import Sequence

# A text, or a (first, second) pair of texts.
Text = str | tuple[str, str]
PAIR_COLUMN = "text_pair"


def is_pair(text: object) -> bool:
    """True for a ``(first, second)`` pair of strings."""
    return (isinstance(text, tuple) and len(text) == 2
            and all(isinstance(part, str) for part in text))


def has_pairs(texts: Sequence[Text]) -> bool:
    """True when the rows are pairs (judged by the first row; rows never mix shapes)."""
    return len(texts) > 0 and is_pair(texts[0])


def text_chars(text: Text) -> int:
    """Characters in a text or in both sides of a pair (a cost estimate for tokenising)."""
    return len(text[0]) + len(text[1]) if isinstance(text, tuple) else len(text)


def join_pairs(firsts: Sequence[str], seconds: Sequence[str] | None) -> list[Text]:
    """The rows of one or two text columns: plain texts, or ``(first, second)`` pairs."""
    if seconds is None:
        return list(firsts)
    if len(firsts) != len(seconds):
        raise ValueError(f"{len(firsts)} first texts but {len(seconds)} second texts")
    return list(zip(firsts, seconds, strict=True))


def split_pairs(texts: Sequence[Text]) -> tuple[list[str], list[str] | None]:
    """The first texts, and the second texts when the rows are pairs (else None)."""
    if not has_pairs(texts):
        return [str(t) for t in texts], None
    mixed = [i for i, t in enumerate(texts) if not is_pair(t)]
    if mixed:
        raise ValueError(f"rows mix single texts and pairs (row {mixed[0] + 1} is not a pair)")
    return [t[0] for t in texts], [t[1] for t in texts]


def text_key(text: Text) -> bytes:
    """Bytes that identify a row for content hashes: a pair never equals a single text."""
    if isinstance(text, tuple):
        return b"\x01" + text[0].encode("utf-8", "replace") + b"\x1f" + text[1].encode(
            "utf-8", "replace")
    return text.encode("utf-8", "replace")


def show_text(text: Text, separator: str = " ‖ ") -> str:
    """One line for logs and labels: a pair's two sides joined by ``separator``."""
    return f"{text[0]}{separator}{text[1]}" if isinstance(text, tuple) else text
