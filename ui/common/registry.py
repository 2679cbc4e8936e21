"""The table of contents: every topic page, its section and the one-line promise on its card.

app.py builds `st.navigation` from this list, the home page draws a card per entry, and the browser
test opens every entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SECTIONS: tuple[str, ...] = ("Foundations", "Looking inside", "Interpretability", "Adaptation", "Lab")


@dataclass(frozen=True)
class Topic:
    path: str  # script path relative to the repository root
    title: str
    icon: str  # a Material Symbols name, written ":material/name:"
    section: str
    blurb: str  # one sentence for the home-page card
    url_path: str  # stable URL segment, so shared links keep working
    uses_model: bool = True  # False: the sidebar hides the model picker on this page

    @property
    def script(self) -> str:
        """The script's absolute path: st.Page and st.page_link resolve relative paths against the
        entry script's folder, and the Cloud entry (cloud/streamlit_app.py) is not at the root."""
        return str(ROOT / self.path)


# In the order of the path through the lab (Home states it, the sidebar lists it, "Next" follows it).
PLANNED: tuple[Topic, ...] = (
    Topic("app_pages/xor.py", "XOR network from scratch", ":material/hub:", "Foundations",
          "Train a tiny network live and watch every number of backprop.", "xor", uses_model=False),
    Topic("app_pages/training.py", "Train a small transformer", ":material/timeline:", "Foundations",
          "Train a transformer live and watch its induction heads form, or grokking happen.", "training",
          uses_model=False),
    Topic("app_pages/bundled_model.py", "The bundled model", ":material/model_training:", "Foundations",
          "A small GPT-2 trained on a world we wrote: its grammar, its scores, its heads.",
          "bundled-model", uses_model=False),
    Topic("app_pages/embeddings.py", "Embeddings & positions", ":material/scatter_plot:",
          "Looking inside", "Where tokens and positions live, and which words are neighbours.",
          "embeddings"),
    Topic("app_pages/attention.py", "Attention", ":material/visibility:", "Looking inside",
          "Who attends to whom: patterns, head types, and what each head copies.", "attention"),
    Topic("app_pages/residual.py", "Residual stream & logit lens", ":material/stacked_line_chart:",
          "Looking inside", "Read every layer's stream, and split the answer into what each head wrote.",
          "residual"),
    Topic("app_pages/neurons.py", "MLP neurons & weights", ":material/neurology:", "Looking inside",
          "What a neuron fires on, what it writes, and what the weights hold before any input.",
          "neurons"),
    Topic("app_pages/probes.py", "Probes", ":material/query_stats:", "Interpretability",
          "What each layer knows, and whether the model uses it.", "probes"),
    Topic("app_pages/sae.py", "Sparse autoencoders", ":material/grain:", "Interpretability",
          "Train an SAE live and see which known features it finds.", "sae"),
    Topic("app_pages/patching.py", "Activation patching & circuits", ":material/cable:", "Interpretability",
          "Patch activations to find what causes an answer, and prune the model to its circuit.", "patching"),
    Topic("app_pages/steering.py", "Steering vectors", ":material/tune:", "Interpretability",
          "Push a direction into the residual stream and watch the text change.", "steering"),
    Topic("app_pages/lora.py", "LoRA & forgetting", ":material/difference:", "Adaptation",
          "Fine-tune, see exactly what changed in the weights, and what was forgotten.", "lora"),
    Topic("app_pages/notebook.py", "Lab notebook", ":material/edit_note:", "Lab",
          "Your predictions, what was measured, your notes, and how calibrated you are.", "notebook",
          uses_model=False),
)
# While the lab is being built, a planned page appears once its script exists;
# tests/unit/test_registry.py fails until every planned page does.
TOPICS: tuple[Topic, ...] = tuple(t for t in PLANNED if (ROOT / t.path).is_file())


HOME_SCRIPT = str(ROOT / "app_pages" / "home.py")


def topic_at(url_path: str) -> Topic | None:
    return next((t for t in TOPICS if t.url_path == url_path), None)


def next_topic(url_path: str) -> Topic | None:
    """The topic after this one on the path (the first topic after Home), or None at the end."""
    if url_path in ("", None):
        return TOPICS[0] if TOPICS else None
    paths = [t.url_path for t in TOPICS]
    i = paths.index(url_path) if url_path in paths else len(paths)
    return TOPICS[i + 1] if i + 1 < len(TOPICS) else None


def topics_in(section: str) -> list[Topic]:
    """Topics of one section, in the order they are listed."""
    return [t for t in TOPICS if t.section == section]
