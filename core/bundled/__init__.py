"""The bundled model's world: grammar with ground-truth labels, tokenizer, datasets, train, evaluate.

    from core.bundled import datasets
    datasets.ioi_prompts(100, seed=0, split="heldout")   # IOI clean/corrupt pairs with answers
    datasets.labelled_sentences("gender", 200, seed=0)   # probe data with labels and token index

`python -m core.bundled.train` rebuilds assets/bundled/; `python -m core.bundled.evaluate` writes
its evaluation report. See model_card.md for what the model is and what it cannot do.
"""
