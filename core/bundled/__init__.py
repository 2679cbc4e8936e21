"""The bundled model: how it is trained from the world's corpus and how it is evaluated.

`python -m core.bundled.train` rebuilds assets/bundled/; `python -m core.bundled.evaluate` writes
its evaluation report. See model_card.md for what the model is and what it cannot do. The world it
learned (words, grammar, tokenizer, labelled datasets) is core.world; this package uses the
technique packages (core.interp) to score it, never the reverse.
"""
