"""XOR from scratch: a small network trained live, with every step of backprop visible."""

import streamlit as st

from core.notebook.questions.xor import OUTCOME
from core.scratch import data as data_lesson
from core.scratch import diagnose, mlp, optim, trace, train, views
from ui.common.page import how_it_is_computed, page_header
from ui.common.predict import predict_first
from ui.xor.controls import experiment_controls, run
from ui.xor.controls import load_data as dataset
from ui.xor.player import player
from ui.xor.views import show_verdict

page_header(
    "XOR: a network from scratch",
    "No straight line separates XOR's two classes, so a network must *invent* features that make it "
    "separable. Here a small network written in plain numpy (forward and backward passes by hand, no "
    "autograd) learns it while you watch: the decision boundary forming, what each hidden unit learned, "
    "the hidden layer straightening the problem out, and every number of backprop for one example. "
    "Change any control in the sidebar and it retrains at once; break it on purpose and the page names what "
    "went wrong.",
    "How does a network with a hidden layer learn a function that no single line can draw, and what "
    "exactly does backprop compute to get there?",
)

experiment = experiment_controls()
if experiment is None:
    st.info("Pick a dataset (or upload a valid CSV) to train.", icon=":material/upload_file:")
else:
    if experiment.note:
        st.caption(f":material/info: {experiment.note}")
    step = predict_first(OUTCOME, key="xor_predict", context=experiment.key, page="xor", model="xor-scratch",
                         fields={"setup": experiment.summary()})
    if step.ready:
        result = run(experiment.source, experiment.config)  # trained only once the prediction is in
        step.reveal(result)
        st.caption(f"This run: {experiment.summary()}.")
        show_verdict(result)
        st.subheader("Watch it train", anchor="train")
        st.markdown(
            "Training saved the weights at regular epochs. Press **Play** to watch the boundary form, step "
            "with the arrows, or scrub the slider: every picture below follows."
        )
        player(dataset(experiment.source), result, experiment.key)

with st.expander("Things to try", icon=":material/science:"):
    st.markdown(
        "- **Two ReLU units** (Activation: ReLU): will they solve XOR on seed 0? Predict, then run. Then try "
        "seeds 1 to 5 and count the dead units.\n"
        "- **Seed 1** with the defaults: predict whether two tanh units solve it, then try four units.\n"
        "- **All-zero initialisation**: every hidden unit stays the twin of every other.\n"
        "- **Learning rate 30** with SGD: the page says at which epoch it diverged.\n"
        "- **Squared error + sigmoid units + SGD**: slow, with long plateaus; then switch to cross-entropy.\n"
        "- **Spirals**: how many layers and units does it take? Watch the hidden units of layer 2 combine "
        "the straight lines of layer 1."
    )

how_it_is_computed(
    mlp, trace, optim, train, diagnose, views, data_lesson,
    papers=(
        "Rumelhart, Hinton and Williams (1986), [*Learning representations by back-propagating errors*]"
        "(https://doi.org/10.1038/323533a0), Nature 323, 533–536: backprop, and XOR learned by a hidden "
        "layer.",
        "Smilkov and Carter, [TensorFlow Playground](https://playground.tensorflow.org): the decision "
        "boundary, per-neuron pictures and the datasets this page builds on.",
        "Karpathy, [micrograd](https://github.com/karpathy/micrograd): backprop on a scalar computation "
        "graph, the idea behind the step-by-step trace.",
        "Kingma and Ba (2015), [*Adam: A Method for Stochastic Optimization*]"
        "(https://arxiv.org/abs/1412.6980), ICLR; "
        "[Glorot and Bengio (2010)](https://proceedings.mlr.press/v9/glorot10a.html) "
        "and [He et al. (2015)](https://arxiv.org/abs/1502.01852) for the initialisations.",
    ),
)
