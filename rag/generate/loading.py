"""Loading the generator: device, precision, model and tokenizer, context window.

Example:
    >>> resolve_dtype("auto", torch.device("cpu"))
    torch.float32
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from rag.errors import ConfigError, ModelError

#: Upper bound for the context window we report, whatever a config claims (rope-scaled configs can claim millions).
MAX_CONTEXT_WINDOW = 131_072
_WINDOW_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU -> ConfigError."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("generate.device = 'cuda': no CUDA device is available", hint="use device 'auto' or 'cpu'")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The weight/compute dtype for a precision setting on a device.

    CPU: ``auto`` and ``fp32`` -> float32 (bf16 is not measured faster on CPU here), ``bf16`` only when
    asked, ``fp16`` -> ConfigError. CUDA: ``auto`` -> bf16 when supported, else fp16.
    """
    if device.type == "cpu":
        if precision == "fp16":
            raise ConfigError(
                "generate.precision = 'fp16': half precision is not supported on CPU",
                hint="use 'auto' (fp32) or 'bf16' on CPU",
            )
        return torch.bfloat16 if precision == "bf16" else torch.float32
    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_context(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager[Any]:
    """torch.autocast for half precisions on CUDA; a no-op otherwise (CPU runs the weights' own dtype)."""
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def context_window(config: Any, tokenizer: Any = None) -> int:
    """The model's context window in tokens, from its config, capped at the tokenizer limit and MAX_CONTEXT_WINDOW."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    window = None
    for key in _WINDOW_KEYS:
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            window = value
            break
    if window is None:
        window = 2048
    tok_max = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    if isinstance(tok_max, int) and 0 < tok_max < 10_000_000:
        window = min(window, tok_max)
    return min(window, MAX_CONTEXT_WINDOW)


def load_model(path: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    """Load tokenizer and causal LM from a local folder (no hub access), in eval mode on ``device``."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415
        from transformers.utils import logging as hf_logging  # noqa: PLC0415

        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any loader failure is a ModelError for the caller
        raise ModelError(f"could not load generator model from {path}: {e}") from e
    model.to(device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def fast_decoder(tokenizer: Any):
    """A function ids -> text that keeps special tokens and skips Python-side cleanup (Rust backend when present).

    Concatenating its output for consecutive id slices reproduces the full decode for byte-level BPE.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return lambda ids: backend.decode(ids, skip_special_tokens=False)
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
