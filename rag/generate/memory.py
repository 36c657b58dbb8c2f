"""Memory planning and out-of-memory detection for generation.

The KV cache of a decoder is ``2 * layers * kv_heads * head_dim * tokens * batch * dtype_bytes``;
activations get a margin on top. Weights are already resident when we plan, so the estimate is
compared against the memory that is still free, keeping ``headroom`` of it untouched.

Example:
    >>> class C: num_hidden_layers=2; num_key_value_heads=1; num_attention_heads=2; hidden_size=8
    >>> kv_cache_bytes(C(), tokens=10, batch=1, dtype_bytes=4)
    640
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import torch

MemoryProbe = Callable[[], int]
#: Fixed allowance for allocator slack, temporaries of the sampler etc.
FIXED_MARGIN_BYTES = 32 * 2**20


def default_probe(device: torch.device) -> MemoryProbe:
    """Bytes still free on ``device``: psutil's available RAM on CPU, ``torch.cuda.mem_get_info`` on CUDA."""
    if device.type == "cuda":
        return lambda: int(torch.cuda.mem_get_info(device)[0])

    def cpu_free() -> int:
        import psutil  # noqa: PLC0415

        return int(psutil.virtual_memory().available)

    return cpu_free


def _dims(config: Any) -> tuple[int, int, int, int, int, int]:
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = int(getattr(cfg, "num_hidden_layers", 1))
    heads = int(getattr(cfg, "num_attention_heads", 1))
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    hidden = int(getattr(cfg, "hidden_size", 0))
    head_dim = int(getattr(cfg, "head_dim", None) or (hidden // max(heads, 1)))
    inter = int(getattr(cfg, "intermediate_size", None) or 4 * hidden)
    return layers, heads, kv_heads, head_dim, hidden, inter


def kv_cache_bytes(config: Any, *, tokens: int, batch: int, dtype_bytes: int) -> int:
    """Bytes of the KV cache for ``batch`` sequences of ``tokens`` tokens."""
    layers, _, kv_heads, head_dim, _, _ = _dims(config)
    return 2 * layers * kv_heads * head_dim * tokens * batch * dtype_bytes


def estimate_bytes(config: Any, *, prompt_tokens: int, max_new_tokens: int, batch: int, dtype_bytes: int) -> int:
    """KV cache plus an activation margin (prefill hidden/MLP states, attention scores, last-token logits)."""
    _, heads, _, _, hidden, inter = _dims(config)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    total = prompt_tokens + max_new_tokens
    kv = kv_cache_bytes(config, tokens=total, batch=batch, dtype_bytes=dtype_bytes)
    act = batch * (prompt_tokens * (4 * hidden + 3 * inter) + heads * prompt_tokens * prompt_tokens) * dtype_bytes
    logits = batch * vocab * 4 * 3  # fp32 logits, processed scores, probabilities
    return kv + act + logits + FIXED_MARGIN_BYTES


def fit_batch(
    want: int, *, available: int, headroom: float, need: Callable[[int], int]
) -> int:
    """Largest batch ``<= want`` whose ``need(batch)`` fits in ``available * (1 - headroom)``; 0 if none does."""
    budget = available * (1.0 - headroom)
    for b in range(want, 0, -1):
        if need(b) <= budget:
            return b
    return 0


def is_oom(exc: BaseException) -> bool:
    """True for out-of-memory errors: MemoryError, torch.cuda.OutOfMemoryError, RuntimeError 'out of memory'."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory(device: torch.device) -> None:
    """Collect garbage and return cached CUDA blocks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
