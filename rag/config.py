"""Typed settings for the whole pipeline, validated eagerly.

One :class:`Settings` object is built once (from defaults, environment variables
``RAG_<SECTION>__<FIELD>``, or keyword arguments) and handed down; each stage
reads only its own section. Bad values raise :class:`rag.errors.ConfigError`
naming the field, the bad value and the allowed range.

Example:
    >>> s = Settings.build(generate={"max_new_tokens": 64})
    >>> s.generate.max_new_tokens
    64
    >>> Settings.build(generate={"temperature": 9})
    Traceback (most recent call last):
    ...
    rag.errors.ConfigError: generate.temperature = 9: must be <= 2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

BUNDLED_EMBEDDING = "bundled:all-MiniLM-L6-v2"
BUNDLED_GENERATOR = "bundled:SmolLM2-135M-Instruct"
#: Below this many parameters a generator counts as a small reader: the "by model size" defaults (one passage,
#: focused sentences, typed answer selection) switch on for it.
SMALL_READER_PARAMS = 1e9


def default_cache_dir() -> Path:
    """Per-user cache folder: ``$RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rag"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class EmbeddingSettings(_Section):
    """The sentence-transformers model that embeds chunks and queries."""

    model: str = Field(BUNDLED_EMBEDDING, description="'bundled:all-MiniLM-L6-v2' or a sentence-transformers folder")
    batch_size: int = Field(64, ge=1, le=4096)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ChunkSettings(_Section):
    """Token-aware chunking (tokens of the embedding model's own tokenizer)."""

    chunk_tokens: int = Field(200, ge=16, le=8192, description="upper bound; also capped by the model's max sequence length")
    overlap_tokens: int = Field(32, ge=0, le=4096)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "ChunkSettings":
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens = {self.overlap_tokens}: must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self


class IndexSettings(_Section):
    """The FAISS index type (inner product over normalised vectors)."""

    kind: Literal["flat", "hnsw", "ivfpq"] = "flat"
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_search: int = Field(64, ge=8, le=4096)
    ivf_nlist: int | None = Field(None, ge=1, le=1_000_000, description="None: about 4*sqrt(n)")
    pq_m: int = Field(16, ge=1, le=256, description="sub-quantizers; must divide the dimension")
    ivf_nprobe: int = Field(16, ge=1, le=65536)


class IngestSettings(_Section):
    """Which files go in."""

    include: list[str] = Field(default_factory=lambda: ["**/*.txt", "**/*.md", "**/*.html", "**/*.htm", "**/*.pdf", "**/*.jsonl"])
    exclude: list[str] = Field(default_factory=list)
    max_file_mb: float = Field(200.0, gt=0, le=100_000)
    lock_timeout_s: float = Field(0.0, ge=0, le=86_400, description="how long a second ingest waits for the lock")


class RetrieveSettings(_Section):
    """Dense (optionally hybrid) retrieval and passage selection."""

    k: int = Field(5, ge=1, le=1000, description="passages retrieved")
    hybrid: bool = Field(False, description="fuse BM25 with dense by reciprocal rank fusion")
    rrf_k: int = Field(60, ge=1, le=10_000)
    mmr: bool = False
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0)
    fetch_k: int = Field(50, ge=1, le=10_000, description="candidates fetched before fusion/MMR/filter")
    score_threshold: float | None = Field(None, ge=-1.0, le=1.0)
    expand_neighbors: int = Field(1, ge=0, le=50, description="grow each passage by this many adjacent chunks of its document (same page)")


class PromptSettings(_Section):
    """How much context goes into the prompt and in which style."""

    max_passages: int | None = Field(None, ge=0, le=100, description="None: by model size (1 below 1B params, 3 below 8B, else 5)")
    focus_sentences: int | None = Field(
        None, ge=0, le=1000,
        description="keep the N sentences of each passage most similar to the question; 0: whole passages; "
                    "None: by model size (2 below 1B params, else 0)",
    )
    examples: int = Field(3, ge=0, le=3, description="worked examples in the chat (short style only)")
    relative_cutoff: float | None = Field(0.85, gt=0.0, le=1.0, description="drop passages scoring below this fraction of the best")
    max_context_tokens: int | None = Field(None, ge=1, le=1_000_000)
    style: Literal["short", "free"] = "short"
    grounded: bool = Field(False, description="extractive decoding: the answer must continue a span of the passages")
    system: str | None = Field(None, max_length=20_000)


