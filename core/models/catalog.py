"""Which models the picker offers, which of them this machine can open offline, and whether the hub
can be reached at all.

A model from the Hugging Face hub lives, once downloaded, in the local cache
(`<cache>/models--<org>--<name>/snapshots/<commit>/`). A model is "on this machine" when that folder
holds its config, its weights and a tokenizer; such a model loads with no network at all. Whether the
hub is reachable is checked once with a short TCP connection (cached briefly), so an offline machine
says so at once instead of spending half a minute in retries. HF_HUB_OFFLINE=1 means unreachable.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

CURATED: dict[str, str] = {
    "gpt2": "GPT-2 small (124M)",
    "distilgpt2": "DistilGPT-2 (82M)",
    "EleutherAI/pythia-70m": "Pythia 70M",
    "roneneldan/TinyStories-33M": "TinyStories 33M",
    "HuggingFaceTB/SmolLM2-135M": "SmolLM2 135M",
}

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
REACHABLE_TIMEOUT_S = 1.5  # one TCP connection to the hub; an offline machine answers in this time
REACHABLE_TTL_S = 30.0  # how long one answer is trusted
_TRUE = {"1", "true", "yes", "on"}

_reach_lock = threading.Lock()
_reach_cache: dict[str, tuple[float, bool]] = {}  # endpoint -> (checked at, reachable)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment at call time (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline_by_setting() -> bool:
    """True when the environment says never to use the network for the hub (HF_HUB_OFFLINE=1)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _cached_file(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir())
    except Exception:  # a malformed id or an unreadable cache: not available here
        return None
    return Path(found) if isinstance(found, str) else None


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a hub model if config, weights and a tokenizer are all there."""
    config = _cached_file(repo_id, CONFIG_FILE)
    if config is None:
        return None
    if not any(_cached_file(repo_id, f) for f in WEIGHT_FILES):
        return None
    if not any(_cached_file(repo_id, f) for f in TOKENIZER_FILES):
        return None
    return config.parent


def cached_model_ids() -> list[str]:
    """Hub models whose files are complete in the local cache (usable with no network)."""
    try:
        entries = [p.name for p in hub_cache_dir().iterdir() if p.name.startswith("models--")]
    except OSError:  # no cache folder yet, or an unreadable one: nothing is available locally
        return []
    ids = sorted(e.removeprefix("models--").replace("--", "/") for e in entries)
    return [i for i in ids if cached_snapshot(i) is not None]


def _endpoint() -> tuple[str, int] | None:
    from huggingface_hub import constants

    url = urlsplit(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    if not url.hostname:
        return None
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def _try_connect(address: tuple[str, int], timeout: float) -> bool:
    """One TCP connection within `timeout` seconds, name lookup included (it runs in a thread, because
    a resolver without network can take far longer than any socket timeout)."""
    result: list[bool] = []

    def attempt():
        try:
            with socket.create_connection(address, timeout=timeout):
                result.append(True)
        except Exception:  # noqa: BLE001 - anything at all (not only OSError) means "not reachable"
            result.append(False)

    worker = threading.Thread(target=attempt, daemon=True, name="hub-reachability")
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def hub_reachable(*, timeout: float = REACHABLE_TIMEOUT_S, ttl: float = REACHABLE_TTL_S) -> bool:
    """Whether the hub answers at all: False at once with HF_HUB_OFFLINE=1, else one short connection
    attempt whose answer is reused for `ttl` seconds (so every page does not pay for it)."""
    if hub_offline_by_setting():
        return False
    address = _endpoint()
    if address is None:
        return False
    key = f"{address[0]}:{address[1]}"
    now = time.monotonic()
    with _reach_lock:
        seen = _reach_cache.get(key)
        if seen is not None and now - seen[0] < ttl:
            return seen[1]
    answer = _try_connect(address, timeout)
    with _reach_lock:
        _reach_cache[key] = (time.monotonic(), answer)
    return answer


def forget_reachability() -> None:
    """Drop the cached answer, so the next hub_reachable() checks again (a "Try again" button)."""
    with _reach_lock:
        _reach_cache.clear()
