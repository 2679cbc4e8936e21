"""The LoRA page's pictures and their layout: weights (norms, spectra, heatmap, overlap), behaviour (KL
per token, generations), forgetting (curves, before -> after, learning vs forgetting), and "what to
notice". Every sentence about a result is worded in ui.lora.words from the verdicts of
core.interp.finetune.verdict and the measured spectra."""

from __future__ import annotations

import streamlit as st

from core.interp.finetune import weight_diff as D
from core.interp.finetune.config import ROLES
from core.interp.finetune.forgetting import ACCURACIES, SKILL_LABELS, SKILLS
from core.interp.finetune.targets import target_modules
from core.interp.finetune.verdict import ForgettingReport, forgetting_report, skill_drops
from core.models.dtype import PROBE_SIZE, fastest_matmul_dtype
from ui.common.models import prompt_box
from ui.common.page import escape_markdown
from ui.lora import charts
from ui.lora import compute as C
from ui.lora.compute import LOG_KEY, LoraResult
from ui.lora.frames import (
    ROLE_LABELS,
    accuracy_frame,
    changed_tokens_frame,
    heatmap_frame,
    kl_frame,
    learn_forget_frame,
    matrix_words,
    norms_frame,
    other_skills_frame,
    rank_table,
    spectrum_frame,
    summary_frame,
)
from ui.lora.words import (
    comparison_sentences,
    diverged_warning,
    heatmap_caption,
    learn_forget_advice,
    learning_sentence,
    run_sentence,
    truth_sentence,
)

UNRELATED = ("When Mary and John went to the park, John gave a ball to",
             "Lucy went to the beach. She was happy because she found a red kite.")


def _reports(lm, result: LoraResult) -> dict[str, list]:
    """label -> MatrixDiff per adapted matrix (cached on the models' specs)."""
    return {label: C.diff_report(lm, run.model_) for label, run in result.runs.items()}


def _lora_rank(result: LoraResult) -> int | None:
    ranks = [r.config.rank for r in result.runs.values() if r.config and r.config.method == "lora"]
    return ranks[0] if ranks else None


def _rank_limit(run) -> int | None:
    """The rank bound of a run's update: r for a LoRA run or a loaded LoRA adapter, else None."""
    if run.config is not None:
        return run.config.rank if run.config.method == "lora" else None
    config = getattr(run, "adapter_config", None) or {}
    return int(config["r"]) if str(config.get("peft_type", "")).upper() == "LORA" and "r" in config else None


def weights_tab(lm, result: LoraResult) -> None:
    reports = _reports(lm, result)
    diverged = [label for label, report in reports.items() if any(not m.finite for m in report)]
    if diverged:
        st.warning(diverged_warning(diverged), icon=":material/warning:")
    st.markdown("**How big is each update?** ‖ΔW‖ relative to the weight it changes, per layer and matrix.")
    roles = [ROLE_LABELS[r] for r in ROLES]
    st.altair_chart(charts.norms_chart(norms_frame(reports), roles), key="lora_norms_chart")
    st.dataframe(rank_table(reports), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3g")
                                for c in ("total ‖ΔW‖_F", "mean ‖ΔW‖/‖W‖", "mean effective rank",
                                          "mean rank for 90% energy")})
    where = target_modules(lm, tuple(ROLES))
    left, right = st.columns(2)
    layer = left.segmented_control("Layer", list(range(lm.cfg.n_layers)), default=0, required=True,
                                   key="lora_layer", bind="query-params")
    role = right.segmented_control("Matrix", list(ROLES), default="attn_qkv", format_func=ROLE_LABELS.get,
                                   required=True, key="lora_role", bind="query-params")
    names = [n for n, (lay, r, _) in where.items() if lay == layer and r == role]
    if len(names) > 1:  # e.g. Llama's separate q_proj, k_proj, v_proj
        by_rel = {where[n][2]: n for n in names}  # the same choices in every layer
        names = [by_rel[st.segmented_control("Which one", list(by_rel), default=list(by_rel)[0],
                                             required=True, format_func=lambda rel: matrix_words(role, rel),
                                             key="lora_module")]]
    name = names[0]
    spectra = {label: m for label, report in reports.items() for m in report if m.name == name and m.finite}
    if not spectra:
        st.caption("No run adapted this matrix (full fine-tuning adapts every one; LoRA only the chosen).")
        return
    rel = where[name][2]
    st.markdown(f"**Singular values of ΔW** for the {matrix_words(role, rel)} of layer {layer} (`{rel}` in "
                "the checkpoint): a LoRA update stops at its rank r; full fine-tuning's spectrum shows how "
                "low-rank a free update is.")
    st.altair_chart(charts.spectrum_chart(spectrum_frame({k: m.singular_values for k, m in spectra.items()}),
                                          _lora_rank(result)), key="lora_spectrum")
    shown = st.segmented_control("Heatmap of", list(spectra), default=list(spectra)[0], required=True,
                                 key="lora_heat_run")
    delta = D.deltas(lm, result.runs[shown].model_, names=[name])[name]
    out_axis = D.output_axis(lm)  # which axis of the stored weight is d_out
    d_out, d_in = delta.shape[out_axis], delta.shape[1 - out_axis]
    wide = delta if delta.shape[1] >= delta.shape[0] else delta.T  # the longer side across the page
    rows_are_out = (wide is delta) == (out_axis == 0)
    pooled = D.pool_signed(wide)
    titles = (f"output unit ({d_out})", f"input unit ({d_in})")
    st.altair_chart(charts.heatmap_chart(heatmap_frame(pooled), y_title=titles[not rows_are_out],
                                         x_title=titles[rows_are_out]), key="lora_heatmap", width="content")
    shrunk = (f"Shrunk to {pooled.shape[0]} x {pooled.shape[1]} cells, each showing the largest entry of "
              "its block. " if pooled.shape != wide.shape else "")
    st.caption(shrunk + heatmap_caption(shown, spectra[shown], _rank_limit(result.runs[shown]),
                                        _lora_rank(result)))
    _overlap(lm, result)