class GenerateSettings(_Section):
    """The guarded generator."""

    model: str = Field(BUNDLED_GENERATOR, description="'bundled:SmolLM2-135M-Instruct', a HF model folder or a .gguf file")
    max_new_tokens: int = Field(48, ge=1, le=32_768)
    max_new_tokens_limit: int = Field(8192, ge=1, le=1_000_000)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    temperature_schedule: list[float] | None = None
    top_p_schedule: list[float] | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)
    timeout_s: float = Field(120.0, gt=0.0, le=86_400.0)
    on_timeout: Literal["partial", "raise"] = "partial"
    loop_ngram: int = Field(6, ge=2, le=64)
    loop_repeats: int = Field(4, ge=2, le=100)
    stall_tokens: int = Field(64, ge=4, le=100_000, description="stop when this many tokens add no new text")
    thinking_budget: int | None = Field(None, ge=1, le=1_000_000)
    max_question_chars: int = Field(4000, ge=1, le=1_000_000)
    truncate_question: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    memory_headroom: float = Field(0.2, ge=0.0, le=0.95)
    offload_kv_cache: bool = False
    prefix_cache: bool = Field(True, description="reuse the KV cache of the previous prompt's shared prefix (instructions, examples) for single prompts")
    gradient_checkpointing: bool = False
    max_batch_size: int = Field(8, ge=1, le=1024)
    threads: int | None = Field(None, ge=1, le=1024, description="torch CPU threads (process-wide); None: torch's default")

    @model_validator(mode="after")
    def _check(self) -> "GenerateSettings":
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError(
                f"max_new_tokens = {self.max_new_tokens}: must be in [1, {self.max_new_tokens_limit}]"
            )
        for name in ("temperature_schedule", "top_p_schedule"):
            sched = getattr(self, name)
            if sched is None:
                continue
            if not sched:
                raise ValueError(f"{name} = []: give at least one value")
            lo, hi = (0.0, 2.0) if name.startswith("temperature") else (1e-9, 1.0)
            for v in sched:
                if not lo <= v <= hi:
                    raise ValueError(f"{name} value {v}: must be in [{lo:g}, {hi:g}]")
        return self


class SelectSettings(_Section):
    """Answer selection after generation (rag.select): typed spans of the passages, rescored by the model."""

    typed: bool | None = Field(
        None,
        description="for who / when / how-many questions, answer with the name, date or number of the passages that "
                    "the model finds most likely (the generated answer competes when it is a span of the passages); "
                    "None: by model size (on below 1B params, else off)",
    )
    max_candidates: int = Field(24, ge=1, le=256, description="spans scored per question at most")


class CacheSettings(_Section):
    """Tiered answer/embedding cache."""

    enabled: bool = True
    dir: Path | None = Field(None, description="disk tier folder (cache.sqlite3 inside); None: the per-user cache folder")
    memory_entries: int = Field(100, ge=0, le=10_000_000)
    disk: bool = True
    disk_max_mb: float | None = Field(1024.0, gt=0, le=1_000_000, description="bound on the disk tier's database size; "
                                      "oldest-written entries go first; None: unbounded")
    redis_url: str | None = None
    ttl_s: float | None = Field(None, gt=0)
    redis_timeout_s: float = Field(0.25, gt=0, le=60)
    redis_backoff_s: float = Field(5.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _check_url(self) -> "CacheSettings":
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis_url = {self.redis_url!r}: must start with redis://, rediss:// or unix://")
        return self


class Settings(BaseSettings):
    """All settings of rag, one object. Environment: ``RAG_GENERATE__MAX_NEW_TOKENS=64`` etc."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    select: SelectSettings = Field(default_factory=SelectSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)

    @classmethod
    def build(cls, **sections: Any) -> "Settings":
        """Build settings from environment plus overrides; raise ConfigError on bad values.

        ``sections`` maps a section name to a dict (or section object) of overrides,
        e.g. ``Settings.build(retrieve={"k": 3})``. Environment variables apply
        underneath the overrides.
        """
        try:
            base = cls()
            if not sections:
                return base
            data = base.model_dump()
            for name, value in sections.items():
                if name not in data:
                    raise ConfigError(f"unknown settings section {name!r}; allowed: {', '.join(data)}")
                if isinstance(value, BaseModel):
                    value = value.model_dump()
                if not isinstance(value, dict):
                    raise ConfigError(f"settings section {name!r} must be a mapping, got {type(value).__name__}")
                data[name] = {**data[name], **value}
            return cls.model_validate(data)
        except ValidationError as e:
            raise config_error(e) from None

    def replace(self, **sections: dict[str, Any]) -> "Settings":
        """A copy with some fields of some sections changed, validated.

        Example: ``s.replace(generate={"max_new_tokens": 8})``
        """
        data = self.model_dump()
        for name, value in sections.items():
            if name not in data:
                raise ConfigError(f"unknown settings section {name!r}; allowed: {', '.join(data)}")
            data[name] = {**data[name], **{k: v for k, v in value.items() if v is not None}}
        try:
            return type(self).model_validate(data)
        except ValidationError as e:
            raise config_error(e) from None


def config_error(e: ValidationError) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError naming field, value and rule."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        msg = (
            msg.replace("Input should be less than or equal to", "must be <=")
            .replace("Input should be greater than or equal to", "must be >=")
            .replace("Input should be greater than", "must be >")
            .replace("Input should be less than", "must be <")
            .replace("Input should be", "must be")
        )
        if "input" in err and err.get("type") != "value_error" and loc:
            parts.append(f"{loc} = {err['input']!r}: {msg}")
        elif loc:
            parts.append(f"{loc}: {msg}")
        else:
            parts.append(msg)
    return ConfigError("; ".join(parts))
