"""Pipeline: question -> retrieve -> prompt -> guarded generate -> Answer.

Modes (same model, instructions and decoding in all three):

- ``rag``: the retriever's top passages go into the prompt;
- ``plain``: no retrieval, the model answers from its own knowledge;
- ``oracle``: the caller's passages (e.g. a benchmark's gold passages) go into the prompt.

Example:
    >>> from rag import Pipeline                                  # doctest: +SKIP
    >>> p = Pipeline.open("indexes/sample")                       # doctest: +SKIP
    >>> ans = p.ask("Who won Super Bowl 50?")                     # doctest: +SKIP
    >>> ans.text, ans.finish_reason, ans.citations[0].source      # doctest: +SKIP
    ('Denver Broncos', 'stop', 'data/sample/xquad_en_passages.jsonl')
    >>> for piece in (s := p.stream("Who won Super Bowl 50?")):   # doctest: +SKIP
    ...     print(piece, end="")
    >>> s.answer.timings.total_s                                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag import metrics
from rag.cache import TieredCache
from rag.cache.keys import embedding_key, make_key, normalize_question
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import InvalidInputError, RagError
from rag.generate import GuardedGenerator
from rag.index import Index
from rag.prompt import PromptBuilder, clean_question
from rag.retrieve import Retriever
from rag.prompt.focus import focus_passages
from rag.retrieve.expand import expand_passages
from rag.select import TypedAnswerSelector
from rag.schema import Answer, Chunk, Citation, Generation, Passage, Prompt, TokenCounts, Timings, answer_from_dict

Mode = Literal["rag", "plain", "oracle"]
MODES: tuple[str, ...] = ("rag", "plain", "oracle")
# Only answers that ended normally are cached; timeouts, loops and stalls are not.
CACHEABLE_FINISH = frozenset({"stop", "length"})
_ANSWER_NS = "answer"
_EMBED_NS = "qvec"


class CachedEmbedder:
    """An :class:`Embedder` whose query vectors go through the tiered cache."""

    def __init__(self, embedder: Embedder, cache: TieredCache) -> None:
        self._embedder = embedder
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        texts = list(texts)
        out: list[np.ndarray | None] = [None] * len(texts)
        keys = [embedding_key(self._embedder.model_id, t) for t in texts]
        missing = []
        for i, key in enumerate(keys):
            hit = self._cache.get_array(_EMBED_NS, key)
            if hit is not None and hit[0].shape == (self._embedder.dimension,):
                out[i] = hit[0]
            else:
                missing.append(i)
        if missing:
            vecs = self._embedder.encode([texts[i] for i in missing], **kw)
            for i, v in zip(missing, vecs):
                out[i] = v
                self._cache.set_array(_EMBED_NS, keys[i], v)
        if not texts:
            return self._embedder.encode([], **kw)
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]


class AnswerStream:
    """Iterate for the answer's text pieces as they are generated; ``answer`` is set at the end."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        return self._pieces


