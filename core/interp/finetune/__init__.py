"""Fine-tuning and what it changes: teach a private copy of a model something new, then measure
exactly what moved in its weights, where its predictions moved, and which old skills it forgot.

Full fine-tuning lets every weight W move. LoRA (Hu et al., 2021) freezes W and learns a low-rank
correction next to it, delta W = (alpha / r) * B @ A with A [r, d_in] and B [d_out, r], so the update
can only live in an r-dimensional subspace; IA3 only rescales each unit, delta W = (l - 1) * W. Does a
smaller update also forget less? "LoRA Learns Less and Forgets Less" (Biderman et al., 2024) says it
did on their tasks; the bundled model's skills are known exactly, so here you can measure it.

The modules, in the order of an experiment:

- `config`: the settings of one run (method, matrices, rank, learning rate, steps, replay, dtype).
- `targets`: which weight matrices are adapted, named by role (attention q/k/v, attention output,
  MLP in, MLP out) so the same words work on every architecture.
- `lora`: LoRA and IA3 injected by PEFT into a private copy, or a trainable copy for full tuning.
- `memory`: what a copy costs, checked against the session's memory budget before it is made.
- `tasks`, `packing`: what to teach (a changed fact, a story style, a new word) and how its
  documents become rows of tokens.
- `training`: the loop (`FineTuner`), next-token loss, live progress, stop keeps what was learned.
- `forgetting`: the old skills (IOI, facts, induction, validation loss) measured as it learns.
- `verdict`: what the measured curves say (learned? forgot? which method forgot more?), with
  named thresholds, so every sentence the page says is computed from the run on screen.
- `weight_diff`, `behaviour_diff`: delta W's size and spectrum; KL of the predictions per token.
- `adapter_files`, `adapter_check`, `adapter_io`: adapter files saved and loaded, every size,
  shape and value checked from the file's header before anything is built from it.
"""
