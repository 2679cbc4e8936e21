"""The synthetic world the bundled model learned: words with ground-truth labels, the grammar that
writes its stories, the tokenizer, and the labelled datasets every page checks techniques against.
"""
