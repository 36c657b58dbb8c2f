"""Overhead of the guards: GuardedGenerator.generate against a bare model.generate, same settings.

    python benchmarks/bench_guards.py --prompts 10 --new-tokens 64 --reps 2 --threads 1

Both sides call model.generate with the same kwargs (pad/eos ids, greedy) with EOS disabled (``min_new_tokens == max_new_tokens``) on the same prompts
(chat template applied), so both generate the same number of tokens unless a guard fires (counted and
reported). Runs are interleaved (bare/guarded, the order alternating per repetition) so drift of a shared
machine hits both alike. The guarded side uses the default guard settings (deadline, loop, stall, stop
strings none, thinking detection). Also reports the guards' own cost per step measured in isolation
(GuardCriteria over a recorded sequence), which does not depend on machine load.
Writes benchmarks/results/guards.json and guards.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.generate import GuardedGenerator  # noqa: E402
from rag.generate.guards import GuardCriteria, RowState  # noqa: E402
from rag.schema import Prompt  # noqa: E402

QUESTIONS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how photosynthesis works.",
    "Describe the city of Paris to a visitor.",
    "What are the benefits of regular exercise?",
    "Tell me about the history of the printing press.",
    "How does a refrigerator keep food cold?",
    "Write a letter to a friend about your holiday.",
    "Explain the rules of chess to a beginner.",
    "Why is the sky blue?",
    "Describe a day in the life of a farmer.",
    "What is machine learning?",
    "Give advice to someone starting their first job.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # prefix cache off: this measures the guards' overhead on identical work, not prefill reuse
    settings = Settings.build(generate={"max_new_tokens": args.new_tokens, "timeout_s": 3600, "prefix_cache": False}).generate
    gen = GuardedGenerator(settings)
    gen.warm_up()
    tok, model = gen.tokenizer, gen.model
    prompts = []
    for q in QUESTIONS[: args.prompts]:
        text = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        prompts.append(Prompt(text=text, input_ids=tok.encode(text, add_special_tokens=False), passages=[], question=q, budget=0))
    n = args.new_tokens
    eos = sorted(gen._eos_ids)  # the same generate kwargs the guarded side passes

    def bare(p: Prompt) -> int:
        x = torch.tensor([p.input_ids])
        with torch.inference_mode():
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=eos, top_k=None)
        return out.shape[1] - x.shape[1]

    def guarded(p: Prompt) -> int:
        return gen.generate(p, max_new_tokens=n, min_new_tokens=n).generated_tokens

    bare(prompts[0]), guarded(prompts[0])  # warm-up
    t = {"bare": 0.0, "guarded": 0.0}
    toks = {"bare": 0, "guarded": 0}
    ratios = []
    reasons: dict[str, int] = {}
    for rep in range(args.reps):
        for i, p in enumerate(prompts):
            order = [("bare", bare), ("guarded", guarded)]
            if (rep + i) % 2:
                order.reverse()
            per = {}
            for name, fn in order:
                t0 = time.perf_counter()
                k = fn(p)
                el = time.perf_counter() - t0
                t[name] += el
                toks[name] += k
                per[name] = el / k
            ratios.append(per["guarded"] / per["bare"])
    for p in prompts:  # finish reasons of the guarded side (equal counts unless a guard fired)
        r = gen.generate(p, max_new_tokens=n, min_new_tokens=n).finish_reason
        reasons[r] = reasons.get(r, 0) + 1

    # the guards alone: GuardCriteria over a recorded 64-token continuation, per step
    ids = torch.tensor([prompts[0].input_ids])
    with torch.inference_mode():
        seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                             do_sample=False, pad_token_id=tok.pad_token_id)
    plen = ids.shape[1]
    steps = [seq[:, : plen + j + 1] for j in range(seq.shape[1] - plen)]
    loops = 20
    t0 = time.perf_counter()
    for _ in range(loops):
        crit = GuardCriteria([RowState()], decode=gen._decode, eos_ids=gen._eos_ids, skip_ids=gen._skip_ids,
                             stops=("\n",), deadline=time.monotonic() + 3600, loop_ngram=settings.loop_ngram,
                             loop_repeats=settings.loop_repeats, stall_tokens=10**6)
        for s in steps:
            crit(s, None)
    guard_us = (time.perf_counter() - t0) / (loops * len(steps)) * 1e6

    tps = {k: toks[k] / t[k] for k in t}
    step_ms = 1000 * t["bare"] / toks["bare"]
    result = {
        "command": "python benchmarks/bench_guards.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s), CPU, shared with other jobs",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "model": gen.model_id, "prompts": len(prompts), "new_tokens": n, "reps": args.reps,
        "tokens": toks, "seconds": {k: round(v, 3) for k, v in t.items()},
        "tokens_per_s": {k: round(v, 2) for k, v in tps.items()},
        "overhead_ratio_total": round(tps["bare"] / tps["guarded"], 4),
        "overhead_ratio_median_pair": round(statistics.median(ratios), 4),
        "guarded_finish_reasons": reasons,
        "guard_step_us": round(guard_us, 1),
        "bare_step_ms": round(step_ms, 2),
        "guard_share_of_step": round(guard_us / 1000 / step_ms, 4),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "guards.json").write_text(json.dumps(result, indent=2) + "\n")
    md = f"""# Guard overhead

Command: `{result['command']}`  
Date: {result['date']}; {result['machine']}; Python {result['versions']['python']}, torch {result['versions']['torch']}.  
Model {result['model']}; {len(prompts)} prompts x {n} new tokens (greedy, EOS disabled), {args.reps} interleaved repetitions.

| side | tokens | seconds | tokens/s |
|---|---:|---:|---:|
| bare model.generate | {toks['bare']} | {t['bare']:.2f} | {tps['bare']:.2f} |
| GuardedGenerator.generate | {toks['guarded']} | {t['guarded']:.2f} | {tps['guarded']:.2f} |

Overhead ratio (bare tokens/s / guarded tokens/s): **{result['overhead_ratio_total']}** in total,
{result['overhead_ratio_median_pair']} median over interleaved pairs (time per token).
Guarded finish reasons: {reasons}.

Guards alone (GuardCriteria per step, measured in isolation): {result['guard_step_us']} µs per step, against
{result['bare_step_ms']} ms per decoding step of the bare model = {100 * result['guard_share_of_step']:.2f} % of a step.
The end-to-end ratio carries the noise of a shared machine; the isolated per-step cost does not.
"""
    (args.out / "guards.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
