"""Remote models on NDIF: which models it serves, the API key, what each request cost, and which
pages can use a remote model.

NDIF (the National Deep Inference Fabric) keeps large open models (Llama-3.1-8B and -70B among
them) loaded on shared GPUs and runs nnsight traces against them for anyone with a free API key.
A trace travels as data (what to read, what to add where); the weights never leave the server, and
only what the trace saved comes back. So a remote model is as fast to "load" as reading its
config and tokenizer, and each request costs one round trip plus a queue wait.

This module never imports nnsight (the sidebar lists models without loading it) and never sends the
key anywhere but NDIF: the key comes from Streamlit secrets or the environment (NDIF_API_KEY), never
from a URL or a widget. Without a key nothing is contacted at all.

Every request a remote (or nnsight) model runs is recorded as a RequestRecord: what was sent (the
prompts), how long it took and how many bytes went each way. Records go to the RequestLog bound to
the current thread (use_log), which the app keeps per browser session, so one learner never sees
another's prompts.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from core.models.loading import ModelLoadError

KEY_NAME = "NDIF_API_KEY"  # the Streamlit secret and the environment variable
HOST_ENV = "NDIF_HOST"
DEFAULT_HOST = "https://api.ndif.us"  # nnsight's own default (nnsight/config.yaml)
SPEC_PREFIX = "ndif:"  # a remote model's spec: "ndif:meta-llama/Llama-3.1-8B"
KEY_HELP = (
    "Remote models run on NDIF, the National Deep Inference Fabric: a free service that keeps large "
    "open models loaded for research and runs nnsight traces on them. To use it: register at "
    "https://login.ndif.us for a free API key, then give it to this app as the secret "
    f"`{KEY_NAME}` in `.streamlit/secrets.toml` (or on Streamlit Community Cloud under Settings -> "
    f"Secrets), or as the environment variable `{KEY_NAME}`. The key is never put in a link. "
    "Until then the lab keeps using the model on this machine."
)

LIST_TIMEOUT_S = 3.0  # one GET of NDIF's model list; an unreachable service answers in this time
LIST_TTL_S = 60.0  # how long a model list is trusted
FAILED_LIST_TTL_S = 15.0  # how long "NDIF cannot be reached" is trusted before trying again
CHECK_TIMEOUT_S = 5.0  # the key check when a remote model is chosen
REQUEST_TIMEOUT_S = 120.0  # one trace, queue wait included; a page may pass its own
MAX_PROMPT_CHARS = 300  # per prompt in the request log
MAX_LOGGED_PROMPTS = 8
LOG_LENGTH = 50  # records kept per session
# Exact patching sends one patched forward pass per component; remotely each batch of them is one
# request. A page offering exact sweeps on a remote model runs at most this many patched passes,
# and says so; attribution patching needs one request for every component.
MAX_REMOTE_PATCH_RUNS = 64
SUPPORTED_TYPES = ("gpt2", "gpt_neo", "gpt_neox", "llama")  # core.models.adapters.SUPPORTED


# -- errors: every one of them is a sentence a learner can act on ------------------------------------
class RemoteRequestError(RuntimeError):
    """A request to a remote model failed; str(err) says why and what to do."""


class RequestTimeout(RemoteRequestError):
    pass


class RequestCancelled(RemoteRequestError):
    pass


class RequestRefused(RemoteRequestError):
    """NDIF answered, and said no (busy, unknown model, over a limit) or could not be reached."""


class BadKey(RequestRefused):
    pass


class JobFailed(RemoteRequestError):
    """NDIF ran the request and it raised an error there."""


class NotRemotable(RemoteRequestError):
    """Something only a local model can do (a Python hook function, reading whole weight matrices)."""


class RemoteModelError(ModelLoadError):
    """A remote model could not be connected; the model in use stays."""


# -- the key and the host -------------------------------------------------------------------------------
def api_key(secrets: Mapping | None = None) -> str | None:
    """The NDIF key: the Streamlit secret NDIF_API_KEY if given, else the environment variable."""
    for source in (secrets, os.environ):
        if source is None:
            continue
        try:
            value = source.get(KEY_NAME)
        except Exception:  # st.secrets raises when there is no secrets file at all
            value = None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def host() -> str:
    """NDIF's address: NDIF_HOST if set (a local test server, a private deployment), else nnsight's."""
    return (os.environ.get(HOST_ENV) or DEFAULT_HOST).rstrip("/")


def remote_spec(repo_id: str) -> str:
    return SPEC_PREFIX + repo_id


def is_remote_spec(spec: str | None) -> bool:
    return isinstance(spec, str) and spec.startswith(SPEC_PREFIX)


def repo_of(spec: str) -> str:
    return spec[len(SPEC_PREFIX):] if is_remote_spec(spec) else spec


# -- the request log ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestRecord:
    """One request: what was sent, where, how long it took, and what it moved."""

    model: str
    kind: str  # "trace", "generate", "attribution", ...
    where: str  # "NDIF" or "this machine"
    prompts: tuple[str, ...]  # the decoded rows sent (cut to MAX_PROMPT_CHARS, at most MAX_LOGGED_PROMPTS)
    n_rows: int
    n_tokens: int  # per row
    asked: tuple[str, ...]  # the hook points read or written
    started: float  # time.time()
    seconds: float
    bytes_sent: int  # the serialized request (remote), or the write tensors (local)
    bytes_received: int  # the result as it came back (compressed, remote), or the saved tensors (local)
    status: str  # "ok", "timeout", "cancelled", "refused", "failed"
    message: str = ""


class RequestLog:
    """The last LOG_LENGTH requests of one session, newest last; safe to share between threads."""

    def __init__(self, maxlen: int = LOG_LENGTH):
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


_current_log: ContextVar[RequestLog | None] = ContextVar("lab_request_log", default=None)


def bind_log(log: RequestLog | None):
    """Make `log` this thread's request log (until rebound); returns a token for unbind_log."""
    return _current_log.set(log)


