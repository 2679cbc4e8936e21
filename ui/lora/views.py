"""The LoRA page's pictures: weights (norms, spectra, heatmap, overlap), behaviour (KL per token,
generations) and forgetting (curves, before -> after, learning vs forgetting)."""

from __future__ import annotations

import streamlit as st

from core.interp.finetune import behaviour_diff as B
from core.interp.finetune import weight_diff as D
from core.interp.finetune.forgetting import SKILL_LABELS, SKILLS, summarize
from core.interp.finetune.methods import ROLES, target_modules
from ui.common.models import prompt_box
from ui.lora import charts
from ui.lora.compute import LOG_KEY, LoraResult
from ui.lora.frames import (
    ROLE_LABELS,
    changed_tokens_frame,
    forgetting_frame,
    heatmap_frame,
    kl_frame,
    learn_forget_frame,
    norms_frame,
    overlap_frame,
    rank_table,
    spectrum_frame,
    summary_frame,
)

UNRELATED = ("When Mary and John went to the park, John gave a ball to",
             "Lucy went to the beach. She was happy because she found a red kite.")


def _reports(lm, result: LoraResult) -> dict[str, list]:
    """label -> MatrixDiff per adapted matrix, computed once per run (the deltas are not kept: on a
    hub model they would hold hundreds of megabytes per run)."""
    memo = result.analysis.setdefault("reports", {})
    for label, run in result.runs.items():
        if label not in memo:
            memo[label] = D.diff_report(lm, D.deltas(lm, run.model_))
    return memo


def _lora_rank(result: LoraResult) -> int | None:
    ranks = [r.config.rank for r in result.runs.values() if r.config and r.config.method == "lora"]
    return ranks[0] if ranks else None


def weights_tab(lm, result: LoraResult) -> None:
    reports = _reports(lm, result)
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
                                             required=True, key="lora_module")]]
    deltas = {label: d[names[0]] for label, run in result.runs.items()
              if names[0] in (d := D.deltas(lm, run.model_, names=names))}
    if not deltas:
        st.caption("No run adapted this matrix (full fine-tuning adapts every one; LoRA only the chosen).")
        return
    st.markdown(f"**Singular values of ΔW** for `{where[names[0]][2]}` in layer {layer}: a LoRA update "
                "stops at its rank r; full fine-tuning's spectrum shows how low-rank a free update is.")
    spectra = {label: next(m.singular_values for m in reports[label] if m.name == names[0])
               for label in deltas}
    st.altair_chart(charts.spectrum_chart(spectrum_frame(spectra), _lora_rank(result)), key="lora_spectrum")
    shown = st.segmented_control("Heatmap of", list(deltas), default=list(deltas)[0], required=True,
                                 key="lora_heat_run")
    delta = deltas[shown]
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
    st.caption(shrunk + "A LoRA update B @ A has rank r: all its rows are mixes of the same r patterns, "
               "and so are its columns, which shows as stripes; a full update has no such pattern.")
    _overlap(lm, result, where)


def _overlap(lm, result: LoraResult, where) -> None:
    lora = [k for k, r in result.runs.items() if r.config and r.config.method == "lora"]
    full = [k for k, r in result.runs.items() if r.config and r.config.method == "full"]
    if not (lora and full):
        st.caption("Add full fine-tuning to the comparison to see whether LoRA moves the same directions.")
        return
    k = _lora_rank(result)
    memo = result.analysis.setdefault("overlap", {})
    if "table" not in memo:
        a, b = (D.deltas(lm, result.runs[label].model_) for label in (lora[0], full[0]))
        memo["table"] = overlap_frame(D.overlaps(lm, a, b, k), where)
    st.markdown(f"**Do LoRA and full fine-tuning move the same directions?** Overlap of the top {k} "
                "singular directions of the two updates (1 = the same subspace; chance is k / d).")
    st.dataframe(memo["table"], hide_index=True, height=35 * (len(memo["table"]) + 1) + 3,
                 column_config={c: st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)
                                for c in ("output-side overlap", "input-side overlap", "chance (k / d)")})


