"""The foot every topic page shares (drawn by app.py): a link to the experiment as it is now, "Add to
notebook", and "Next" along the path, also after a page ends early."""

from __future__ import annotations

from tests.app.helpers import open_page, texts


def test_the_link_holds_every_url_setting_and_next_follows_the_path():
    at = open_page("app_pages/attention.py", query={"attn_layer": "0", "attn_head": "0"})
    [code] = [c.value for c in at.code if "/attention" in c.value]
    assert code.endswith("/attention?attn_layer=0&attn_head=0")
    assert any("Next: Residual stream" in str(getattr(p, "label", "")) for p in at.get("page_link"))


def test_a_page_that_ends_early_still_draws_its_foot():
    # an answer that is not one token ends the Residual page with a message (ui.common.page.end_page)
    at = open_page("app_pages/residual.py", query={"res_other": "notaword xyz"})
    assert "cannot be used" in texts(at)
    assert any("/residual" in c.value for c in at.code)  # the foot's link to the experiment
    assert any("Next:" in str(getattr(p, "label", "")) for p in at.get("page_link"))
