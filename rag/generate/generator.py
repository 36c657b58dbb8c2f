"""The guarded generator: one local causal LM behind parameter, deadline, loop/stall, thinking,
grounding and memory guards.

Example (loads the bundled model; see tests/generate for more):
    >>> from rag.config import Settings
    >>> gen = GuardedGenerator(Settings.build().generate)   # validates, loads nothing
    >>> gen.warm_up()                                        # doctest: +SKIP
    >>> gen.generate(prompt).text                            # doctest: +SKIP
    'Paris'

Every request goes through ``model.generate`` with one :class:`~rag.generate.guards.GuardCriteria`
(deadline, stop strings, loops, stalls, thinking budget) and optional logits processors (sampling
schedule, grounded decoding). Requests are serialised by a lock: the model is shared and torch's
global RNG is seeded per request from ``settings.seed``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rag.config import BUNDLED_GENERATOR, GenerateSettings
from rag.errors import GenerationTimeoutError, InvalidInputError, ModelError, ResourceExhaustedError
from rag.generate.guards import GuardCriteria, RowState, cut_at_stop
from rag.generate.loading import autocast_context, context_window, fast_decoder, load_model, resolve_device, resolve_dtype
from rag.generate.memory import MemoryProbe, default_probe, estimate_bytes, fit_batch, free_memory, is_oom
from rag.generate.prefix_cache import PrefixCache, cache_kwarg
from rag.generate.processors import GroundedProcessor, SamplingScheduleProcessor
from rag.generate.scoring import continuation_scores
from rag.generate.thinking import FORCED_CLOSE, THINK_CLOSE, THINK_OPEN, prompt_opens_thinking, split_thinking
from rag.models import model_id as _model_id
from rag.models import resolve_generator_model
from rag.schema import Generation, Prompt

log = logging.getLogger(__name__)


@dataclass
class _Request:
    index: int
    prompt: Prompt
    input_ids: list[int]
    grounded: list[str] | None
    in_think: bool
    max_new: int


@dataclass
class _RowResult:
    tokens: list[int]
    dec: list[int]
    reason: str
    think_tokens: int


class GuardedGenerator:
    """A local causal LM with guards. See the module docstring and docs/architecture.md.

    ``memory_probe`` (keyword, optional): a function returning the free bytes of the device; tests
    inject small values to exercise batch shrinking and refusal. Default: psutil on CPU,
    ``torch.cuda.mem_get_info`` on CUDA.

    ``settings.gradient_checkpointing`` calls the model's (activation/gradient) checkpointing switch.
    It saves no memory in pure inference: checkpointing only trades compute for the memory of
    activations kept for a backward pass, and generation computes no gradients.

    ``settings.offload_kv_cache`` uses transformers' offloaded KV cache (``cache_implementation=
    "offloaded"``, i.e. ``DynamicCache(offloading=True)``), which moves finished layers' KV to host
    memory. It needs CUDA; on CPU the cache already lives in host memory and the flag is a no-op.
    """

    def __init__(
        self,
        settings: GenerateSettings,
        cache_dir: Path | None = None,
        *,
        memory_probe: MemoryProbe | None = None,
    ) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.precision, self.device)  # ConfigError for fp16 on CPU
        if settings.model != BUNDLED_GENERATOR and not settings.model.startswith("bundled:"):
            p = Path(settings.model).expanduser()
            if not p.exists():
                raise ModelError(f"generator model not found: {settings.model}", hint="give a HF model folder or a .gguf file")
        elif settings.model != BUNDLED_GENERATOR:
            raise ModelError(f"unknown bundled generator {settings.model!r}; bundled: {BUNDLED_GENERATOR}")
        self.memory_probe: MemoryProbe = memory_probe or default_probe(self.device)
        self._lock = threading.RLock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._token_strs: list[str] | None = None
        self._context_window = 0
        self._n_parameters = 0
        self.prefix_cache = PrefixCache()

    # -- loading ---------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load model and tokenizer once (thread-safe); later calls return at once."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self.settings.threads is not None:
                torch.set_num_threads(self.settings.threads)  # process-wide: fewer threads win on a busy CPU
            path = resolve_generator_model(self.settings.model, self.cache_dir)
            model, tok = load_model(path, self.device, self.dtype)
            if self.settings.gradient_checkpointing:
                enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
                enable()
            self._decode = fast_decoder(tok)
            eos: set[int] = set()
            for src in (getattr(model.generation_config, "eos_token_id", None), tok.eos_token_id):
                if isinstance(src, int):
                    eos.add(src)
                elif src:
                    eos.update(int(x) for x in src)
            self._eos_ids = eos
            think_ids = set()
            for tag in (THINK_OPEN, THINK_CLOSE):
                tid = tok.convert_tokens_to_ids(tag)
                if isinstance(tid, int) and tid != tok.unk_token_id:
                    think_ids.add(tid)
            self._skip_ids = set(tok.all_special_ids) - eos - think_ids
            self._close_ids = tok.encode(FORCED_CLOSE, add_special_tokens=False)
            self._context_window = context_window(model.config, tok)
            self._n_parameters = int(model.num_parameters())
            self._tokenizer = tok
            self._model = model  # last: marks the generator as loaded

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.warm_up()
        return self._tokenizer

    @property
    def context_window(self) -> int:
        self.warm_up()
        return self._context_window

    @property
    def n_parameters(self) -> int:
        self.warm_up()
        return self._n_parameters

    @property
    def model_id(self) -> str:
        return _model_id(self.settings.model)

    # -- public API ------------------------------------------------------------------------------
    def generate(
        self,
        prompt: Prompt,
        *,
        grounded_texts: list[str] | None = None,
        deadline_s: float | None = None,
        max_new_tokens: int | None = None,
        min_new_tokens: int | None = None,
    ) -> Generation:
        """Generate the answer to one prompt. ``max_new_tokens`` defaults to the settings' value."""
        return self._generate(
            [prompt], [grounded_texts], deadline_s=deadline_s, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens
        )[0]

    def generate_batch(
        self,
        prompts: list[Prompt],
        *,
        grounded_texts: list[list[str]] | None = None,
        deadline_s: float | None = None,
        max_new_tokens: int | None = None,
        min_new_tokens: int | None = None,
    ) -> list[Generation]:
        """Generate for many prompts: left padding, batches of <= max_batch_size that fit in memory, input order kept."""
        if not prompts:
            return []
        if grounded_texts is not None and len(grounded_texts) != len(prompts):
            raise InvalidInputError(
                f"grounded_texts has {len(grounded_texts)} entries for {len(prompts)} prompts: give one list per prompt"
            )
        grounded: list[list[str] | None] = list(grounded_texts) if grounded_texts is not None else [None] * len(prompts)
        return self._generate(
            prompts, grounded, deadline_s=deadline_s, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens
        )

    def stream(
        self,
        prompt: Prompt,
        *,
        grounded_texts: list[str] | None = None,
        deadline_s: float | None = None,
        max_new_tokens: int | None = None,
    ) -> GenerationStream:
        """Start generating in a background thread; iterate the result for answer text pieces."""
        self._validate([prompt], self.settings.max_new_tokens if max_new_tokens is None else max_new_tokens)
        return GenerationStream(
            self, prompt, grounded_texts=grounded_texts, deadline_s=deadline_s, max_new_tokens=max_new_tokens
        )

    def score_continuations(self, prompt: Prompt, texts: Sequence[str], *, deadline_s: float | None = None,
                            prune: bool = False) -> list[float | None] | None:
        """How likely the model finds each of ``texts`` as the whole answer to ``prompt``: the mean log-probability
        per token of the text followed by the end-of-answer token (see :mod:`rag.generate.scoring`). With
        ``prune``, texts that provably cannot be the most likely one are skipped and scored None.

        Reuses the prompt-prefix KV cache (right after :meth:`generate` on the same prompt only the last prompt
        token is prefilled again). Returns None when the deadline (``deadline_s``, default ``settings.timeout_s``)
        passes or memory runs out (then the prefix cache is freed too): scoring refines an answer, it never fails one.

        Example:
            >>> gen.score_continuations(prompt, ["Paris", "Lyon"])   # doctest: +SKIP
            [-0.21, -2.7]
        """
        self.warm_up()
        if deadline_s is not None and not deadline_s > 0:
            raise InvalidInputError(f"deadline_s = {deadline_s}: must be > 0")
        texts = list(texts)
        if not texts:
            return []
        if any(not t.strip() for t in texts):
            raise InvalidInputError("every text to score needs visible characters")
        self._validate([prompt], 1)
        tok = self._tokenizer
        lead = "" if not prompt.text or prompt.text[-1].isspace() else " "
        end = tok.eos_token_id if tok.eos_token_id in self._eos_ids else min(self._eos_ids)
        conts = [list(tok.encode(lead + t, add_special_tokens=False)) + [end] for t in texts]
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.settings.timeout_s)
        with self._lock:
            cache, cached = self.prefix_cache.take(prompt.input_ids) if self.settings.prefix_cache else (None, 0)
            try:
                with autocast_context(self.device, self.dtype):
                    return continuation_scores(self._model, prompt.input_ids, conts, device=self.device,
                                               cache=cache, cached=cached, deadline=deadline, prune=prune)
            except Exception as e:  # noqa: BLE001 - only OOM is handled, anything else re-raised
                if not is_oom(e):
                    raise
                self.prefix_cache.clear()
                free_memory(self.device)
                log.warning("out of memory while scoring %d answer candidates; keeping the generated answer", len(texts))
                return None

    # -- guards: parameters ----------------------------------------------------------------------
    def _validate(self, prompts: list[Prompt], max_new: int) -> None:
        limit = self.settings.max_new_tokens_limit
        if not isinstance(max_new, int) or not 1 <= max_new <= limit:
            raise InvalidInputError(f"max_new_tokens = {max_new}: must be in [1, {limit}]")
        window = self.context_window
        for p in prompts:
            n = len(p.input_ids)
            if n == 0:
                raise InvalidInputError("prompt is empty (0 tokens): nothing to generate from")
            if n + max_new > window:
                raise InvalidInputError(
                    f"prompt ({n} tokens) + max_new_tokens ({max_new}) = {n + max_new} exceeds the model's "
                    f"context window of {window}",
                    hint=f"shorten the prompt or use max_new_tokens <= {max(window - n, 0)}",
                )

    # -- orchestration ---------------------------------------------------------------------------
    def _generate(
        self,
        prompts: list[Prompt],
        grounded: list[list[str] | None],
        *,
        deadline_s: float | None,
        max_new_tokens: int | None,
        min_new_tokens: int | None = None,
        on_step: Callable[[list[RowState]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        self.warm_up()  # loading is not charged to the request's deadline
        start = time.monotonic()
        max_new = self.settings.max_new_tokens if max_new_tokens is None else max_new_tokens
        self._validate(prompts, max_new)
        if deadline_s is not None and not deadline_s > 0:
            raise InvalidInputError(f"deadline_s = {deadline_s}: must be > 0")
        deadline = start + (deadline_s if deadline_s is not None else self.settings.timeout_s)
        reqs = [
            _Request(i, p, list(p.input_ids), g, prompt_opens_thinking(p.text) if p.text else False, max_new)
            for i, (p, g) in enumerate(zip(prompts, grounded, strict=True))
        ]
        results: list[Generation | None] = [None] * len(reqs)
        order = sorted(reqs, key=lambda r: len(r.input_ids))  # similar lengths together: less padding
        with self._lock:
            pos = 0
            while pos < len(order):
                if time.monotonic() >= deadline:  # prefill guard: do not start work that is already late
                    for r in order[pos:]:
                        results[r.index] = self._timed_out(r, start)
                    break
                chunk = order[pos : pos + self.settings.max_batch_size]
                b = self._plan_batch(chunk, max_new)
                chunk = chunk[:b]
                for r, g in zip(chunk, self._run_with_recovery(chunk, deadline, start, min_new_tokens, on_step, cancel)):
                    results[r.index] = g
                pos += b
        out = [g for g in results if g is not None]
        if self.settings.on_timeout == "raise":
            late = [g for g in out if g.finish_reason == "timeout"]
            if late:
                raise GenerationTimeoutError(
                    f"generation passed its deadline of {deadline - start:.3g} s "
                    f"({late[0].generated_tokens} tokens generated)",
                    hint="raise generate.timeout_s or set generate.on_timeout='partial'",
                )
        return out

    def _timed_out(self, r: _Request, start: float) -> Generation:
        return Generation(
            text="", finish_reason="timeout", prompt_tokens=len(r.input_ids), generated_tokens=0,
            generate_s=time.monotonic() - start,
        )

    # -- guards: memory --------------------------------------------------------------------------
    def _plan_batch(self, chunk: list[_Request], max_new: int) -> int:
        """How many requests of ``chunk`` (sorted by length) fit in free memory; ResourceExhaustedError if none."""
        dtype_bytes = torch.finfo(self.dtype).bits // 8
        config = self._model.config

        def need(b: int) -> int:
            longest = max(len(r.input_ids) for r in chunk[:b])
            return estimate_bytes(config, prompt_tokens=longest, max_new_tokens=max_new, batch=b, dtype_bytes=dtype_bytes)

        available = int(self.memory_probe())
        b = fit_batch(len(chunk), available=available, headroom=self.settings.memory_headroom, need=need)
        if b == 0:
            mib = 2**20
            raise ResourceExhaustedError(
                f"not enough memory for one request: needs about {need(1) / mib:.0f} MiB, "
                f"{available / mib:.0f} MiB free and memory_headroom {self.settings.memory_headroom:g} kept free",
                hint="use a shorter prompt or fewer max_new_tokens, or free memory",
            )
        return b

    def _offload_supported(self) -> bool:
        return self.device.type == "cuda"

    def _run_with_recovery(
        self,
        chunk: list[_Request],
        deadline: float,
        start: float,
        min_new: int | None,
        on_step: Callable[[list[RowState]], None] | None,
        cancel: threading.Event | None,
        *,
        offload: bool | None = None,
    ) -> list[Generation]:
        """Run a batch; on OOM free memory and retry with half the batch, then the offloaded KV cache, then give up."""
        if offload is None:
            offload = self.settings.offload_kv_cache and self._offload_supported()
        try:
            return self._run(chunk, deadline, start, min_new, on_step, cancel, offload=offload)
        except Exception as e:  # noqa: BLE001 - only OOM is handled, anything else re-raised
            if not is_oom(e):
                raise
            err = e
        self.prefix_cache.clear()  # kept prefixes are memory too; take() hands out copies, so nothing else to undo
        free_memory(self.device)
        if len(chunk) > 1:
            half = len(chunk) // 2
            gens = self._run_with_recovery(chunk[:half], deadline, start, min_new, on_step, cancel, offload=offload)
            gens += self._run_with_recovery(chunk[half:], deadline, start, min_new, on_step, cancel, offload=offload)
        elif not offload and self._offload_supported():
            gens = self._run_with_recovery(chunk, deadline, start, min_new, on_step, cancel, offload=True)
        else:
            raise ResourceExhaustedError(
                f"out of memory while generating ({type(err).__name__}: {str(err)[:200]}), "
                "even with batch size 1" + (" and the offloaded KV cache" if offload else ""),
                hint="use a shorter prompt or fewer max_new_tokens",
            ) from err
        for g in gens:
            g.retries += 1
        return gens

    # -- one model.generate call (plus budget forcing) -----------------------------------------------
    def _run(
        self,
        chunk: list[_Request],
        deadline: float,
        start: float,
        min_new: int | None,
        on_step: Callable[[list[RowState]], None] | None,
        cancel: threading.Event | None,
        *,
        offload: bool,
    ) -> list[Generation]:
        rows, crit = self._call_model(
            chunk, deadline, min_new, on_step, cancel, offload=offload, thinking_budget=self.settings.thinking_budget
        )
        ttft = (crit.first_token_time - start) if crit.first_token_time is not None else None
        extra: dict[int, tuple[_RowResult, list[int]]] = {}
        forced = [i for i, row in enumerate(rows) if row.reason == "thinking_budget"]
        if forced:
            extra = self._force_answers([chunk[i] for i in forced], [rows[i] for i in forced], deadline, min_new, on_step, cancel, offload)
            extra = {forced[k]: v for k, v in extra.items()}
        gens = []
        for i, (r, row) in enumerate(zip(chunk, rows)):
            tokens, dec, reason, think_tokens = row.tokens, row.dec, row.reason, row.think_tokens
            if i in extra:
                cont, close = extra[i]
                tokens = tokens + close + cont.tokens
                dec = dec + [t for t in close if t not in self._skip_ids] + cont.dec
                reason = cont.reason
                think_tokens += len(close) + cont.think_tokens
            gens.append(self._finish(r, tokens, dec, reason, think_tokens, ttft, start, len(chunk)))
        return gens

    def _force_answers(
        self,
        reqs: list[_Request],
        rows: list[_RowResult],
        deadline: float,
        min_new: int | None,
        on_step: Callable[[list[RowState]], None] | None,
        cancel: threading.Event | None,
        offload: bool,
    ) -> dict[int, tuple[_RowResult, list[int]]]:
        """Budget forcing: close the thinking (``\\n</think>\\n\\n``) and generate the answer with what is left."""
        close = list(self._close_ids)
        groups: dict[int, list[int]] = {}
        for k, (r, row) in enumerate(zip(reqs, rows)):
            remaining = r.max_new - len(row.tokens) - len(close)
            if remaining >= 1:
                groups.setdefault(remaining, []).append(k)
        out: dict[int, tuple[_RowResult, list[int]]] = {}
        for remaining, ks in groups.items():
            cont = [
                _Request(k, reqs[k].prompt, reqs[k].input_ids + rows[k].tokens + close, reqs[k].grounded, False, remaining)
                for k in ks
            ]
            conts, _ = self._call_model(cont, deadline, min_new, on_step, cancel, offload=offload, thinking_budget=None)
            for k, c in zip(ks, conts):
                out[k] = (c, close)
        return out

    def _call_model(
        self,
        chunk: list[_Request],
        deadline: float,
        min_new: int | None,
        on_step: Callable[[list[RowState]], None] | None,
        cancel: threading.Event | None,
        *,
        offload: bool,
        thinking_budget: int | None,
    ) -> tuple[list[_RowResult], GuardCriteria]:
        from transformers import LogitsProcessorList, StoppingCriteriaList  # noqa: PLC0415

        s = self.settings
        model, tok = self._model, self._tokenizer
        max_new = max(r.max_new for r in chunk)
        width = max(len(r.input_ids) for r in chunk)
        pad = tok.pad_token_id if tok.pad_token_id is not None else next(iter(self._eos_ids))
        ids = [[pad] * (width - len(r.input_ids)) + r.input_ids for r in chunk]
        mask = [[0] * (width - len(r.input_ids)) + [1] * len(r.input_ids) for r in chunk]
        input_ids = torch.tensor(ids, dtype=torch.long, device=self.device)
        attention_mask = torch.tensor(mask, dtype=torch.long, device=self.device)

        states = [RowState(in_think=r.in_think) for r in chunk]
        crit = GuardCriteria(
            states,
            decode=self._decode,
            eos_ids=self._eos_ids,
            skip_ids=self._skip_ids,
            stops=[tuple(r.prompt.stop) for r in chunk],
            deadline=deadline,
            loop_ngram=s.loop_ngram,
            loop_repeats=s.loop_repeats,
            stall_tokens=s.stall_tokens,
            thinking_budget=thinking_budget,
            on_step=on_step,
            cancel=cancel,
        )
        processors = LogitsProcessorList()
        if any(r.grounded is not None for r in chunk):
            processors.append(
                GroundedProcessor(
                    self._vocab_strings(), [r.grounded for r in chunk], prompt_len=width,
                    eos_ids=sorted(self._eos_ids), states=states,
                )
            )
        kwargs: dict[str, Any] = {}
        scheduled = s.temperature_schedule is not None or s.top_p_schedule is not None
        if scheduled or (processors and s.temperature > 0):
            processors.append(
                SamplingScheduleProcessor(
                    s.temperature_schedule or [s.temperature], s.top_p_schedule or [s.top_p], max_new_tokens=max_new, prompt_len=width
                )
            )
            kwargs.update(do_sample=True, temperature=1.0, top_p=1.0)
        elif s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False)
        if min_new:
            kwargs["min_new_tokens"] = min(min_new, max_new)
        if offload:
            kwargs["cache_implementation"] = "offloaded"
        if kwargs["do_sample"]:
            torch.manual_seed(s.seed)
        reuse = s.prefix_cache and len(chunk) == 1 and not offload
        if reuse:  # batch of one: no padding, so the prompt's prefix lines up with the kept one
            cache, _ = self.prefix_cache.take(chunk[0].input_ids)
            if cache is not None:
                kwargs[cache_kwarg()] = cache
            kwargs["return_dict_in_generate"] = True
        with torch.inference_mode(), autocast_context(self.device, self.dtype):
            out = model.generate(
                input_ids,
                attention_mask=attention_mask,
                max_new_tokens=max_new,
                pad_token_id=pad,
                eos_token_id=sorted(self._eos_ids),
                stopping_criteria=StoppingCriteriaList([crit]),
                logits_processor=processors,
                top_k=None,
                **kwargs,
            )
        if reuse:
            kept = getattr(out, "cache", None)
            self.prefix_cache.store(chunk[0].input_ids, kept if kept is not None else getattr(out, "past_key_values", None))
        rows = [
            _RowResult(st.tokens, st.dec, st.reason or "length", st.think_tokens)
            for st in states
        ]
        return rows, crit

    def _vocab_strings(self) -> list[str]:
        if self._token_strs is None:
            size = len(self._tokenizer)
            backend = getattr(self._tokenizer, "backend_tokenizer", None)
            if backend is not None:
                self._token_strs = backend.decode_batch([[i] for i in range(size)], skip_special_tokens=True)
            else:
                self._token_strs = [self._tokenizer.decode([i], skip_special_tokens=True) for i in range(size)]
        return self._token_strs

    def _finish(
        self, r: _Request, tokens: list[int], dec: list[int], reason: str, think_tokens: int,
        ttft: float | None, start: float, batch_size: int,
    ) -> Generation:
        text = self._decode(dec) if dec else ""
        thinking, answer, _closed = split_thinking(text, r.in_think)
        return Generation(
            text=cut_at_stop(answer, r.prompt.stop),
            finish_reason=reason,  # type: ignore[arg-type]
            prompt_tokens=len(r.prompt.input_ids),
            generated_tokens=len(tokens),
            reasoning_tokens=think_tokens,
            thinking=thinking,
            ttft_s=ttft,
            generate_s=time.monotonic() - start,
            batch_size=batch_size,
        )


_END = object()


class GenerationStream:
    """Text pieces of one generation as they are produced; ``.result`` is the Generation once done.

    Only answer text is streamed (not thinking); pieces join to ``result.text``. A piece that might be the
    start of a stop string is held back until it is clear. ``close()`` stops the generation early.
    """

    def __init__(self, generator: GuardedGenerator, prompt: Prompt, **kwargs: Any) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._cancel = threading.Event()
        self._stops = tuple(prompt.stop)
        self._emitted = ""
        self._result: Generation | None = None
        self._error: BaseException | None = None
        self._exhausted = False
        self._thread = threading.Thread(
            target=self._produce, args=(generator, prompt, kwargs), name="rag-generate-stream", daemon=True
        )
        self._thread.start()

    def _produce(self, generator: GuardedGenerator, prompt: Prompt, kwargs: dict[str, Any]) -> None:
        try:
            gen = generator._generate(
                [prompt], [kwargs.get("grounded_texts")], deadline_s=kwargs.get("deadline_s"),
                max_new_tokens=kwargs.get("max_new_tokens"), on_step=self._on_step, cancel=self._cancel,
            )[0]
            if gen.text.startswith(self._emitted) and len(gen.text) > len(self._emitted):
                self._queue.put(gen.text[len(self._emitted):])
            self._result = gen
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._error = e
        finally:
            self._queue.put(_END)

    def _on_step(self, states: list[RowState]) -> None:
        st = states[0]
        if st.phase != "answer":
            return
        text = cut_at_stop(st.text[st.answer_start or 0:], self._stops)
        if st.reason is None:
            for s in self._stops:
                for k in range(min(len(s) - 1, len(text)), 0, -1):
                    if text.endswith(s[:k]):
                        text = text[:-k]
                        break
        if len(text) > len(self._emitted) and text.startswith(self._emitted):
            self._queue.put(text[len(self._emitted):])
            self._emitted = text

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._exhausted:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._exhausted = True
            self._thread.join()
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    @property
    def result(self) -> Generation:
        """The Generation (waits for the generation to finish; raises its error if it failed)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """Stop generating at the next token and wait for the thread."""
        self._cancel.set()
        self._thread.join()
