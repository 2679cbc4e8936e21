"""Generation and steered generation: 40 new tokens with the KV cache, against Hugging Face `generate`.

Peers, each timed interleaved with ours (benchmarks.interleaved) on the same torch thread count (1 and
2), REPEATS times, reporting the median ratio and its min-max spread:
1. Our generation (core.models.generation) vs Hugging Face `generate` on a plain transformers model
   with the same weights (its default attention kernel, no hooks), greedy and sampled with the same
   settings (temperature 1, no top-k / top-p, no end-of-text stop). Goal: <= 1.1x.
2. Steered generation (a sentiment vector after layer 2, coefficient 3: the page's default) vs our
   plain generation, sampled. Goals: overhead < 10%, and 40 bundled tokens < 0.15 s.
3. The same on a GPT-2-small-shaped model (12 layers, d_model 768, 50,257 tokens, random weights:
   timing does not depend on the values); TransformerLens `generate` with the same hook is shown as
   a reference when installed (requirements-bench.txt).
If the bundled checkpoint is absent, a random model of its shape stands in (and the note says so).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from benchmarks import Result, interleaved, transformer_lens_twin
from core.interp.steering import vectors as S
from core.interp.steering.targets import bundled_pairs
from core.models import ModelLoadError, act_name, load_model
from core.models.generation import SamplingSettings
from core.models.loading import BUNDLED_DIR, wrap
from tests.tiny_models import save_tokenizer

N_NEW, N_PROMPT, REPEATS, THREADS = 40, 16, 7, (1, 2)
COEFFICIENT, LAYER = 3.0, 2  # the page's defaults on the bundled model
GPT2_SMALL = dict(n_layer=12, n_embd=768, n_head=12, n_inner=3072, vocab_size=50257, n_positions=1024)
BUNDLED_SHAPE = dict(n_layer=4, n_embd=128, n_head=4, n_inner=512, vocab_size=1024, n_positions=128)
GREEDY = SamplingSettings(max_new_tokens=N_NEW, temperature=0.0, stop_at_eos=False)
SAMPLED = SamplingSettings(max_new_tokens=N_NEW, temperature=1.0, seed=0, stop_at_eos=False)


def _random_lm(shape: dict, folder: Path):
    """Our HookedLM on a random GPT-2 model of this shape, and a plain twin with the same weights."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**shape)).eval()
    twin = GPT2LMHeadModel(GPT2Config(**shape)).eval()
    twin.load_state_dict(model.state_dict())
    lm = wrap(model, save_tokenizer(folder), spec=f"random {shape['n_layer']}L d{shape['n_embd']}")
    return lm, twin


def _bundled(folder: Path):
    """(lm, plain HF twin, prompt [1, pos], steering vector, what it is)."""
    try:
        lm = load_model()
    except ModelLoadError:
        lm, twin = _random_lm(BUNDLED_SHAPE, folder)
        prompt = torch.randint(3, BUNDLED_SHAPE["vocab_size"], (1, N_PROMPT),
                               generator=torch.Generator().manual_seed(0))
        sv = S.random_like(S.SteeringVector(torch.ones(lm.cfg.d_model), act_name("resid_post", LAYER),
                                            "random", "random"))
        return lm, twin, prompt, sv, "checkpoint absent: a random model of the bundled shape"
    twin = AutoModelForCausalLM.from_pretrained(str(BUNDLED_DIR)).eval()
    sv = S.mean_difference(lm, bundled_pairs("sentiment"), LAYER)
    prompt = lm.to_tokens("One day, Mary went to the park. She was")
    return lm, twin, prompt, sv, "bundled checkpoint, sentiment vector after layer 2"


def _hf_generate(model, prompt: torch.Tensor, settings: SamplingSettings):
    """Hugging Face `generate` with the same settings: no end-of-text stop, no top-k / top-p."""
    model.generation_config.eos_token_id = None
    mask = torch.ones_like(prompt)
    sample = dict(do_sample=True, temperature=settings.temperature, top_k=0, top_p=1.0) \
        if settings.temperature > 0 else dict(do_sample=False)

    def run():
        model.generate(prompt, attention_mask=mask, max_new_tokens=settings.max_new_tokens,
                       pad_token_id=model.config.pad_token_id or 0, **sample)
    return run


def _compare(lm, twin, prompt, sv, label: str, note: str, repeats: int) -> list[Result]:
    rows = []
    for threads in THREADS:
        for kind, settings in (("greedy", GREEDY), ("sampled", SAMPLED)):
            ours = lambda s=settings: lm.generate(prompt, settings=s)  # noqa: E731
            c = interleaved(ours, _hf_generate(twin, prompt, settings), repeats=repeats, threads=threads)
            rows.append(c.result(f"generation, {label}, {N_NEW} tokens, {kind}", "HF generate",
                                 goal="<= 1.1x HF generate", note=note))
        c = interleaved(lambda: S.generate_steered(lm, prompt, sv, COEFFICIENT, SAMPLED),
                        lambda: lm.generate(prompt, settings=SAMPLED), repeats=repeats, threads=threads)
        goal = "overhead < 10% (ratio < 1.10x)" + ("; < 0.15 s" if label == "bundled" else "")
        rows.append(c.result(f"steered generation, {label}, {N_NEW} tokens", "plain generation (ours)",
                             goal=goal, note=note))
    return rows


def _transformer_lens(prompt: torch.Tensor, sv, repeats: int) -> Result | None:
    tl = transformer_lens_twin(GPT2Config(**GPT2_SMALL))
    if tl is None:
        return None
    layer = int(sv.hook_name.split(".")[1])
    push = lambda act, hook: act + COEFFICIENT * sv.vector  # noqa: E731

    def tl_steered():
        with tl.hooks(fwd_hooks=[(act_name("resid_post", layer), push)]):
            tl.generate(prompt, max_new_tokens=N_NEW, stop_at_eos=False, verbose=False, do_sample=True,
                        use_past_kv_cache=True)
    return tl_steered


def run() -> list[Result]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lm, twin, prompt, sv, what = _bundled(Path(tmp) / "bundled")
        rows += _compare(lm, twin, prompt, sv, "bundled", what, REPEATS)

        lm, twin = _random_lm(GPT2_SMALL, Path(tmp) / "gpt2")
        prompt = torch.randint(3, GPT2_SMALL["vocab_size"], (1, N_PROMPT),
                               generator=torch.Generator().manual_seed(0))
        sv = S.random_like(S.SteeringVector(torch.ones(768), act_name("resid_post", 5), "random", "random"))
        rows += _compare(lm, twin, prompt, sv, "GPT-2 small shape", "random weights", 5)
        tl = _transformer_lens(prompt, sv, 5)
        if tl is not None:
            c = interleaved(lambda: S.generate_steered(lm, prompt, sv, COEFFICIENT, SAMPLED), tl,
                            repeats=5, threads=1)
            rows.append(c.result(f"steered generation, GPT-2 small shape, {N_NEW} tokens", "TransformerLens",
                                 goal="(reference)", note="TransformerLens generate with the same hook"))
    return rows