class Pipeline:
    """The question-answering pipeline over one index (or none, for plain mode only).

    Models load lazily, once, on the first question or on :meth:`warm_up`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        index: Index | None = None,
        *,
        embedder: Embedder | None = None,
        generator: GuardedGenerator | None = None,
        cache: TieredCache | None = None,
    ) -> None:
        self.settings = settings or Settings.build()
        self.index = index
        self.generator = generator or GuardedGenerator(self.settings.generate)
        self.cache = cache if cache is not None else TieredCache.from_settings(self.settings.cache)
        self.embedder: Embedder | None = None
        self.retriever: Retriever | None = None
        if index is not None:
            emb = embedder or Embedder(self.settings.embedding)
            self.embedder = emb
            self.retriever = Retriever(index, CachedEmbedder(emb, self.cache), self.settings.retrieve)
        self._builder: PromptBuilder | None = None
        self._selector = TypedAnswerSelector(self.settings.select)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        index_path: str | Path | None,
        settings: Settings | None = None,
        *,
        embedding_model: str | None = None,
        **kw: Any,
    ) -> "Pipeline":
        """Open the index at ``index_path`` (None: plain mode only) with the embedding model it was built with.

        ``embedding_model`` (a spec like ``bundled:all-MiniLM-L6-v2`` or a folder) must match the index's, or
        :class:`rag.errors.IndexMismatchError` is raised; by default the index's own model is used.
        """
        settings = settings or Settings.build()
        index = None
        if index_path is not None:
            from rag.models import model_id  # noqa: PLC0415

            index = Index.open(index_path, embedding_model_id=model_id(embedding_model) if embedding_model else None)
            built_with = index.manifest.embedding_model
            if built_with != settings.embedding.model:
                settings = settings.replace(embedding={"model": built_with})
        return cls(settings, index, **kw)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the generator (and the embedding model when there is an index) now rather than on first use."""
        self.generator.warm_up()
        if self.embedder is not None:
            self.embedder.warm_up()
        self._prompt_builder()

    def _prompt_builder(self) -> PromptBuilder:
        if self._builder is None:
            with self._lock:
                if self._builder is None:
                    g = self.generator
                    g.warm_up()
                    self._builder = PromptBuilder(self.settings.prompt, g.tokenizer, g.context_window, g.n_parameters)
        return self._builder

    # -- public API --------------------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        mode: Mode = "rag",
        context: Sequence[Chunk] | None = None,
        where: dict[str, str] | None = None,
        k: int | None = None,
    ) -> Answer:
        """Answer one question.

        ``context`` gives the passages for ``mode="oracle"``; ``where`` filters retrieval by source metadata
        (``{"source": "docs/*.md"}``); ``k`` overrides ``settings.retrieve.k``.
        """
        return self.ask_many([question], mode=mode, contexts=[context] if context is not None else None,
                             where=where, k=k)[0]

    def ask_many(
        self,
        questions: Sequence[str],
        *,
        mode: Mode = "rag",
        contexts: Sequence[Sequence[Chunk] | None] | None = None,
        where: dict[str, str] | None = None,
        k: int | None = None,
    ) -> list[Answer]:
        """Answer several questions; generation runs in memory-planned batches (``generate.max_batch_size``)."""
        try:
            return self._ask_many(questions, mode, contexts, where, k)
        except RagError as e:
            metrics.observe_error(e.code)
            raise

    def stream(self, question: str, *, mode: Mode = "rag", where: dict[str, str] | None = None,
               k: int | None = None) -> AnswerStream:
        """Stream the answer's text pieces; the full :class:`Answer` is on the returned object at the end."""
        stream = AnswerStream(iter(()))

        def pieces() -> Iterator[str]:
            self.warm_up()
            t0 = time.perf_counter()
            try:
                q, passages, t_retrieve = self._prepare(question, mode, None, where, k)
                t1 = time.perf_counter()
                prompt = self._build(q, passages, mode)
                t_prompt = time.perf_counter() - t1
                gs = self.generator.stream(prompt, grounded_texts=self._grounded(prompt), **self._per_call())
                yield from gs
                stream.answer = self._finish(q, mode, prompt, gs.result, passages, t_retrieve, t_prompt, t0, None)
            except RagError as e:
                metrics.observe_error(e.code)
                raise

        stream._pieces = pieces()
        return stream

    # -- internals ---------------------------------------------------------------------------------------------

    def _check_mode(self, mode: str, has_context: bool) -> None:
        if mode not in MODES:
            raise InvalidInputError(f"mode = {mode!r}: must be one of {', '.join(MODES)}")
        if mode == "rag" and self.retriever is None:
            raise InvalidInputError("mode 'rag' needs an index", hint="open the pipeline with an index path, or use mode 'plain'")
        if mode == "oracle" and not has_context:
            raise InvalidInputError("mode 'oracle' needs the passages to use (context=...)")

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.settings.retrieve.k
        if not 1 <= k <= 1000:
            raise InvalidInputError(f"k = {k}: must be in [1, 1000]")
        return k

    def _prepare(self, question: str, mode: str, context: Sequence[Chunk] | None, where: dict[str, str] | None,
                 k: int | None) -> tuple[str, list[Passage], float]:
        self._check_mode(mode, context is not None)
        q = clean_question(question, self.settings.generate)
        t = time.perf_counter()
        if mode == "rag":
            assert self.retriever is not None
            passages = self.retriever.retrieve(q, k=self._k(k), where=where)
        elif mode == "oracle":
            passages = [Passage(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(context or [])]
        else:
            passages = []
        return q, passages, time.perf_counter() - t

    def _build(self, q: str, passages: list[Passage], mode: str) -> Prompt:
        """Expand the passages, focus the ones the prompt can hold, then build the prompt."""
        builder = self._prompt_builder()
        if mode != "plain":
            passages = self._focus(q, self._expand(passages), builder)
        return builder.build(q, passages, self.settings.generate.max_new_tokens, mode="plain" if mode == "plain" else "rag")

    def _expand(self, passages: list[Passage]) -> list[Passage]:
        """Grow passages into their neighbouring chunks (see rag.retrieve.expand) before the prompt is built."""
        if self.index is None or not passages:
            return passages
        return expand_passages(passages, self.index.document_chunks, self.settings.retrieve.expand_neighbors)

    def _focus(self, q: str, passages: list[Passage], builder: PromptBuilder) -> list[Passage]:
        """Cut the passages the prompt can hold to their sentences closest to the question (rag.prompt.focus).

        Needs the retrieval embedder, so a pipeline without an index passes oracle passages whole. Sentences are
        embedded without the cache (they would flood it); the question's vector is recomputed with them.
        """
        n = builder.focus_sentences
        if n <= 0 or self.embedder is None or not passages:
            return passages
        head = builder.max_passages
        return focus_passages(q, passages[:head], self.embedder.encode, n) + passages[head:]

    def _select(self, q: str, mode: str, prompt: Prompt, gen: Generation, t0: float) -> tuple[str, str | None, float]:
        """Typed answer selection (rag.select) on a finished generation: (answer text, the generated text when a
        passage span replaced it, else None, seconds spent). Skipped in plain mode, for unfinished generations
        (timeout, loop, ...), after thinking (the answer follows the reasoning, not the prompt) and when it is off
        for this model; it never outlasts the request's deadline."""
        left = self.settings.generate.timeout_s - (time.perf_counter() - t0)
        if (mode == "plain" or not prompt.passages or gen.finish_reason not in CACHEABLE_FINISH or left <= 0
                or gen.thinking or gen.reasoning_tokens or not self._selector.enabled(self.generator.n_parameters)):
            return gen.text, None, 0.0
        t = time.perf_counter()
        sel = self._selector.run(
            q, gen.text, [p.chunk.text for p in prompt.passages],
            lambda texts: self.generator.score_continuations(prompt, texts, deadline_s=left, prune=True),
        )
        return sel.text, (gen.text if sel.selected else None), time.perf_counter() - t

    def _per_call(self) -> dict[str, Any]:
        """The pipeline's own deadline and length, passed on every call (a shared generator may differ)."""
        g = self.settings.generate
        return {"deadline_s": g.timeout_s, "max_new_tokens": g.max_new_tokens}

    def _grounded(self, prompt: Prompt) -> list[str] | None:
        if self.settings.prompt.grounded and prompt.passages:
            return [p.chunk.text for p in prompt.passages]
        return None

    def _cache_key(self, q: str, mode: str, context: Sequence[Chunk] | None, where: dict[str, str] | None,
                   k: int | None) -> str:
        s = self.settings
        return make_key(
            index=self.index.version if (self.index is not None and mode == "rag") else None,
            embedding=s.embedding.model if mode == "rag" else None,
            generator=self.generator.model_id,
            prompt=s.prompt.model_dump(mode="json"),
            template=_template_version(),
            generate=s.generate.model_dump(mode="json", exclude={"timeout_s", "on_timeout", "device", "max_batch_size",
                                                                 "memory_headroom", "offload_kv_cache",
                                                                 "gradient_checkpointing"}),
            select=s.select.model_dump(mode="json") if mode != "plain" else None,
            retrieve=s.retrieve.model_dump(mode="json") if mode == "rag" else None,
            mode=mode,
            k=self._k(k) if mode == "rag" else None,
            where=where if mode == "rag" else None,
            context=[hashlib.sha256(c.text.encode()).hexdigest() for c in context] if context else None,
            question=normalize_question(q),
        )

    def _ask_many(self, questions: Sequence[str], mode: str, contexts: Sequence[Sequence[Chunk] | None] | None,
                  where: dict[str, str] | None, k: int | None) -> list[Answer]:
        if contexts is not None and len(contexts) != len(questions):
            raise InvalidInputError(f"contexts has {len(contexts)} entries for {len(questions)} questions")
        t0 = time.perf_counter()
        results: list[Answer | None] = [None] * len(questions)
        todo: list[tuple[int, str, str, Sequence[Chunk] | None]] = []
        for i, question in enumerate(questions):
            ctx = contexts[i] if contexts is not None else None
            self._check_mode(mode, ctx is not None)
            q = clean_question(question, self.settings.generate)
            key = self._cache_key(q, mode, ctx, where, k)
            hit = self.cache.get_json(_ANSWER_NS, key)
            if hit is not None:
                try:
                    ans = answer_from_dict(hit[0])
                    ans.cached = hit[1]
                    # Stage timings belong to the run that computed the answer; this request only looked it up.
                    ans.timings = Timings(total_s=time.perf_counter() - t0)
                    results[i] = ans
                    metrics.observe_answer(ans, self.generator.model_id, mode)
                    continue
                except (KeyError, TypeError, ValueError):
                    pass  # an entry of an older layout: recompute
            todo.append((i, q, key, ctx))
        if todo:
            self.warm_up()  # loads once; model loading is not part of any request's timings
            t0 = t = time.perf_counter()
            if mode == "rag":
                assert self.retriever is not None
                retrieved = self.retriever.retrieve_many([q for _, q, _, _ in todo], k=self._k(k), where=where)
            elif mode == "oracle":
                retrieved = [[Passage(chunk=c, score=1.0, rank=j + 1) for j, c in enumerate(ctx or [])]
                             for _, _, _, ctx in todo]
            else:
                retrieved = [[] for _ in todo]
            t_retrieve = (time.perf_counter() - t) / len(todo)
            t = time.perf_counter()
            prompts = [self._build(q, ps, mode) for (_, q, _, _), ps in zip(todo, retrieved)]
            t_prompt = (time.perf_counter() - t) / len(todo)
            grounded = [self._grounded(p) for p in prompts]
            if len(prompts) == 1:
                gens = [self.generator.generate(prompts[0], grounded_texts=grounded[0], **self._per_call())]
            else:
                gens = self.generator.generate_batch(
                    prompts, grounded_texts=grounded if any(g is not None for g in grounded) else None,
                    **self._per_call(),
                )
            for (i, q, key, _), prompt, gen, ps in zip(todo, prompts, gens, retrieved):
                ans = self._finish(q, mode, prompt, gen, ps, t_retrieve, t_prompt, t0, key)
                results[i] = ans
        return [a for a in results if a is not None]

    def _finish(self, q: str, mode: str, prompt: Prompt, gen: Generation, retrieved: list[Passage],
                t_retrieve: float, t_prompt: float, t0: float, key: str | None) -> Answer:
        """Assemble the Answer: citations are the passages in the prompt, numbered as there; ``passages`` are
        all retrieved ones (top-k, with scores), of which the prompt may hold fewer (budget, relative cut-off)."""
        text, generated, t_select = self._select(q, mode, prompt, gen, t0)
        citations = [
            Citation(number=n, chunk_id=p.chunk.id, source=p.chunk.source, title=p.chunk.title, page=p.chunk.page,
                     score=float(p.score))
            for n, p in enumerate(prompt.passages, start=1)
        ]
        before_gen = t_retrieve + t_prompt
        ans = Answer(
            question=q,
            text=text,
            generated_text=generated,
            mode=mode,
            finish_reason=gen.finish_reason,
            citations=citations,
            passages=list(retrieved),
            tokens=TokenCounts(prompt=gen.prompt_tokens, generated=gen.generated_tokens, reasoning=gen.reasoning_tokens),
            timings=Timings(
                retrieve_s=t_retrieve,
                prompt_s=t_prompt,
                ttft_s=(before_gen + gen.ttft_s) if gen.ttft_s is not None else None,
                generate_s=gen.generate_s,
                select_s=t_select,
                total_s=time.perf_counter() - t0,
            ),
            thinking=gen.thinking,
        )
        metrics.observe_answer(ans, self.generator.model_id, mode)
        if key is not None and gen.finish_reason in CACHEABLE_FINISH:
            self.cache.set_json(_ANSWER_NS, key, ans.to_dict())
        return ans


def _template_version() -> str:
    """A hash of the prompt templates' and answer selection's source, so an edited template or candidate pattern
    never serves old cached answers."""
    global _TEMPLATE_HASH
    if _TEMPLATE_HASH is None:
        import rag.prompt.templates as t  # noqa: PLC0415
        import rag.select as sel  # noqa: PLC0415

        sources = [Path(t.__file__)] + sorted(Path(sel.__file__).parent.glob("*.py"))
        _TEMPLATE_HASH = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    return _TEMPLATE_HASH


_TEMPLATE_HASH: str | None = None

__all__ = ["Pipeline", "AnswerStream", "CachedEmbedder", "MODES"]