def _overlap(lm, result: LoraResult) -> None:
    lora = [k for k, r in result.runs.items() if r.config and r.config.method == "lora"]
    full = [k for k, r in result.runs.items() if r.config and r.config.method == "full"]
    if not (lora and full):
        st.caption("Add full fine-tuning to the comparison to see whether LoRA moves the same directions.")
        return
    k = _lora_rank(result)
    table = C.overlap_table(lm, result.runs[lora[0]].model_, result.runs[full[0]].model_, k)
    st.markdown(f"**Do LoRA and full fine-tuning move the same directions?** Overlap of the top {k} "
                "singular directions of the two updates (1 = the same subspace; chance is k / d).")
    st.dataframe(table, hide_index=True, height=35 * (len(table) + 1) + 3,
                 column_config={c: st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)
                                for c in ("output-side overlap", "input-side overlap", "chance (k / d)")})


def behaviour_tab(lm, result: LoraResult) -> None:
    probe = result.task.probes[0]
    default = f"{probe.prompt}{probe.target}. {UNRELATED[1]}"
    prompt = prompt_box(lm, key="lora_text", default=default, label="Text to compare base and tuned on",
                        height=80)
    if prompt is None:
        return
    tokens = tuple(int(t) for t in prompt.tokens[0])
    kls = {label: C.token_kl(lm, run.model_, tokens) for label, run in result.runs.items()}
    st.markdown("**Where did predictions move?** KL(tuned ‖ base) of the next-token distribution at each "
                "token. Hover for the top prediction before and after.")
    st.altair_chart(charts.kl_chart(kl_frame(kls)), key="lora_kl_chart")
    shown = st.segmented_control("Most changed predictions of", list(kls), default=list(kls)[0],
                                 required=True, key="lora_kl_run")
    st.dataframe(changed_tokens_frame(kls[shown]), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("KL", "p(tuned's top), base", "p(tuned's top), tuned")})
    prompts = tuple(p.prompt for p in result.task.probes[:3]) + (UNRELATED[0],)
    st.markdown(f"**Before and after** (greedy continuations, {shown}):")
    st.dataframe([{"prompt": g.prompt, "base model": g.before, "tuned": g.after}
                  for g in C.generations(lm, result.runs[shown].model_, prompts)], hide_index=True)


