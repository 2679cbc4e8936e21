"""The XOR page's controls and its cached training run.

Every control that defines the experiment has a stable key and is bound to the URL, so a link
reproduces the run. Training is a pure function of (data, config) and cached with st.cache_data:
moving a slider back to a value already tried costs nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from core.scratch.data import MAX_BYTES, CSVError, Dataset, make_dataset, read_csv
from core.scratch.train import TrainConfig, TrainResult, fit_to_budget, train
from ui.common.page import show_problem

DATA_LABELS = {"xor": "XOR (4 points)", "noisy_xor": "Noisy XOR", "circles": "Circles", "spirals": "Spirals",
               "csv": "Your own CSV"}
ACT_LABELS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "ReLU"}
LOSS_LABELS = {"bce": "cross-entropy", "mse": "squared error"}
INIT_LABELS = {"xavier": "Xavier", "he": "He", "small": "Small random (std 0.1)", "zero": "All zero"}
OPT_LABELS = {"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}
LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
BATCHES = ["full", 64, 32, 16, 8, 4, 2, 1]
EPOCHS = [100, 200, 500, 1000, 2000, 5000]
N_POINTS = 200
SAMPLE_CSV = "x,y,label\n" + "".join(f"{x},{y},{'on' if (x > 5) != (y > 5) else 'off'}\n"
                                     for x in (1, 3, 7, 9) for y in (2, 4, 6, 8))


@dataclass(frozen=True)
class DataSource:
    name: str  # a key of DATA_LABELS
    noise: float = 0.15
    csv: bytes | None = None
    too_big: int = 0  # the size of an upload refused unread, in bytes


@dataclass(frozen=True)
class Experiment:
    source: DataSource
    config: TrainConfig
    note: str = ""  # said on the page when the config had to be adjusted

    @property
    def key(self) -> str:
        """A stable identity for this run (for the predictions and the player)."""
        csv = hashlib.sha1(self.source.csv).hexdigest()[:12] if self.source.csv else ""
        return f"{self.source.name}|{self.source.noise}|{csv}|{self.config}"

    def summary(self) -> str:
        c = self.config
        sizes = "-".join(map(str, (2, *c.hidden, 1)))
        batch = "full batch" if c.batch_size == 0 else f"batches of {c.batch_size}"
        epochs = f"{c.epochs:,} epochs" + (f" (cut from {c.epochs_requested:,})"
                                           if c.epochs_requested and c.epochs_requested > c.epochs else "")
        return (f"a {sizes} {ACT_LABELS[c.activation]} net, {LOSS_LABELS[c.loss]}, "
                f"{INIT_LABELS[c.init]} init, {OPT_LABELS[c.optimizer]} lr {c.lr:g}, {batch}, "
                f"{epochs}, seed {c.seed}, "
                f"on {DATA_LABELS[self.source.name]}")


@st.cache_data(max_entries=16, show_spinner=False)
def load_data(source: DataSource) -> Dataset:
    """The dataset for a source; raises CSVError for a bad upload."""
    if source.name == "csv":
        if source.too_big:
            raise CSVError(f"The file is {source.too_big / 1e6:.1f} MB; the limit is "
                           f"{MAX_BYTES / 1e6:.0f} MB.")
        return read_csv(source.csv or b"")
    return make_dataset(source.name, N_POINTS, source.noise, seed=0)


@st.cache_data(max_entries=64, show_spinner="Training...")
def run(source: DataSource, config: TrainConfig) -> TrainResult:
    data = load_data(source)
    return train(config, data.X, data.y)


def _data_controls() -> DataSource | None:
    name = st.selectbox("Data", list(DATA_LABELS), format_func=DATA_LABELS.get, key="xor_data",
                        bind="query-params")
    if name == "csv":
        upload = st.file_uploader("CSV with columns x, y, label (two classes, at most 10,000 rows)",
                                  type=["csv", "txt"], key="xor_csv")
        st.download_button("Example CSV", SAMPLE_CSV, file_name="xor_example.csv", mime="text/csv",
                           icon=":material/download:", key="xor_csv_example", on_click="ignore")
        if upload is None:
            st.caption("Upload a file to train on it.")
            return None
        if upload.size > MAX_BYTES:  # refused before the bytes are copied or parsed
            return DataSource("csv", 0.0, b"", too_big=int(upload.size))
        return DataSource("csv", 0.0, upload.getvalue())
    noise = st.slider("Noise", 0.0, 0.5, 0.15, 0.05, key="xor_noise", bind="query-params",
                      disabled=name == "xor", help="Spread of the points; XOR's four points have none.")
    return DataSource(name, 0.0 if name == "xor" else noise)


def _network_controls() -> tuple[int, ...]:
    layers = st.slider("Hidden layers", 1, 3, 1, key="xor_layers", bind="query-params")
    return tuple(st.slider(f"Units in hidden layer {l}", 1, 16, 2, key=f"xor_units{l}", bind="query-params")
                 for l in range(1, layers + 1))


def _choice(label: str, labels: dict[str, str], default: str, key: str) -> str:
    choice = st.segmented_control(label, list(labels), format_func=labels.get, default=default,
                                  required=True, key=key, bind="query-params", wrap=True)
    return choice if choice in labels else default  # an empty value in a link (?xor_loss=) clears it


def experiment_controls() -> Experiment | None:
    """Draw the controls in the sidebar, next to the pictures they change; return the experiment
    they define (None while the data is missing or bad, after saying why on the page)."""
    with st.sidebar:
        st.subheader("The experiment", anchor=False, divider="gray")
        source = _data_controls()
        hidden = _network_controls()
        act = _choice("Activation", ACT_LABELS, "tanh", "xor_act")
        loss = _choice("Loss", LOSS_LABELS, "bce", "xor_loss")
        init = st.selectbox("Initialisation", list(INIT_LABELS), format_func=INIT_LABELS.get,
                            key="xor_init", bind="query-params")
        opt = _choice("Optimiser", OPT_LABELS, "adam", "xor_opt")
        lr = st.select_slider("Learning rate", LEARNING_RATES, value=0.05, key="xor_lr", bind="query-params",
                              format_func=lambda v: f"{v:g}")
        batch = st.select_slider("Batch size", BATCHES, value="full", key="xor_batch", bind="query-params",
                                 help="Examples per step. 'full' = every point, one step per epoch.")
        epochs = st.select_slider("Epochs", EPOCHS, value=500, key="xor_epochs", bind="query-params")
        seed = st.number_input("Seed", 0, 9999, 0, key="xor_seed", bind="query-params",
                               help="Picks the initial weights (and the mini-batch order).")
    if source is None:
        return None
    try:
        data = load_data(source)
    except CSVError as err:
        show_problem(f"This CSV cannot be used. {err}")
        return None
    batch_size = 0 if batch == "full" or batch >= data.n else int(batch)
    asked = TrainConfig(hidden=hidden, activation=act, loss=loss, init=init, optimizer=opt, lr=float(lr),
                        epochs=int(epochs), batch_size=batch_size, seed=int(seed))
    config = fit_to_budget(asked, data.n)
    budget = config.budget(data.n)
    note = data.note
    if budget.cut:
        note = (f"{note} Batches of {batch_size} make {budget.steps_per_epoch:,} steps per epoch, and a run "
                f"may take at most {budget.max_steps:,} steps to stay live, so this run trains "
                f"{budget.trained:,} epochs instead of {budget.requested:,}.").strip()
    return Experiment(source, config, note)
