"""Which models the picker offers: a short curated list and whatever is already in the local cache."""

from __future__ import annotations

CURATED: dict[str, str] = {
    "gpt2": "GPT-2 small (124M)",
    "distilgpt2": "DistilGPT-2 (82M)",
    "EleutherAI/pythia-70m": "Pythia 70M",
    "roneneldan/TinyStories-33M": "TinyStories 33M",
    "HuggingFaceTB/SmolLM2-135M": "SmolLM2 135M",
}


def cached_model_ids() -> list[str]:
    """Model repos in the local Hugging Face cache (usable with no network)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing is available locally
        return []
    return sorted(r.repo_id for r in info.repos if r.repo_type == "model")