def forgetting_tab(lm, result: LoraResult, report: ForgettingReport) -> None:
    trained = {k: r for k, r in result.runs.items() if r.config is not None and len(r.history_) > 1}
    histories = {k: r.history_ for k, r in trained.items()}
    earlier = [e for e in st.session_state.get(LOG_KEY, [])
               if e["spec"] == result.spec and e["task"] == result.task.key]
    show_earlier = st.toggle("Also draw earlier runs on this task (other rank, replay, learning rate)",
                             value=len(earlier) > len(trained), key="lora_show_earlier")
    if show_earlier:  # the log holds this result's runs too, named by their settings
        histories = {e["name"]: e["history"] for e in earlier}
    if not histories:
        st.caption("Nothing trained in this session to plot yet.")
        return
    st.markdown("**Old skills while learning the new one**, measured every few steps on held-out prompts "
                "the generator labels: accuracies (higher is better, the whole 0 to 1 range on every axis) "
                "and the new task's accuracy.")
    st.altair_chart(charts.accuracy_chart(accuracy_frame(histories), [SKILL_LABELS[s] for s in ACCURACIES]),
                    key="lora_forget_chart")
    st.markdown("**Two measures that are not shares**: the IOI logit difference (higher is better) and the "
                "validation loss on the original corpus (lower is better), each on its own scale.")
    others = [SKILL_LABELS[s] for s in SKILLS if s not in ACCURACIES]
    st.altair_chart(charts.other_skills_chart(other_skills_frame(histories), others), key="lora_other_chart")
    st.dataframe(summary_frame({k: skill_drops(h) for k, h in histories.items()}))
    st.markdown("**Learning vs forgetting**, one point per run: up is more of the new task learned, right is "
                "more accuracy lost on the old skills. " + learn_forget_advice(report))
    shown = forgetting_report({k: ("earlier", h) for k, h in histories.items()})  # the verdicts' numbers
    st.altair_chart(charts.learn_forget_chart(learn_forget_frame(shown)), key="lora_learn_forget")


def what_to_notice(lm, result: LoraResult, report: ForgettingReport) -> str:
    """Markdown bullets, each computed from this result: ground truth (bundled model), learning,
    forgetting (what the Forgetting tab shows), the rank of the updates, and what to try next."""
    bullets = []
    shown = next((label for label in result.runs if label not in report.diverged), None)  # NaN: no top
    if lm.is_bundled:
        rows = [(escape_markdown(p.prompt), escape_markdown(p.before or C.top_token(lm, p.prompt)),
                 escape_markdown(C.top_token(result.runs[shown].model_, p.prompt)) if shown else None,
                 escape_markdown(p.target)) for p in result.task.probes[:2]]
        bullets.append(truth_sentence(rows, shown))
    if report.runs or report.diverged:
        bullets.append(learning_sentence(report))
    if report.comparison is not None:
        bullets += comparison_sentences(report.comparison)
    else:
        bullets += [run_sentence(r) for r in report.runs]
    for label, rep in _reports(lm, result).items():
        run = result.runs[label]
        finite = [m for m in rep if m.finite]
        if run.config is not None and run.config.method == "lora" and finite:
            bullets.append(f"Every {label} update has rank ≤ {run.config.rank} (max numerical rank "
                           f"{max(m.rank for m in finite)}), whatever it learned.")
        elif run.config is not None and run.config.method == "full" and finite:
            er = sum(m.effective_rank for m in finite) / len(finite)
            e90 = sum(m.energy_rank_90 for m in finite) / len(finite)
            bullets.append(f"Full fine-tuning could use all {min(finite[0].shape)} directions of a matrix; "
                           f"its updates have an effective rank of {er:.0f} on average, and {e90:.0f} "
                           "singular values hold 90% of their energy.")
    replay = [r.config.replay for r in result.runs.values() if r.config is not None]
    if replay and max(replay) == 0 and any(r.forgotten for r in report.runs):
        bullets.append("No run mixed original text into its batches: set replay to 25% and train again to "
                       "see whether it keeps the old skills.")
    return "**What to notice**\n\n" + "\n".join(f"- {b}" for b in bullets)


def dtype_note(result: LoraResult) -> str | None:
    """Which number format the runs' matrix products used, and the measurements behind the choice."""
    runs = [r for r in result.runs.values() if hasattr(r, "bf16_")]
    if not runs:
        return None
    chosen = " and ".join(sorted({"bfloat16" if r.bf16_ else "float32" for r in runs}))
    if any(r.config.bf16 is not None for r in runs):
        return f"Training ran its matrix products in {chosen}, as the run's settings asked."
    d = fastest_matmul_dtype()
    text = (f"On this CPU ({d.cpu}, {d.threads} thread(s)) a {PROBE_SIZE}x{PROBE_SIZE} matmul measured "
            f"{d.bf16_gflops:.0f} GFLOP/s in bfloat16 and {d.fp32_gflops:.0f} in float32.")
    timed = [(label, r.step_seconds_) for label, r in result.runs.items()
             if getattr(r, "step_seconds_", None)]
    if timed:
        steps = "; ".join(f"{label} {f * 1e3:.0f} ms in float32, {b * 1e3:.0f} ms in bfloat16"
                          for label, (f, b) in timed)
        text += f" A matmul is not the whole step, so each run's step was timed too ({steps})."
    return text + f" Training ran its matrix products in {chosen}; weights and Adam's moments stay float32."