def unbind_log(token) -> None:
    _current_log.reset(token)


@contextmanager
def use_log(log: RequestLog) -> Iterator[RequestLog]:
    """Requests made inside this block, in this thread, are recorded in `log`."""
    token = bind_log(log)
    try:
        yield log
    finally:
        unbind_log(token)


def current_log() -> RequestLog | None:
    return _current_log.get()


def record(rec: RequestRecord) -> None:
    """Append to this thread's log, if one is bound (nothing is kept otherwise)."""
    log = _current_log.get()
    if log is not None:
        log.add(rec)


@dataclass(frozen=True)
class Waiting:
    """How a remote request in this thread waits: its timeout, a cancel event, and a callback told
    the seconds waited so far (a page shows them; raising from it abandons the request)."""

    timeout_s: float | None = None
    cancel: threading.Event | None = None
    progress: Callable[[float], None] | None = None


_waiting: ContextVar[Waiting | None] = ContextVar("lab_remote_waiting", default=None)


@contextmanager
def waiting(timeout_s: float | None = None, cancel: threading.Event | None = None,
            progress: Callable[[float], None] | None = None) -> Iterator[Waiting]:
    """Requests made in this block, in this thread, wait this way (see Waiting)."""
    token = _waiting.set(Waiting(timeout_s, cancel, progress))
    try:
        yield _waiting.get()
    finally:
        _waiting.reset(token)


def current_waiting() -> Waiting:
    return _waiting.get() or Waiting()


def shown_prompts(texts: list[str]) -> tuple[str, ...]:
    cut = [t if len(t) <= MAX_PROMPT_CHARS else t[:MAX_PROMPT_CHARS] + "..." for t in texts]
    if len(cut) > MAX_LOGGED_PROMPTS:
        cut = cut[:MAX_LOGGED_PROMPTS] + [f"... and {len(cut) - MAX_LOGGED_PROMPTS} more"]
    return tuple(cut)


# -- which models NDIF serves -------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteModel:
    repo_id: str
    state: str  # NDIF's application state: "RUNNING", "DEPLOYING", ...
    level: str  # "HOT" (on GPUs now) or "WARM" (loads on the first request)

    @property
    def ready(self) -> bool:
        return self.state == "RUNNING"

    @property
    def spec(self) -> str:
        return remote_spec(self.repo_id)


@dataclass(frozen=True)
class Listing:
    """NDIF's models, or why there are none to show (no key, unreachable)."""

    reachable: bool
    has_key: bool
    models: tuple[RemoteModel, ...] = ()
    message: str = ""
    checked_at: float = field(default_factory=time.time)

    def find(self, repo_id: str) -> RemoteModel | None:
        return next((m for m in self.models if m.repo_id == repo_id), None)


_list_lock = threading.Lock()
_list_cache: dict[str, tuple[float, Listing]] = {}


def forget_listing() -> None:
    with _list_lock:
        _list_cache.clear()


def _status_json(url: str, timeout: float, headers: dict | None = None) -> dict:
    import httpx  # comes with nnsight

    response = httpx.get(url, timeout=httpx.Timeout(timeout), headers=headers)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("NDIF answered with something that is not a JSON object")
    return data


def parse_status(data: dict) -> tuple[RemoteModel, ...]:
    """The deployed models in NDIF's /status answer (HOT or WARM; COLD ones are only downloaded),
    one per repo id, the healthiest replica first; sorted by name."""
    level_rank, state_rank = {"HOT": 0, "WARM": 1}, {"RUNNING": 0, "DEPLOYING": 1}
    best: dict[str, RemoteModel] = {}
    deployments = data.get("deployments") or {}
    if not isinstance(deployments, dict):
        return ()
    for name, value in deployments.items():
        if not isinstance(value, dict):
            continue
        level = str(value.get("deployment_level") or "")
        if level not in level_rank:
            continue
        repo = str(value.get("repo_id") or name)
        if not repo or len(repo) > 200:
            continue
        model = RemoteModel(repo, str(value.get("application_state") or "UNKNOWN"), level)
        held = best.get(repo)
        rank = (level_rank[level], state_rank.get(model.state, 9))
        if held is None or rank < (level_rank[held.level], state_rank.get(held.state, 9)):
            best[repo] = model
    return tuple(sorted(best.values(), key=lambda m: m.repo_id.lower()))


