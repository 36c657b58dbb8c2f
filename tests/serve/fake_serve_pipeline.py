"""A stand-in for rag.pipeline.Pipeline, for unit tests of the batcher and supervisor only.

Question words steer it: ``sleep:S`` sleeps S seconds (honouring timeout_s, then answers
with finish_reason "timeout"), ``hang:S`` sleeps S seconds ignoring the timeout,
``bad`` raises InvalidInputError, ``crash`` kills the process. Answers echo the batch size
and parameters so tests can see how requests were grouped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

from rag.errors import InvalidInputError, ModelError
from rag.schema import Answer


class FakePipeline:
    def __init__(self, opts: dict) -> None:
        self.opts = opts

    @classmethod
    def open(cls, index_path: str | None, settings: object = None) -> "FakePipeline":
        opts = json.loads(index_path) if index_path else {}
        if opts.get("fail_load"):
            raise ModelError("fake load failure")
        return cls(opts)

    def warm_up(self) -> None:
        time.sleep(float(self.opts.get("load_s", 0.0)))

    def _one(self, q: str, n: int, params: dict, timeout_s: float | None, t0: float) -> Answer:
        finish = "stop"
        for word in q.split():
            if word.startswith("sleep:"):
                want = float(word.split(":")[1])
                left = (timeout_s if timeout_s is not None else 1e9) - (time.monotonic() - t0)
                if want > left:
                    time.sleep(max(0.0, left))
                    finish = "timeout"
                else:
                    time.sleep(want)
            elif word.startswith("hang:"):
                time.sleep(float(word.split(":")[1]))
            elif word == "bad":
                raise InvalidInputError("fake: bad question")
            elif word == "crash":
                os._exit(3)
        return Answer(question=q, text=f"echo {q} | batch={n} | {json.dumps(params, sort_keys=True)}",
                      mode=params.get("mode", "rag"), finish_reason=finish)

    def ask(self, question: str, *, mode: str = "rag", k=None, max_new_tokens=None, temperature=None, top_p=None,
            timeout_s=None) -> Answer:
        return self.ask_many([question], mode=mode, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                             top_p=top_p, timeout_s=timeout_s)[0]

    def ask_many(self, questions, *, mode: str = "rag", k=None, max_new_tokens=None, temperature=None, top_p=None,
                 timeout_s=None) -> list[Answer]:
        t0 = time.monotonic()
        time.sleep(float(self.opts.get("batch_s", 0.0)))
        params = {"mode": mode, "k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        if any("bad" in q.split() for q in questions):
            raise InvalidInputError("fake: bad question")
        return [self._one(q, len(questions), params, timeout_s, t0) for q in questions]

    def stream(self, question: str, *, mode: str = "rag", k=None, max_new_tokens=None, temperature=None, top_p=None,
               timeout_s=None):
        words = question.split()

        class S:
            answer = None

            def __iter__(s) -> Iterator[str]:
                for w in words:
                    time.sleep(0.01)
                    yield w + " "
                s.answer = Answer(question=question, text=" ".join(words) + " ", mode=mode, finish_reason="stop")

        return S()
