"""Evaluate the bundled model: `python -m core.bundled.evaluate` writes eval_report.json and .md.

The report checks the quality floors the app relies on (each technique page compares what it finds
with these behaviours), lists the heads that the head scores classify as previous-token and
induction heads, records how the model was trained, and measures its limits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.bundled.train import DEFAULT_OUT
from core.interp.attention.head_scores import head_scores
from core.interp.attention.patterns import TYPE_THRESHOLD
from core.models import load_model
from core.world import metrics as M
from core.world.datasets import fact_prompts, ioi_prompts, pronoun_prompts

HEAD_THRESHOLD = TYPE_THRESHOLD  # a head is listed as a type from this score on (one rule with the pages)
FLOORS = {  # name -> (minimum, what it measures)
    "ioi_accuracy": (0.95, "IOI top-1 accuracy, held-out intro x action pairs"),
    "ioi_logit_diff": (3.0, "IOI mean logit difference IO - S, held-out pairs"),
    "induction_accuracy": (0.90, "top-1 accuracy, second half of repeated random token ids"),
    "fact_accuracy": (0.95, "top-1 accuracy on every fact, forward and reverse"),
    "pronoun_agreement": (0.95, "she/he (her/his) agreement after a name, no other cue"),
    "all_tokens_seen": (1, "every vocabulary token occurs in the training corpus"),
    "previous_token_heads": (1, f"heads with previous-token score >= {HEAD_THRESHOLD:g}"),
    "induction_heads": (1, f"heads with induction score >= {HEAD_THRESHOLD:g}"),
}


def evaluate(folder: Path, seed: int = 1234, n: int = 600) -> dict:
    """All metrics of the model in `folder`; the keys of FLOORS are in report["floors"]."""
    lm = load_model(str(folder))
    ioi_heldout = M.ioi_metrics(lm, ioi_prompts(n, seed, "heldout"))
    ioi_train = M.ioi_metrics(lm, ioi_prompts(n, seed, "train"))
    induction = M.induction_accuracy(lm, n=128, half_len=30, seed=seed)
    fact_acc, fact_wrong = M.fact_accuracy(lm, fact_prompts("train"))
    pronouns = M.pronoun_metrics(lm, pronoun_prompts(n, seed))
    scores = head_scores(lm, n=64, half_len=24, seed=seed)
    heads = {kind: [{"head": f"{layer}.{head}", "score": round(score, 3)}
                    for layer, head, score in scores.heads(kind, HEAD_THRESHOLD)]
             for kind in ("previous_token", "induction", "duplicate_token", "first_token")}
    log_path = folder / "train_log.json"
    train_log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    unseen = train_log.get("corpus", {}).get("unseen_token_ids")
    paraphrase_acc, _ = M.fact_accuracy(lm, fact_prompts("heldout"))
    limits = {kind: M.ioi_metrics(lm, M.novel_ioi_prompts(kind, n // 2, seed))
              for kind in M.NOVEL_IOI}
    limits["facts, paraphrased"] = {"n": len(fact_prompts("heldout")), "accuracy": paraphrase_acc}
    values = {
        "ioi_accuracy": ioi_heldout["accuracy"], "ioi_logit_diff": ioi_heldout["mean_logit_diff"],
        "induction_accuracy": induction, "fact_accuracy": fact_acc,
        "pronoun_agreement": pronouns["agreement"],
        "all_tokens_seen": int(unseen == []) if unseen is not None else None,
        "previous_token_heads": len(heads["previous_token"]),
        "induction_heads": len(heads["induction"]),
    }
    floors = {name: {"value": values[name], "floor": floor, "what": what,
                     "pass": values[name] is not None and values[name] >= floor}
              for name, (floor, what) in FLOORS.items()}
    return {
        "model": {"folder": folder.name, "n_params": lm.cfg.n_params, "n_layers": lm.cfg.n_layers,
                  "n_heads": lm.cfg.n_heads, "d_model": lm.cfg.d_model, "d_vocab": lm.cfg.d_vocab,
                  "n_ctx": lm.cfg.n_ctx},
        "eval_seed": seed, "all_floors_pass": all(f["pass"] for f in floors.values()),
        "floors": floors, "ioi_heldout": ioi_heldout, "ioi_train_templates": ioi_train,
        "induction_accuracy": induction, "facts": {"accuracy": fact_acc, "wrong": fact_wrong},
        "pronouns": pronouns, "heads": heads,
        "head_scores": {k: [[round(float(x), 3) for x in row] for row in v]
                        for k, v in scores.scores.items()},
        "vocab": {"unseen_token_ids": unseen,
                  "min_token_count": train_log.get("corpus", {}).get("min_token_count")},
        "limits": limits,
        "training": {k: train_log.get(k) for k in ("settings", "n_params", "final_loss",
                                                     "wall_time_s", "torch")},
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(report: dict) -> str:
    """The report as a markdown page (the "Bundled model" page shows it)."""
    lines = ["# Bundled model: evaluation report", "",
             f"All floors pass: **{'yes' if report['all_floors_pass'] else 'NO'}** "
             f"(evaluation seed {report['eval_seed']}).", "",
             "| metric | value | floor | pass |", "|---|---|---|---|"]
    for name, f in report["floors"].items():
        value = f["value"]
        shown = _pct(value) if isinstance(value, float) and value <= 1 else value
        if name == "ioi_logit_diff":
            shown = f"{value:.2f}"
        lines.append(f"| {f['what']} | {shown} | {f['floor']} | {'yes' if f['pass'] else 'NO'} |")
    lines += ["", "## Heads (score >= 0.5 on repeated random tokens)", "",
              "| kind | heads (layer.head: score) |", "|---|---|"]
    for kind, heads in report["heads"].items():
        shown = ", ".join(f"{h['head']}: {h['score']:.2f}" for h in heads) or "none"
        lines.append(f"| {kind.replace('_', ' ')} | {shown} |")
    lines += ["", "## Limits (measured, no floor)", "", "| test | n | result |", "|---|---|---|"]
    for kind, m in report["limits"].items():
        if "mean_logit_diff" in m:
            result = (f"IOI accuracy {_pct(m['accuracy'])}, IO beats S {_pct(m['io_beats_s'])}, "
                      f"logit diff {m['mean_logit_diff']:.2f}")
        else:
            result = f"accuracy {_pct(m['accuracy'])}"
        lines.append(f"| {kind} | {m['n']} | {result} |")
    t = report["training"]
    if t.get("settings"):
        s = t["settings"]
        lines += ["", "## Training", "",
                  f"{t['n_params']:,} parameters; {s['n_layers']} layers, {s['n_heads']} heads, "
                  f"d_model {s['d_model']}, context {s['n_ctx']}; {s['steps']} AdamW steps of "
                  f"{s['batch']} x {s['n_ctx']} tokens, lr {s['lr']}, seed {s['seed']}, "
                  f"bf16 autocast {s['bf16']}. Final loss {t['final_loss']:.3f}; "
                  f"wall time {t['wall_time_s'] / 60:.1f} min on {s['threads']} CPU threads."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_OUT, help="checkpoint folder")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    report = evaluate(args.model, seed=args.seed)
    (args.model / "eval_report.json").write_text(json.dumps(report, indent=1))
    (args.model / "eval_report.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
