"""Embedding geometry and position encodings: oracles on hand-built data and tiny models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from core.interp.embeddings import geometry as E
from core.interp.embeddings import positions as P
from core.interp.embeddings import verdicts as V
from core.models import load_model


@pytest.fixture(scope="module")
def tiny_gpt2(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def bundled():
    return load_model()  # committed with the repo: a failure to load is a real failure


# -- choosing tokens ---------------------------------------------------------------------------------
def test_parse_groups_reads_lines_and_rejects_bad_ones():
    groups = E.parse_groups("colours: red, blue ,green\n\nanimals:cat\ncolours: pink")
    assert groups == {"colours": ["red", "blue", "green", "pink"], "animals": ["cat"]}
    with pytest.raises(ValueError, match="Line 2 has no colon"):
        E.parse_groups("a: b\nno colon here")
    with pytest.raises(ValueError, match="Line 1 needs"):
        E.parse_groups("empty:  , ")


def test_token_set_keeps_single_known_tokens_only(tiny_gpt2):
    tokens = E.token_set(tiny_gpt2.tokenizer, {"animals": ["cat", "dog", "zebra"], "again": ["cat", "red"]})
    assert tokens.labels == ("animals", "animals", "again")
    assert [t.strip() for t in tokens.tokens] == ["cat", "dog", "red"]
    assert tokens.dropped == ("zebra", "cat")  # unknown, and a repeat of an earlier token
    vocab = tiny_gpt2.tokenizer.get_vocab()
    assert tokens.ids == (vocab["cat"], vocab["dog"], vocab["red"])


def test_word_token_id_on_the_bundled_tokenizer_prefers_the_spaced_form():
    from core.world.tokenizer import build_tokenizer, piece_ids

    tokenizer, ids = build_tokenizer(), piece_ids()
    assert E.word_token_id(tokenizer, "Mary") == ids[" Mary"]
    assert E.word_token_id(tokenizer, " Paris") == ids[" Paris"]
    assert E.word_token_id(tokenizer, "king") is None  # not in the world's vocabulary


# -- projections and separation -------------------------------------------------------------------------
def clusters(n_per: int = 12, d: int = 16, spread: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.eye(d)[:3] * 3
    X = np.concatenate([c + spread * rng.standard_normal((n_per, d)) for c in centres])
    labels = [name for name in ("a", "b", "c") for _ in range(n_per)]
    return X, labels


def test_pca_projection_matches_sklearn_and_reports_explained_variance():
    X, _ = clusters()
    proj = E.project(X, "pca")
    reference = PCA(n_components=2).fit(X)
    assert proj.explained == pytest.approx(tuple(reference.explained_variance_ratio_), abs=1e-9)
    assert np.abs(proj.coords) == pytest.approx(np.abs(reference.transform(X)), abs=1e-8)


def test_tsne_is_seeded():
    X, _ = clusters()
    first, second = E.project(X, "tsne", seed=3), E.project(X, "tsne", seed=3)
    assert first.coords.shape == (len(X), 2) and first.explained is None
    assert np.allclose(first.coords, second.coords)
    with pytest.raises(ValueError):
        E.project(X, "umap")


def test_separation_is_high_for_clusters_and_the_control_is_near_chance():
    X, labels = clusters()
    sep = E.separation(X, labels)
    assert sep.silhouette > 0.9 and sep.probe_accuracy == 1.0
    assert sep.chance == pytest.approx(1 / 3)
    assert sep.control_accuracy < 0.7  # shuffled labels cannot be predicted from held-out tokens
    noise = np.random.default_rng(1).standard_normal((36, 16))
    mixed = E.separation(noise, labels)
    assert abs(mixed.silhouette) < 0.1 and mixed.probe_accuracy < 0.7


def test_separation_refuses_what_it_cannot_measure():
    X, labels = clusters()
    with pytest.raises(ValueError, match="two categories"):
        E.separation(X, ["a"] * len(X))
    with pytest.raises(ValueError, match="one token"):
        E.separation(X[:13], labels[:13])  # "b" has a single token


# -- neighbours and analogies -----------------------------------------------------------------------
def test_nearest_matches_an_explicit_loop():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((50, 8))
    query = 7
    found = E.neighbours_of(W, query, k=5, exclude=[3])
    sims = []
    for i in range(len(W)):
        if i in (query, 3):
            continue
        cos = W[i] @ W[query] / (np.linalg.norm(W[i]) * np.linalg.norm(W[query]))
        sims.append((cos, i))
    expected = sorted(sims, reverse=True)[:5]
    assert list(found.ids) == [i for _, i in expected]
    assert found.similarity == pytest.approx([c for c, _ in expected], abs=1e-6)


def test_analogy_finds_the_exact_answer_and_leaves_out_its_inputs():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 12))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    a, b, c, d = 1, 2, 3, 4
    W[d] = W[a] - W[b] + W[c]  # "a is to b as d is to c"
    found = E.analogy(W, a, b, c, k=3)
    assert found.ids[0] == d and found.similarity[0] == pytest.approx(1.0, abs=1e-6)
    assert not {a, b, c} & set(found.ids)


# -- positions ---------------------------------------------------------------------------------------------
def test_sinusoidal_follows_the_formula_and_depends_only_on_distance():
    pe = P.sinusoidal(50, 16)
    p, i = 7, 3
    assert pe[p, 2 * i] == pytest.approx(np.sin(p / 10000 ** (2 * i / 16)))
    assert pe[p, 2 * i + 1] == pytest.approx(np.cos(p / 10000 ** (2 * i / 16)))
    dots = [pe[q] @ pe[q + 5] for q in range(40)]
    assert np.ptp(dots) < 1e-9  # PE[q] . PE[q + k] does not depend on q


def test_cosine_matrix_and_distance_profile():
    W = np.random.default_rng(0).standard_normal((10, 6))
    cos = P.cosine_matrix(W)
    assert np.allclose(np.diag(cos), 1) and np.allclose(cos, cos.T)
    assert cos[2, 5] == pytest.approx(W[2] @ W[5] / np.linalg.norm(W[2]) / np.linalg.norm(W[5]))
    by_distance = P.cosine_by_distance(W)
    assert by_distance[0] == pytest.approx(1) and by_distance[3] == pytest.approx(np.diagonal(cos, 3).mean())


def test_position_pcs_match_sklearn():
    W = np.random.default_rng(0).standard_normal((30, 8))
    pcs = P.position_pcs(W, k=3)
    reference = PCA(n_components=3).fit(W)
    assert pcs.explained == pytest.approx(tuple(reference.explained_variance_ratio_))
    assert np.abs(pcs.components) == pytest.approx(np.abs(reference.transform(W)), abs=1e-8)


def test_rotary_frequencies_are_read_from_the_model(tiny_model_dir):
    llama = load_model(str(tiny_model_dir("llama")))
    theta = P.rotary_frequencies(llama.model)
    d_head = llama.cfg.d_head
    assert theta == pytest.approx(10000.0 ** (-np.arange(0, d_head, 2) / d_head))
    neox = load_model(str(tiny_model_dir("gpt_neox")))  # rotary_pct 0.5: half of each head rotates
    assert len(P.rotary_frequencies(neox.model)) == neox.cfg.d_head // 4
    assert P.rotary_frequencies(load_model(str(tiny_model_dir("gpt2"))).model) is None


def test_rotary_score_by_distance():
    theta = P.sinusoidal_frequencies(64)
    score = P.rotary_score_by_distance(theta, 100)
    assert score[0] == pytest.approx(1.0) and score.max() == pytest.approx(1.0)
    assert score[3] == pytest.approx(np.cos(3 * theta).mean())
    assert score[1:].max() < 1 and score[50:].mean() < score[1:10].mean()  # the long-term decay
    assert P.wavelengths(theta)[0] == pytest.approx(2 * np.pi)


def test_shown_positions_caps_big_tables():
    assert len(P.shown_positions(1024)) == 128 and P.shown_positions(1024)[1] == 8
    assert list(P.shown_positions(20)) == list(range(20))


# -- the bundled model --------------------------------------------------------------------------------
def test_bundled_categories_separate_better_than_the_control():
    from core.world.datasets import token_groups

    lm = bundled()
    tokens = E.token_set(lm.tokenizer, token_groups())
    assert tokens.dropped == ()  # every word of the world is one token
    sep = E.separation(lm.W_E.detach().numpy()[list(tokens.ids)], tokens.labels)
    assert sep.probe_accuracy > sep.control_accuracy + 0.3
    assert sep.silhouette > 0


def test_the_worlds_analogy_answers():
    answer = E.world_analogy_answer
    assert answer("Paris", "France", "Italy") == ("Rome", "the capital of Italy")
    assert answer("she", "Mary", "John") == ("he", "the pronoun for John")
    assert answer("her", "Mary", "John") == ("him", "the pronoun for John")  # object form comes first
    assert answer("him", "Tom", "Anna") == ("her", "the pronoun for Anna")
    assert answer("Paris", "Italy", "France") is None


# -- verdicts, questions and what the page draws ---------------------------------------------------------
def _separation(accuracy: float, control: float = 0.3, chance: float = 0.34) -> E.Separation:
    return E.Separation(silhouette=0.1, probe_accuracy=accuracy, control_accuracy=control, chance=chance,
                        n_folds=5, n_tokens=30, n_categories=3)


@pytest.mark.parametrize(("accuracy", "control", "level"), [
    (0.95, 0.3, "cleanly"), (V.SEPARATED_AT - 0.01, 0.3, "partly"),
    (0.34 + V.ABOVE_BASELINE - 0.01, 0.3, "chance"),  # under the margin above chance
    (0.95, 0.85, "chance"),  # the shuffled-label control does nearly as well: nothing to read
])
def test_separation_verdict_levels(accuracy, control, level):
    v = V.separation_verdict(_separation(accuracy, control))
    assert v.level == level
    assert v.baseline == max(control, 0.34)
    assert v.baseline_name == ("chance" if 0.34 >= control else "the shuffled-label control")


def test_the_separation_question_is_graded_both_ways():
    from core.notebook.questions import Prediction
    from core.notebook.questions.embeddings import SEPARATION, SEPARATION_OPTIONS

    clean = _separation(0.97)
    right = SEPARATION.grade(clean, Prediction(SEPARATION.id, SEPARATION_OPTIONS["cleanly"], 0.8))
    wrong = SEPARATION.grade(clean, Prediction(SEPARATION.id, SEPARATION_OPTIONS["chance"], 0.8))
    assert right.correct and not wrong.correct
    assert right.measured == "90% or more: the probe scores 97% on held-out tokens (chance: 34%)"
    muddled = _separation(0.4, control=0.38)
    assert SEPARATION.grade(muddled, Prediction(SEPARATION.id, SEPARATION_OPTIONS["chance"], 0.6)).correct


def test_analogy_rank_matches_the_full_ranking():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((50, 8))
    full = E.analogy(W, 1, 2, 3, k=50, exclude=[0])
    for target in (5, 17, full.ids[0], full.ids[-1]):
        rank, n = V.analogy_rank(W, 1, 2, 3, target, exclude=[0])
        assert rank == full.ids.index(target) + 1 and n == 46
    with pytest.raises(ValueError):
        V.analogy_rank(W, 1, 2, 3, 2)


def test_the_analogy_question_is_graded_both_ways():
    from core.notebook.questions import Prediction
    from core.notebook.questions.embeddings import ANALOGY, ANALOGY_OPTIONS

    for rank, place in ((1, "first"), (V.NEAR_TOP, "near the top"), (V.NEAR_TOP + 1, "further down")):
        check = V.AnalogyCheck("Rome", "the capital of Italy", rank, 600)
        assert check.place == place
        assert ANALOGY.grade(check, Prediction(ANALOGY.id, ANALOGY_OPTIONS[place], 0.7)).correct
        other = next(o for p, o in ANALOGY_OPTIONS.items() if p != place)
        assert not ANALOGY.grade(check, Prediction(ANALOGY.id, other, 0.7)).correct
    far = V.AnalogyCheck("Rome", "the capital of Italy", 64, 628)
    assert ANALOGY.grade(far, Prediction(ANALOGY.id, "first", 0.9)).measured == (
        "Rome ranks further down: number 64 of 628 tokens")


def test_on_the_bundled_model_pronouns_rank_first_and_capitals_do_not():
    lm = bundled()
    W, tok = lm.W_E.detach().float().numpy(), lm.tokenizer
    ids = [E.word_token_id(tok, w) for w in ("she", "Mary", "John", "he", "Paris", "France", "Italy", "Rome")]
    assert V.analogy_rank(W, *ids[:3], ids[3], exclude=tok.all_special_ids)[0] == 1
    assert V.analogy_rank(W, *ids[4:7], ids[7], exclude=tok.all_special_ids)[0] > V.NEAR_TOP


@pytest.mark.parametrize(("accuracy", "control", "words"), [
    (0.95, 0.3, "): apart in the embedding"), (V.SEPARATED_AT - 0.01, 0.3, "): only partly apart in"),
    (0.95, 0.85, "): not apart in the embedding")])
def test_the_names_gender_sentence_follows_the_verdict_level(accuracy, control, words):
    from ui.embeddings.views import gender_sentence

    assert words in gender_sentence(_separation(accuracy, control))


def test_the_diagonal_band_is_said_only_when_the_cosines_show_it():
    from ui.embeddings.views import band_sentence

    falling = np.linspace(1.0, 0.2, 100)  # neighbours 0.99, 32 apart 0.74: a band
    b = V.position_band(falling)
    assert b.band and b.distance == V.FAR and b.neighbour == pytest.approx(falling[1])
    words = band_sentence(b, 0.6, 100)
    assert "the bright diagonal band on the heatmap" in words and "no bright" not in words
    assert f"positions {V.FAR} apart **{falling[V.FAR]:.2f}**" in words
    flat = np.concatenate([[1.0], np.full(99, 0.1)])  # every other row alike: no band
    b = V.position_band(flat)
    assert not b.band and b.gap == pytest.approx(0.0)
    words = band_sentence(b, 0.6, 100)
    assert "no bright diagonal band" in words and "the bright diagonal band on" not in words
    edge = np.concatenate([[1.0, 0.5 + V.BAND_GAP + 0.01], np.full(8, 0.5)])  # 10 rows: 9 apart at most
    b = V.position_band(edge)
    assert b.distance == 9 and b.band
    assert not V.position_band(np.concatenate([[1.0, 0.5 + V.BAND_GAP - 0.01], np.full(8, 0.5)])).band
    one = V.position_band(np.array([1.0]))
    assert not one.band and "a single row" in band_sentence(one, 1.0, 1)


def test_the_band_verdict_on_the_bundled_table_matches_a_direct_computation():
    from ui.embeddings import compute

    lm = bundled()
    b = compute.position_band(lm)
    W = lm.W_pos.detach().double().numpy()
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    cos = U @ U.T
    assert b.neighbour == pytest.approx(np.diagonal(cos, 1).mean(), abs=1e-6)
    assert b.far == pytest.approx(np.diagonal(cos, min(len(W) - 1, V.FAR)).mean(), abs=1e-6)


def test_the_lesson_states_the_thresholds_the_code_uses():
    import inspect

    doc = inspect.getdoc(V)
    for name in ("SEPARATED_AT", "ABOVE_BASELINE", "NEAR_TOP", "BAND_GAP", "FAR"):
        assert f"{name} = {getattr(V, name):g}" in doc or f"{name} ({getattr(V, name):g})" in doc, name


def test_written_labels_never_overlap_and_name_every_category():
    from ui.embeddings import frames

    rng = np.random.default_rng(0)
    coords = rng.standard_normal((150, 2))
    tokens = [f" word{i}" for i in range(150)]
    labels = [f"cat{i % 11}" for i in range(150)]
    keep = frames.label_subset(coords, tokens, labels)
    assert 11 <= keep.sum() < 150  # fewer than all, at least one per category
    assert {labels[i] for i in np.flatnonzero(keep)} == set(labels)
    lo, hi = coords.min(0), coords.max(0)
    px = (coords - lo) / (hi - lo) * np.array(frames.PLOT_PX)
    half = frames.LINE_PX / 2
    boxes = [(px[i, 0] + frames.DX_PX, px[i, 1] - half,
              px[i, 0] + frames.DX_PX + len(tokens[i].strip()) * frames.CHAR_PX, px[i, 1] + half)
             for i in np.flatnonzero(keep)]
    for i, a in enumerate(boxes):  # an independent pairwise check
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    r = frames.POINT_PX
    for box, i in zip(boxes, np.flatnonzero(keep), strict=True):  # and no label covers another point
        for j in range(len(px)):
            if j != i:
                x, y = px[j]
                assert not (box[0] - r < x < box[2] + r and box[1] - r < y < box[3] + r), (i, j)
    spread = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    assert frames.label_subset(spread, [" a", " b", " c"], ["x", "y", "z"]).all()  # room for all


def test_the_palette_has_distinct_hues_for_the_worlds_categories():
    from core.world.datasets import token_groups
    from ui.embeddings.charts import PALETTE

    assert len(set(PALETTE)) == len(PALETTE) >= len(token_groups())
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in PALETTE], dtype=float)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + np.eye(len(rgb)) * 999
    assert gaps.min() > 60  # no two colours within 60 of each other in RGB


def test_a_token_without_its_space_is_shown_as_a_different_token():
    from ui.embeddings import frames

    assert frames.space_twins(" Mary", [" Maya", "Mary", " Mary", " Anna"]) == ["Mary"]
    assert frames.space_twins("Mary", [" Mary", "Maria"]) == [" Mary"]
    table = frames.neighbour_frame([" Maya", "Mary"], E.Neighbours((1, 2), (0.589, 0.5224)))
    assert list(table["token"]) == ["' Maya'", "'Mary'"] and list(table["cosine"]) == [0.589, 0.522]