def behaviour_tab(lm, result: LoraResult) -> None:
    probe = result.task.probes[0]
    default = f"{probe.prompt}{probe.target}. {UNRELATED[1]}"
    prompt = prompt_box(lm, key="lora_text", default=default, label="Text to compare base and tuned on",
                        height=80)
    if prompt is None:
        return
    kls = {label: B.token_kl(lm, run.model_, prompt.tokens) for label, run in result.runs.items()}
    st.markdown("**Where did predictions move?** KL(tuned ‖ base) of the next-token distribution at each "
                "token. Hover for the top prediction before and after.")
    st.altair_chart(charts.kl_chart(kl_frame(kls)), key="lora_kl_chart")
    shown = st.segmented_control("Most changed predictions of", list(kls), default=list(kls)[0],
                                 required=True, key="lora_kl_run")
    st.dataframe(changed_tokens_frame(kls[shown]), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("KL", "p(tuned's top), base", "p(tuned's top), tuned")})
    memo = result.analysis.setdefault("generations", {})
    prompts = [p.prompt for p in result.task.probes[:3]] + [UNRELATED[0]]
    if shown not in memo:
        memo[shown] = B.generations(lm, result.runs[shown].model_, prompts, max_new_tokens=12)
    st.markdown(f"**Before and after** (greedy continuations, {shown}):")
    st.dataframe([{"prompt": g.prompt, "base model": g.before, "tuned": g.after} for g in memo[shown]],
                 hide_index=True)


def forgetting_tab(lm, result: LoraResult) -> None:
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
    skills = [SKILL_LABELS[s] for s in SKILLS]
    st.markdown("**Old skills while learning the new one**, measured every few steps on held-out prompts "
                "the generator labels (top row: higher is better; validation loss: lower is better).")
    st.altair_chart(charts.forgetting_chart(forgetting_frame(histories), skills), key="lora_forget_chart")
    changes = {k: summarize(h) for k, h in histories.items()}
    st.dataframe(summary_frame(changes))
    st.markdown("**Learning vs forgetting**, one point per run: up is more of the new task learned, right is "
                "more of the old world forgotten. Lower the rank or add replay and train again to move left.")
    st.altair_chart(charts.learn_forget_chart(learn_forget_frame(changes)), key="lora_learn_forget")


def _top(lm_like, prompt: str) -> str:
    logits = lm_like(lm_like.to_tokens(prompt))[0, -1]
    return lm_like.tokenizer.decode([int(logits.argmax())])


def what_to_notice(lm, result: LoraResult) -> str:
    """The ground truth next to what this run did, in numbers read from the run itself."""
    parts = []
    first_label, first = next(iter(result.runs.items()))
    for p in result.task.probes[:2]:
        was = p.before or _top(lm, p.prompt)
        parts.append(f"*{p.prompt}* →{was} before, →{_top(first.model_, p.prompt)} after {first_label} "
                     f"(taught:{p.target})")
    text = "**What to notice.** The generator knows the truth: " + "; ".join(parts) + "."
    reports = _reports(lm, result)
    for label, report in reports.items():
        run = result.runs[label]
        if run.config is not None and run.config.method == "lora" and report:
            text += (f" Every {label} update has rank ≤ {run.config.rank} (max numerical rank "
                     f"{max(m.rank for m in report)}), whatever it learned.")
        elif run.config is not None and run.config.method == "full" and report:
            d = min(report[0].shape)
            er = sum(m.effective_rank for m in report) / len(report)
            e90 = sum(m.energy_rank_90 for m in report) / len(report)
            text += (f" Full fine-tuning could use all {d} directions of a matrix; its updates have an "
                     f"effective rank of {er:.0f} on average, and {e90:.0f} singular values hold 90% of "
                     "their energy.")
    changes = {k: {c.skill: c for c in summarize(r.history_)} for k, r in result.runs.items()
               if r.config is not None and len(r.history_) > 1}
    if len(changes) > 1:
        loss = {k: c["val_loss"].change for k, c in changes.items()}
        worst, best = max(loss, key=loss.get), min(loss, key=loss.get)
        verdict = (f"{worst} forgot the most in this run" if loss[worst] - loss[best] > 0.05
                   else "about the same for all of them in this run")
        text += (" Validation loss on the original world: "
                 + ", ".join(f"{k} {v:+.2f}" for k, v in loss.items()) + f"; {verdict}.")
    replay = [r.config.replay for r in result.runs.values() if r.config is not None]
    if replay and max(replay) == 0:
        text += " Add replay (a quarter of each batch from the original corpus) and train again."
    return text
