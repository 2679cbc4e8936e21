"""The synthetic world, its tokenizer and its datasets: determinism, one token per word, splits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from core.models.tokens import unknown_words
from core.world import datasets as D
from core.world import grammar as G
from core.world import world as W
from core.world.corpus import build_corpus, corpus_documents
from core.world.tokenizer import SPECIALS, build_tokenizer, piece_ids, vocabulary


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_grammar_is_deterministic_by_seed():
    assert corpus_documents(30, seed=5) == corpus_documents(30, seed=5)
    assert corpus_documents(30, seed=5) != corpus_documents(30, seed=6)
    assert torch.equal(build_corpus(20, seed=1).rows, build_corpus(20, seed=1).rows)
    assert D.ioi_prompts(10, seed=3) == D.ioi_prompts(10, seed=3)
    assert D.labelled_sentences("colour", 10, seed=3) == D.labelled_sentences("colour", 10, seed=3)


def test_every_vocabulary_piece_is_one_token(tok):
    table = piece_ids()
    assert len(tok) == len(vocabulary()) == len(table)
    for piece, i in table.items():
        if piece not in SPECIALS:
            assert ids(tok, piece) == [i], piece
    assert tok.bos_token == "<|endoftext|>" and tok.bos_token_id == 0
    assert tok.unk_token_id == 1 and tok.pad_token_id == 2


def test_round_trip_and_gpt2_style_spaces(tok, tmp_path):
    text = "When Mary and John went to the store, John gave a drink to Mary."
    encoded = ids(tok, text)
    assert len(encoded) == 16
    assert tok.decode(encoded) == text
    assert tok.decode([encoded[1]]) == " Mary" and tok.decode([encoded[0]]) == "When"
    assert [tok.decode([i]) for i in ids(tok, "3 + 4 = 7.")] == ["3", " +", " 4", " =", " 7", "."]
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert text[slice(*offsets[1])] == "Mary"
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert ids(again, text) == encoded and again.decode(encoded) == text


def test_corpus_text_tokenizes_to_the_grammar_pieces(tok):
    table = piece_ids()
    for family, text in corpus_documents(300, seed=11):
        assert tok.decode(ids(tok, text)) == text
        assert tok.unk_token_id not in ids(tok, text), (family, text)
    words = ("When", "Mary", "and", "John", "went", ",", "3", "+")
    assert ids(tok, G.text(words)) == [table[p] for p in G.pieces(words)]


def test_unknown_words_are_unk(tok):
    encoded = ids(tok, "Mary likes zebras.")
    assert encoded.count(tok.unk_token_id) == 2
    assert unknown_words(tok, "Mary likes zebras.") == ["likes", "zebras"]
    assert unknown_words(tok, "Mary went to the park.") == []


def test_every_token_appears_in_a_small_corpus():
    corpus = build_corpus(1500, seed=0)
    assert corpus.unseen_ids == []
    assert (corpus.rows[:, 0] == 0).all()  # every row starts with BOS


def test_ioi_heldout_pairs_never_in_training():
    assert G.IOI_HELDOUT.isdisjoint(G.IOI_TRAIN) and len(G.IOI_HELDOUT) == len(G.IOI_INTROS)
    assert {p.intro for p in D.ioi_prompts(60, 0, "heldout")} == set(range(len(G.IOI_INTROS)))
    import random
    rng = random.Random(0)
    seen = {(s.labels["intro"], s.labels["action"]) for _ in range(500) for s in G.ioi(rng)}
    assert seen == set(G.IOI_TRAIN)
    for p in D.ioi_prompts(60, 0, "heldout"):
        assert (p.intro, p.action) in G.IOI_HELDOUT
        assert p.clean.endswith(" to") and p.io != p.s and p.c not in (p.io, p.s)


def test_ioi_positions_point_at_the_names(tok):
    for p in D.ioi_prompts(20, 1, "all"):
        pieces = ["<bos>", *(tok.decode([i]) for i in ids(tok, p.clean))]
        assert pieces[p.positions["S2"]] == p.s and pieces[p.positions["S1"]].strip() == p.s.strip()
        assert pieces[p.positions["IO"]].strip() == p.io.strip()
        assert p.positions["end"] == len(pieces) - 1
        corrupt = ["<bos>", *(tok.decode([i]) for i in ids(tok, p.corrupt))]
        assert corrupt[p.positions["S2"]] == p.c and len(corrupt) == len(pieces)


@pytest.mark.parametrize("attribute", D.ATTRIBUTES)
def test_labelled_sentences_splits_are_disjoint(tok, attribute):
    train = D.labelled_sentences(attribute, 80, seed=0, split="train")
    held = D.labelled_sentences(attribute, 80, seed=0, split="heldout")
    _, train_frames, held_frames = D.FRAMES[attribute]
    assert set(train_frames).isdisjoint(held_frames)
    first_word = {s.text.split()[0].strip(",") for s in held}
    for item in train + held:
        token = ids(tok, item.text)[item.token_index - 1]
        assert tok.decode([token]) == item.word
        assert item.text[slice(*item.char_span)] == item.word.strip()
    held_names = {n for g in W.NAMES for n in W.split_names(g, "heldout")}
    train_names = {n for g in W.NAMES for n in W.split_names(g, "train")}
    assert held_names.isdisjoint(train_names) and len(held_names) == 12
    assert all(w in train_names for s in train for w in s.text.replace(".", " ").split()
               if w in W.GENDER_OF)
    assert all(w in held_names for s in held for w in s.text.replace(".", " ").split()
               if w in W.GENDER_OF)
    labels = [s.label for s in train]
    assert len(set(labels)) == len(D.CLASSES[attribute])
    assert first_word  # sentences are non-empty


def test_gender_sentences_have_no_pronoun():
    for s in D.labelled_sentences("gender", 60, seed=2, split="train"):
        assert not {"she", "he", "her", "his", "him"} & set(s.text.lower().rstrip(".").split())


def test_induction_tokens_layout():
    tokens = D.induction_tokens(8, 10, seed=0)
    assert tokens.shape == (8, 21) and (tokens[:, 0] == 0).all()
    assert torch.equal(tokens[:, 1:11], tokens[:, 11:])
    assert tokens[:, 1:].min() >= 3 and tokens.max() < len(vocabulary())
    assert torch.equal(tokens, D.induction_tokens(8, 10, seed=0))


def test_facts_contrasts_groups_and_changed_facts(tok):
    facts = D.fact_prompts("train")
    assert len({f.prompt for f in facts}) == len(facts)  # one answer per prompt
    for f in facts + D.fact_prompts("heldout"):
        assert len(ids(tok, f.answer)) == 1 and tok.unk_token_id not in ids(tok, f.prompt)
    for concept in D.CONTRASTS:
        for pair in D.contrast_pairs(concept, 6):
            a, b = ids(tok, pair.plus), ids(tok, pair.minus)
            assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    groups = D.token_groups()
    words = [w for group in groups.values() for w in group]
    assert len(words) == len(set(words))
    assert all(len(ids(tok, w)) == 1 and tok.unk_token_id not in ids(tok, w) for w in words)
    for fact in D.changed_facts(4):
        assert fact.new_answer != fact.old_answer and len(ids(tok, fact.new_answer)) == 1
    assert all(t for t in D.corpus_texts(5, 0))


def test_pronoun_prompts_only_cue_is_the_name():
    for p in D.pronoun_prompts(30, seed=4):
        assert p.correct != p.wrong and p.name in p.prompt
        assert not {"she", "he", "her", "his", "him"} & set(p.prompt.lower().split())
