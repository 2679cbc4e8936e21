"""A link reproduces the experiment: for every page with controls bound to the URL, a hand-written link
whose controls hold non-default values (index 0, layer 0 and "embed" included where a control has them),
opened in a fresh browser context, keeps every value.

After the page settles, (a) its URL still holds every value of the link (Streamlit removes a parameter a
widget cannot hold, and one equal to the widget's default: every value here differs from its default),
(b) each control shows the value, and (c) no "could not be used" note (ui/common/url_state.py) appears.
URL values are what the widgets show (their formatted labels: `xor_init=He`, `probes_layer=embed`).
"""

from __future__ import annotations

import math
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from tests.e2e.live_app import wait_until_idle
from ui.common.registry import ROOT, TOPICS

pytestmark = pytest.mark.e2e

Query = dict[str, str | list[str]]

# url_path -> a link's parameters, each one a value other than the control's default.
LINKS: dict[str, Query] = {
    "xor": {
        "xor_init": "He", "xor_example": "#1: x = (0.00, 0.00), class 0", "xor_opt": "SGD",
        "xor_act": "ReLU", "xor_loss": "squared error", "xor_epochs": "100", "xor_lr": "0.001",
        "xor_batch": "4", "xor_seed": "7", "xor_units1": "3", "xor_traj_layer": "layer 2 (W2, b2)",
    },
    "training": {
        "train_positions": "rotary (GPT-NeoX)", "train_mlp": "true", "train_seed": "3", "train_heads": "2",
        "train_layers": "3", "train_d_model": "32", "train_lr": "0.01",
    },
    "bundled-model": {
        "bm_family": "ioi", "bm_seed": "3", "bm_temp": "0.7", "bm_new": "5", "bm_gen_seed": "2",
    },
    "embeddings": {
        "emb_view": "Neighbours & analogies", "emb_word": "John", "emb_k": "5", "emb_analogy_k": "1",
        "emb_labels": "true", "emb_method": "t-SNE", "emb_categories": ["colours", "places"],
    },
    "attention": {
        "attn_layer": "0", "attn_head": "0", "attn_value_weighted": "true", "attn_view": "All heads",
    },
    "residual": {
        "res_view": "Direct logit attribution", "res_colour": "the text's own next token",
        "res_answer": " John", "res_other": " Mary",
    },
    "neurons": {
        "nrn_layer": "0", "nrn_neuron": "5", "nrn_view": "Head circuits", "nrn_svd_layer": "0",
        "nrn_svd_head": "0", "nrn_svd_kind": "QK",
    },
    "probes": {
        # the layer's default is where the property becomes readable (layer 3 here): "embed" differs
        "probes_layer": "embed", "probes_position": "mean over tokens",
        "probes_send_kind": "difference of class means",
    },
    "sae": {
        "sae_layer": "embed", "sae_arch": "TopK", "sae_expansion": "2x", "sae_k": "1", "sae_steps": "100",
        "sae_lr": "0.0003", "sae_docs": "500", "sae_seed": "5",
    },
    "patching": {
        "patch_behaviour": "Induction", "patch_direction": "Noising", "patch_sweep": "Attention out",
    },
    "steering": {
        "steer_at": "embed", "steer_concept": "gender (female - male)", "steer_method": "one pair (ActAdd)",
        "steer_coef": "-12", "steer_from": "1", "steer_new": "5", "steer_topk": "5", "steer_seed": "9",
        "steer_temp": "0",
    },
    "lora": {
        "lora_task": "New word", "lora_roles": ["attn qkv", "MLP out"], "lora_rank": "1", "lora_alpha": "1",
        "lora_lr": "0.0001", "lora_steps": "10", "lora_seed": "4", "lora_replay": "25",
        "lora_compare": ["Full FT", "IA3"], "lora_full_lr": "0.0001", "lora_eval_every": "5",
    },
    "notebook": {"nb_tab": "Timeline"},
}

# Values that equal a widget's own minimum or first option while the page starts elsewhere (a preset's
# values, the best-explained neuron): once lost from the address bar, so each is its own case.
EDGE_LINKS: dict[str, tuple[str, Query]] = {
    "training-first-values": ("training", {"train_layers": "1", "train_d_model": "16", "train_heads": "1"}),
    "neurons-neuron-0": ("neurons", {"nrn_layer": "0", "nrn_neuron": "0"}),
}

