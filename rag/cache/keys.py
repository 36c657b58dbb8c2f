"""Cache keys: a sha256 over the canonical JSON of everything that changes the result.

An answer is only reused when *every* input that could change it is the same. The
pipeline must pass (see :func:`answer_key`, which names them):

==================  ====================================================================
``index_version``   ``Index.version`` (changes on every committed write) or the manifest checksum;
                    None for mode "plain"
``embedding_model`` the embedding model id (query vectors depend on it)
``generator_model`` the generator model id (``GuardedGenerator.model_id``), plus its precision
                    when it changes outputs
``template``        a hash of the prompt template / system instructions (:func:`text_hash`)
``generation``      the generation params: max_new_tokens, temperature (+ schedules), top_p,
                    seed, grounded, thinking_budget, stop strings ...
                    (e.g. ``settings.generate.model_dump()`` filtered to these)
``retrieval``       k and the retrieval options (hybrid, mmr, fetch_k, score_threshold,
                    where-filter), prompt options (max_passages, relative_cutoff, style)
``mode``            "rag" | "plain" | "oracle" (oracle: a hash of the given context too)
``question``        :func:`normalize_question` of the cleaned question
==================  ====================================================================

Embedding vectors use :func:`embedding_key` (model id + exact text).

Example:
    >>> make_key(b=1, a="x") == make_key(a="x", b=1)
    True
    >>> normalize_question("  What is  RAG?? ")
    'what is rag'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from pathlib import PurePath
from typing import Any

KEY_VERSION = 1

ANSWER_KEY_FIELDS = (
    "index_version", "embedding_model", "generator_model", "template", "generation",
    "retrieval", "mode", "question",
)

_WS = re.compile(r"\s+")


def normalize_question(q: str) -> str:
    """NFKC, casefold, collapse whitespace, strip surrounding space and trailing '?'/'.'."""
    s = unicodedata.normalize("NFKC", q).casefold()
    s = _WS.sub(" ", s).strip()
    return s.rstrip("?. ").strip()


def _canon(o: Any) -> Any:
    """JSON default= hook: make common non-JSON types canonical and deterministic."""
    if hasattr(o, "model_dump"):  # pydantic
        return o.model_dump(mode="json")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset)):
        return sorted(_canonical_json(x) for x in o)
    if isinstance(o, PurePath):
        return str(o)
    if isinstance(o, bytes):
        return hashlib.sha256(o).hexdigest()
    item = getattr(o, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(o, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot use a {type(o).__name__} in a cache key")


def _canonical_json(parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_canon,
                      allow_nan=True)


def make_key(**parts: Any) -> str:
    """Hex sha256 of the canonical JSON (sorted keys, no whitespace) of ``parts``.

    Equal parts in any order give the same key; any changed part gives another one.
    Values may be JSON types, tuples, sets, paths, bytes, numpy scalars/arrays, dataclasses
    or pydantic models.
    """
    doc = _canonical_json({"_v": KEY_VERSION, **parts})
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """Short sha256 of a text (for a prompt template or system instructions)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def answer_key(
    *,
    index_version: str | None,
    embedding_model: str | None,
    generator_model: str,
    template: str,
    generation: dict[str, Any],
    retrieval: dict[str, Any],
    mode: str,
    question: str,
    **extra: Any,
) -> str:
    """The key of a cached answer; every argument is required on purpose (see the module doc)."""
    return make_key(
        kind="answer", index_version=index_version, embedding_model=embedding_model,
        generator_model=generator_model, template=template, generation=generation, retrieval=retrieval,
        mode=mode, question=normalize_question(question), **extra,
    )


def embedding_key(model_id: str, text: str, *, normalized: bool = True) -> str:
    """The key of one cached embedding vector (exact text: no normalisation)."""
    return make_key(kind="embedding", model=model_id, text=text, normalized=normalized)
