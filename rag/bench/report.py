"""The benchmark report: every number as JSON, a Markdown summary and two PNG charts.

Files written into the output folder: ``report.json``, ``report.md``, ``accuracy.png``
(EM / F1 / contains by mode with 95% intervals) and ``latency.png`` (box plots of the
per-question seconds by stage and mode).

Example:
    >>> rep = build_report(ds, ["plain", "rag"], records, config={}, run={})   # doctest: +SKIP
    >>> write_report(rep, records, Path("out"))                                 # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.bench.stats import paired_difference, percentiles, summarize

ANSWER_METRICS = ("em", "f1", "contains")
METRIC_LABEL = {"em": "EM", "f1": "F1", "contains": "contains"}
STAGES = ("retrieve_s", "prompt_s", "ttft_s", "generate_s", "select_s", "total_s")
STAGE_LABEL = {"retrieve_s": "retrieve", "prompt_s": "prompt", "ttft_s": "TTFT", "generate_s": "generate",
               "select_s": "select", "total_s": "total"}
PAIRS = (("rag", "plain"), ("oracle", "plain"), ("oracle", "rag"))
PACKAGES = ("rag", "torch", "transformers", "faiss-cpu", "sentence-transformers", "numpy")
MODE_COLOR = {"plain": "#8c8c8c", "rag": "#1f77b4", "oracle": "#2ca02c"}

__all__ = ["build_report", "write_report", "environment", "render_markdown", "plot_accuracy", "plot_latency"]


# --- environment -----------------------------------------------------------------------------------------------


def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    commit = r.stdout.strip()
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return commit + ("-dirty" if dirty else "")


def _memory_gb() -> float | None:
    try:
        import psutil  # noqa: PLC0415

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        try:
            return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            return None


def environment() -> dict[str, Any]:
    """Package versions, machine and git commit of this run."""
    return {
        "packages": _package_versions(),
        "python": platform.python_version(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory_gb": _memory_gb(),
        },
        "git_commit": _git_commit(),
    }


# --- numbers -----------------------------------------------------------------------------------------------------


def _mode_section(recs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(recs)
    accuracy = {m: summarize([r["scores"][m] for r in recs]) for m in ANSWER_METRICS}
    latency = {STAGE_LABEL[s].lower(): percentiles([r.get("timings", {}).get(s) for r in recs]) for s in STAGES}
    tok = [r.get("tokens") or {} for r in recs]
    gen_tokens = sum(t.get("generated", 0) for t in tok)
    gen_s = sum((r.get("timings") or {}).get("generate_s") or 0.0 for r in recs)
    wall = sum(r.get("wall_s") or 0.0 for r in recs)
    batch_sizes = Counter(r.get("batch_size", 1) for r in recs)
    rss = [r.get("peak_rss_mb") for r in recs if r.get("peak_rss_mb") is not None]
    return {
        "n": n,
        "selected": sum(1 for r in recs if r.get("generated") is not None),
        "errors": sum(1 for r in recs if r.get("error")),
        "error_codes": dict(Counter(r["error"]["code"] for r in recs if r.get("error"))),
        "accuracy": accuracy,
        "finish_reasons": dict(Counter(r.get("finish_reason") for r in recs)),
        "latency_s": latency,
        "tokens_per_s": {
            "overall": (gen_tokens / gen_s) if gen_s > 0 else None,
            **percentiles([r.get("tokens_per_s") for r in recs]),
        },
        "prompt_tokens": percentiles([t.get("prompt") for t in tok if t]),
        "generated_tokens": percentiles([t.get("generated") for t in tok if t]),
        "questions_per_s": (n / wall) if wall > 0 else None,
        "batch_sizes": {str(k): v for k, v in sorted(batch_sizes.items())},
        "cached": sum(1 for r in recs if r.get("cached")),
        "context_gold": summarize([r["context_gold"] for r in recs if "context_gold" in r]),
        "context_answer": summarize([r["context_answer"] for r in recs if "context_answer" in r]),
        "peak_rss_mb": max(rss) if rss else None,
    }


def _retrieval_section(recs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r["retrieval"] for r in recs if r.get("retrieval") is not None]
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(key)

    def order(key: str) -> tuple[int, int]:
        name, _, k = key.partition("@")
        rank = {"recall": 0, "hit": 1, "answer_recall": 2, "mrr": 3}.get(name, 4)
        return (rank, int(k) if k.isdigit() else 0)

    return {"n": len(rows), "metrics": {key: summarize([row[key] for row in rows if key in row])
                                        for key in sorted(keys, key=order)}}


def _groups(by_mode: dict[str, list[dict[str, Any]]], max_values: int = 8) -> dict[str, Any]:
    """Accuracy split by a question field with a few string values (e.g. HotpotQA ``type``, ``level``)."""
    values: dict[str, set[str]] = {}
    for recs in by_mode.values():
        for r in recs:
            for key, v in (r.get("extra") or {}).items():
                if isinstance(v, str):
                    values.setdefault(key, set()).add(v)
    out: dict[str, Any] = {}
    for key, vals in sorted(values.items()):
        if not 1 < len(vals) <= max_values:
            continue
        out[key] = {
            v: {m: {metric: summarize([r["scores"][metric] for r in recs if (r.get("extra") or {}).get(key) == v])
                    for metric in ANSWER_METRICS}
                for m, recs in by_mode.items()}
            for v in sorted(vals)
        }
    return out


def build_report(ds: Any, modes: Sequence[str], records: Sequence[dict[str, Any]], *, config: dict[str, Any],
                 run: dict[str, Any]) -> dict[str, Any]:
    """All numbers of one run, from its records (one per mode and question)."""
    by_mode: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    order = {q.id: i for i, q in enumerate(ds.questions)}
    for r in sorted(records, key=lambda r: order.get(r["qid"], 1 << 30)):
        if r["mode"] in by_mode:
            by_mode[r["mode"]].append(r)
    paired: dict[str, Any] = {}
    for a, b in PAIRS:
        if a not in by_mode or b not in by_mode:
            continue
        rb = {r["qid"]: r for r in by_mode[b]}
        both = [(r, rb[r["qid"]]) for r in by_mode[a] if r["qid"] in rb]
        paired[f"{a}-{b}"] = {
            m: paired_difference([x["scores"][m] for x, _ in both], [y["scores"][m] for _, y in both])
            for m in ANSWER_METRICS
        }
    expected = {m: sum(1 for q in ds.questions if m != "oracle" or q.gold_ids) for m in modes}
    return {
        "dataset": ds.describe(),
        "config": config,
        "environment": environment(),
        "run": run,
        "complete": all(len(by_mode[m]) >= expected[m] for m in modes),
        "modes": {m: _mode_section(by_mode[m]) for m in modes},
        "paired": paired,
        "retrieval": _retrieval_section(by_mode.get("rag", [])),
        "groups": _groups(by_mode),
    }


# --- Markdown ---------------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _ci(s: dict[str, Any]) -> str:
    if not s or s.get("mean") is None:
        return "–"
    lo, hi = s["ci95"]
    return f"{_pct(s['mean'])} [{_pct(lo)}, {_pct(hi)}]"


def _sec(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 0.01:
        return f"{x * 1000:.2f} ms"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def _auto(value: Any) -> str:
    """A setting whose None means "by model size"."""
    return "auto (by model size)" if value is None else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """A readable summary: accuracy, paired differences, retrieval, latency, throughput, setup."""
    ds, cfg, env, modes = report["dataset"], report["config"], report["environment"], report["modes"]
    s = cfg.get("settings", {})
    gen, prm, sel = s.get("generate", {}), s.get("prompt", {}), s.get("select", {})
    lines = [f"# rag bench: {ds['name']}", ""]
    status = "" if report.get("complete", True) else " **(incomplete run: resume with the same command)**"
    lines += [
        f"{ds['questions']} questions ({ds['layout']} layout{', limit ' + str(cfg['limit']) if cfg.get('limit') else ''})"
        f"; modes {', '.join(modes)}{status}.",
        f"Generator `{gen.get('model', '?')}`, greedy={gen.get('temperature', 0) == 0}, max_new_tokens "
        f"{gen.get('max_new_tokens', '?')}; embedding `{s.get('embedding', {}).get('model', '?')}`, k={cfg.get('k')}, "
        f"max_passages {_auto(prm.get('max_passages'))}, focus_sentences {_auto(prm.get('focus_sentences'))}, "
        f"examples {prm.get('examples')}, grounded {prm.get('grounded')}, typed answer selection "
        f"{_auto(sel.get('typed'))}; batch size {cfg.get('batch_size')}.",
        "",
        "## Accuracy (%, 95% CI)",
        "",
        "| mode | n | EM | F1 | contains | finish reasons |",
        "|---|---:|---|---|---|---|",
    ]
    for m, sec in modes.items():
        acc = sec["accuracy"]
        fr = ", ".join(f"{k} {v}" for k, v in sorted(sec["finish_reasons"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {m} | {sec['n']} | {_ci(acc['em'])} | {_ci(acc['f1'])} | {_ci(acc['contains'])} | {fr} |")
    lines.append("")
    picked = [f"{m} {sec['selected']} of {sec['n']}" for m, sec in modes.items() if sec.get("selected")]
    if picked:
        lines += ["Answers that typed selection took from the passages instead of the generated text: "
                  + ", ".join(picked) + ".", ""]
    lines.append("EM/contains intervals: Wilson; F1: bootstrap (2000 resamples, seed 0).")
    if report["paired"]:
        lines += ["", "## Paired differences (same questions, percentage points, 95% CI)", "",
                  "| comparison | metric | n | difference | better / worse / same | sign test p |",
                  "|---|---|---:|---|---|---:|"]
        for name, per in report["paired"].items():
            a, _, b = name.partition("-")
            for metric, d in per.items():
                if d["n"] == 0:
                    continue
                lo, hi = d["ci95"]
                lines.append(
                    f"| {a} − {b} | {METRIC_LABEL[metric]} | {d['n']} | {100 * d['diff']:+.1f} "
                    f"[{100 * lo:+.1f}, {100 * hi:+.1f}] | {d['wins']} / {d['losses']} / {d['ties']} | "
                    f"{d['p_sign']:.3g} |"
                )
        lines.append("")
        lines.append("Paired bootstrap (2000 resamples, seed 0); an interval excluding 0 is a difference at 95%.")
    for key, per_value in report.get("groups", {}).items():
        lines += ["", f"## Accuracy by `{key}` (contains / F1, %)", "",
                  "| " + key + " | " + " | ".join(f"{m} n" + f" | {m}" for m in modes) + " |",
                  "|---|" + "---:|---|" * len(modes)]
        for v, per_mode in per_value.items():
            cells = []
            for m in modes:
                c, f = per_mode[m]["contains"], per_mode[m]["f1"]
                cells += [str(c["n"]), f"{_pct(c['mean'])} / {_pct(f['mean'])}"]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
    ret = report["retrieval"]
    if ret["n"]:
        lines += ["", f"## Retrieval (rag mode, n={ret['n']}, %, 95% CI)", "", "| metric | value |", "|---|---|"]
        for key, sm in ret["metrics"].items():
            lines.append(f"| {key} | {_ci(sm)} |")
        ctx = modes.get("rag", {}).get("context_gold", {})
        if ctx and ctx.get("n"):
            lines.append(f"| gold passage in the prompt | {_ci(ctx)} |")
        lines += ["", "recall@k: fraction of gold ids in the top k chunks; hit@k: any gold id; answer_recall@k: a "
                      "gold answer string occurs in a top-k passage; MRR: 1/rank of the first gold chunk."]
    lines += ["", "## Latency per question", "", "| mode | stage | p50 | p95 | p99 | mean |", "|---|---|---:|---:|---:|---:|"]
    for m, sec in modes.items():
        for stage, p in sec["latency_s"].items():
            if not p.get("n") or (stage == "retrieve" and m != "rag"):
                continue
            lines.append(f"| {m} | {stage} | {_sec(p['p50'])} | {_sec(p['p95'])} | {_sec(p['p99'])} | {_sec(p['mean'])} |")
    lines += ["", "## Throughput and tokens", "",
              "| mode | tokens/s (overall) | tokens/s p50 | prompt tokens p50 / p95 | generated p50 / p95 | questions/s | peak RSS |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for m, sec in modes.items():
        tps, pt, gt = sec["tokens_per_s"], sec["prompt_tokens"], sec["generated_tokens"]
        lines.append(
            f"| {m} | {_num(tps['overall'])} | {_num(tps['p50'])} | {_num(pt['p50'], '{:.0f}')} / "
            f"{_num(pt['p95'], '{:.0f}')} | {_num(gt['p50'], '{:.0f}')} / {_num(gt['p95'], '{:.0f}')} | "
            f"{_num(sec['questions_per_s'], '{:.2f}')} | {_num(sec['peak_rss_mb'], '{:.0f} MiB')} |"
        )
    mach, pk, run = env["machine"], env["packages"], report.get("run", {})
    lines += [
        "",
        "## Setup",
        "",
        f"- machine: {mach['platform']}, {mach['cpu_count']} CPUs ({mach.get('cpu_affinity')} usable), "
        f"{mach['memory_gb']} GiB; Python {env['python']}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v),
        f"- git commit: {env['git_commit'] or 'unknown'}",
        f"- run: {run.get('new_records', 0)} new results, {run.get('resumed_records', 0)} resumed; "
        f"peak RSS {_num(run.get('peak_rss_mb'), '{:.0f}')} MiB; wall {_num(run.get('wall_s'), '{:.0f}')} s",
        "",
        "![accuracy](accuracy.png)",
        "",
        "![latency](latency.png)",
        "",
    ]
    return "\n".join(lines)


# --- charts -------------------------------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_accuracy(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: EM / F1 / contains per mode, with 95% interval error bars."""
    plt = _plt()
    modes = list(report["modes"])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    width = 0.8 / max(1, len(modes))
    for i, m in enumerate(modes):
        acc = report["modes"][m]["accuracy"]
        xs, ys, lo, hi = [], [], [], []
        for j, metric in enumerate(ANSWER_METRICS):
            s = acc[metric]
            if s["mean"] is None:
                continue
            xs.append(j + (i - (len(modes) - 1) / 2) * width)
            ys.append(100 * s["mean"])
            lo.append(max(0.0, 100 * (s["mean"] - s["ci95"][0])))
            hi.append(max(0.0, 100 * (s["ci95"][1] - s["mean"])))
        bars = ax.bar(xs, ys, width * 0.95, yerr=[lo, hi], capsize=3, label=f"{m} (n={report['modes'][m]['n']})",
                      color=MODE_COLOR.get(m), error_kw={"elinewidth": 1})
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:.0f}", (b.get_x() + b.get_width() / 2, y), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(ANSWER_METRICS)), [METRIC_LABEL[m] for m in ANSWER_METRICS])
    ax.set_ylabel("% of questions (95% CI)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Answer accuracy by mode — {report['dataset']['name']}")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_latency(records: Sequence[dict[str, Any]], modes: Sequence[str], path: Path) -> None:
    """One panel per stage; one box per mode (seconds per question, log scale when it spans decades)."""
    plt = _plt()
    stages = [s for s in STAGES if any((r.get("timings") or {}).get(s) is not None for r in records)] or ["total_s"]
    fig, axes = plt.subplots(1, len(stages), figsize=(2.6 * len(stages) + 1, 3.6), dpi=120, squeeze=False)
    for ax, stage in zip(axes[0], stages):
        data, labels, colors = [], [], []
        for m in modes:
            vals = [(r.get("timings") or {}).get(stage) for r in records if r["mode"] == m]
            vals = [v for v in vals if v is not None]
            if stage == "retrieve_s" and m != "rag":
                continue
            if vals:
                data.append(vals)
                labels.append(m)
                colors.append(MODE_COLOR.get(m, "#999999"))
        unit = "s"
        if data and max(v for d in data for v in d) < 1.0:
            data, unit = [[1000 * v for v in d] for d in data], "ms"
        if data:
            bp = ax.boxplot(data, showfliers=True, patch_artist=True, widths=0.6,
                            flierprops={"markersize": 2, "alpha": 0.5})
            ax.set_xticks(range(1, len(labels) + 1), labels)
            for patch, c in zip(bp["boxes"], colors):
                patch.set_facecolor(c)
                patch.set_alpha(0.6)
            flat = [v for d in data for v in d if v > 0]
            if flat and max(flat) / max(min(flat), 1e-9) > 100:
                ax.set_yscale("log")
        ax.set_title(f"{STAGE_LABEL[stage]} ({unit})")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("per question")
    fig.suptitle("Latency by stage (box: quartiles, whiskers: 1.5 IQR)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: dict[str, Any], records: Sequence[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Write report.json, report.md, accuracy.png and latency.png into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("report.json", "report.md", "accuracy.png", "latency.png")}
    tmp = paths["report.json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, paths["report.json"])
    paths["report.md"].write_text(render_markdown(report), encoding="utf-8")
    plot_accuracy(report, paths["accuracy.png"])
    plot_latency(records, list(report["modes"]), paths["latency.png"])
    return paths