def list_models(key: str | None, *, url: str | None = None, timeout: float = LIST_TIMEOUT_S) -> Listing:
    """NDIF's models when a key is configured and NDIF answers within `timeout` (cached for
    LIST_TTL_S); without a key, nothing is contacted and the listing says how to get one."""
    if not key:
        return Listing(reachable=False, has_key=False, message=KEY_HELP)
    base = (url or host()).rstrip("/")
    now = time.monotonic()
    with _list_lock:
        hit = _list_cache.get(base)
        if hit is not None:
            at, listing = hit
            ttl = LIST_TTL_S if listing.reachable else FAILED_LIST_TTL_S
            if now - at < ttl:
                return listing
    try:
        models = parse_status(_status_json(f"{base}/status", timeout))
        listing = Listing(reachable=True, has_key=True, models=models,
                          message="" if models else "NDIF answered, but serves no model right now.")
    except Exception as err:  # unreachable, timed out, not JSON: the app stays on the local model
        listing = Listing(reachable=False, has_key=True, message=unreachable_message(err))
    with _list_lock:
        _list_cache[base] = (now, listing)
    return listing


def unreachable_message(err: BaseException) -> str:
    what = type(err).__name__
    if "Timeout" in what:
        why = f"it did not answer within {LIST_TIMEOUT_S:g} s"
    elif "Connect" in what or isinstance(err, OSError):
        why = "there is no network connection to it from this server"
    else:
        why = f"its answer could not be read ({what})"
    return (f"NDIF cannot be reached from here: {why}. The lab keeps using the model on this machine; "
            "try again later.")


def check_key(key: str | None, *, url: str | None = None, timeout: float = CHECK_TIMEOUT_S) -> str:
    """Ask NDIF who the key belongs to; returns the account, or raises RemoteModelError saying why."""
    if not key:
        raise RemoteModelError(KEY_HELP)
    base = (url or host()).rstrip("/")
    import httpx

    try:
        data = _status_json(f"{base}/whoami", timeout, headers={"ndif-api-key": key})
    except httpx.HTTPStatusError as err:
        code = err.response.status_code
        if code in (401, 403):
            raise RemoteModelError(bad_key_message(code)) from err
        raise RemoteModelError(f"NDIF refused the key check (HTTP {code}). Try again later.") from err
    except Exception as err:
        raise RemoteModelError(unreachable_message(err)) from err
    who = data.get("email")
    if not who:
        raise RemoteModelError(bad_key_message(None))
    return str(who)


def bad_key_message(code: int | None) -> str:
    said = f" (HTTP {code})" if code else ""
    return (f"NDIF does not recognise the API key{said}. Check the `{KEY_NAME}` secret or environment "
            "variable (a key from https://login.ndif.us, without quotes or spaces). The lab keeps "
            "using the model it had.")


# -- which pages work on a remote model ----------------------------------------------------------------
@dataclass(frozen=True)
class PageSupport:
    status: str  # "remote": works on a remote model; "local": needs the weights here; "not yet"
    reason: str

    @property
    def remote(self) -> bool:
        return self.status == "remote"


PAGE_SUPPORT: dict[str, PageSupport] = {
    "residual": PageSupport(
        "remote", "The logit lens reads the stream at the layers and positions you pick, and the final "
        "norm and unembedding run on the server: a request returns a few logits per layer. Direct "
        "logit attribution projects each head's output on the answer direction there too "
        "(core.models.backend.head_projections)."),
    "attention": PageSupport(
        "remote", "Attention patterns of the layers you pick come back as [head, query, key] numbers: "
        "a few kilobytes per layer for a short prompt."),
    "steering": PageSupport(
        "remote", "The steering vector travels with the request and is added on the server at every "
        "generated token, for all coefficients in one batch; only the token ids come back."),
    "patching": PageSupport(
        "remote", "Attribution patching estimates every component from one forward and one backward "
        f"pass, in one request. Exact patching needs a patched run per component, so a remote model "
        f"gets at most {MAX_REMOTE_PATCH_RUNS} patched runs per sweep."),
    "lora": PageSupport(
        "local", "Fine-tuning changes weights, so it needs them in this process; NDIF serves shared "
        "models that nobody may change."),
    "sae": PageSupport(
        "local", "Training a sparse autoencoder reads activations of a long corpus over and over: "
        "megabytes per training step, which is why it runs next to the model."),
    "embeddings": PageSupport(
        "local", "The page draws the whole embedding table (every token's vector), which is the "
        "weight matrix itself; a remote model's weights stay on the server."),
    "neurons": PageSupport(
        "local", "Neuron dashboards read whole MLP weight matrices and scan a corpus for top "
        "activations; both need the weights here."),
    "probes": PageSupport(
        "not yet", "Probes train on activations of a few hundred labelled sentences of the bundled "
        "world; reading them remotely is possible (one vector per sentence) but the page is not wired "
        "for it yet."),
}


def page_support(url_path: str) -> PageSupport | None:
    """Whether the page at url_path works on a remote model, and why (None: the page uses no model)."""
    return PAGE_SUPPORT.get(url_path)