CASES = [pytest.param(path, query, id=path) for path, query in LINKS.items()] + [
    pytest.param(path, query, id=name) for name, (path, query) in EDGE_LINKS.items()
]

# What a control shows, read from its element (Streamlit gives it the class st-key-<key>).
SHOWN_JS = """(key) => {
  const el = document.querySelector('.st-key-' + CSS.escape(key));
  if (!el) return null;
  const texts = (nodes) => [...nodes].map(n => n.innerText.trim());
  if (el.matches('.stTabs')) return texts(el.querySelectorAll('[role=tab][aria-selected=true]')).slice(0, 1);
  const combo = el.querySelector('input[role=combobox]');
  if (el.querySelector('[data-testid=stMultiSelect]'))
    return texts(el.querySelectorAll('[data-tag] > span[title]'));
  if (combo) return [combo.value];
  if (el.querySelector('[data-testid=stButtonGroup]'))
    return texts(el.querySelectorAll(
      'button[aria-checked=true], button[aria-pressed=true], button[data-selected=true]'));
  if (el.querySelector('[data-testid=stRadio]'))
    return texts([...el.querySelectorAll('label')].filter(l => l.querySelector('input:checked')));
  if (el.querySelector('[data-testid=stSlider]'))
    return texts(el.querySelectorAll('[data-testid=stSliderThumbValue]'));
  const box = el.querySelector('input[type=checkbox]');
  if (box) return [String(box.checked)];
  const input = el.querySelector('input, textarea');
  return input ? [input.value] : null;
}"""


def _same(wanted: str, shown: str) -> bool:
    if wanted == shown:
        return True
    try:  # a slider writes -12 in the URL and shows -12.00
        return math.isclose(float(wanted), float(shown))
    except ValueError:
        return False


def _as_lists(query: Query) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in query.items()}


def _controls_not_showing(page, wanted: dict[str, list[str]]) -> dict[str, tuple]:
    """The controls (linked values, shown values) whose shown value is not the link's."""
    wrong = {}
    for key, values in wanted.items():
        shown = page.evaluate(SHOWN_JS, key)
        if shown is None or len(shown) != len(values) or not all(map(_same, values, shown)):
            wrong[key] = (values, shown)
    return wrong


def _binds_controls(topic) -> bool:
    """Whether the page's script or its ui/ package binds a control to the URL."""
    package = ROOT / "ui" / topic.url_path.replace("-", "_")
    files = [ROOT / topic.path, *(package.rglob("*.py") if package.is_dir() else [])]
    return any('bind="query-params"' in f.read_text() for f in files)


def test_every_page_with_bound_controls_has_a_link():
    """A page that binds controls to the URL but has no link above would go untested."""
    assert set(LINKS) <= {t.url_path for t in TOPICS}
    missing = [t.url_path for t in TOPICS if t.url_path not in LINKS and _binds_controls(t)]
    assert not missing, f"pages with URL-bound controls but no link here: {missing}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("app_url", ["local"], indirect=True)  # the local entry: predictions off
@pytest.mark.parametrize(("url_path", "query"), CASES)
def test_a_link_with_non_default_values_keeps_every_value(browser, app_url, url_path, query):
    wanted = _as_lists(query)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # fresh: no session state
    page = context.new_page()
    try:
        link = f"{app_url}/{url_path}?{urlencode(query, doseq=True, quote_via=quote)}"
        page.goto(link, timeout=120_000)
        wait_until_idle(page, timeout=240)
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()
        # (c) no value of the link was refused
        note = page.get_by_text("could not be used")
        assert note.count() == 0, note.first.inner_text()
        # (a) the URL still holds every value
        kept = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
        lost = {k: (v, kept.get(k)) for k, v in wanted.items() if kept.get(k) != v}
        assert not lost, f"values (linked, now) the URL lost: {lost}\nlink: {link}\nnow:  {page.url}"
        # (b) every control shows its value (read again for a while: a page that settled may still be
        # drawing its last controls, as the SAE page's form once was under load)
        wrong = _controls_not_showing(page, wanted)
        deadline = time.time() + 30
        while wrong and time.time() < deadline:
            time.sleep(0.5)
            wrong = _controls_not_showing(page, wanted)
        assert not wrong, f"controls (linked, shown) that do not show the link's value: {wrong}"
    finally:
        context.close()
