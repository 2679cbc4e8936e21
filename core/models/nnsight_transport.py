"""One request to NDIF: send a serialized nnsight trace, wait under a timeout and a cancel, and say
what went wrong in words a learner can act on.

nnsight's remote backend posts a trace and blocks until the answer comes. `Submission` splits that
in two: leaving the trace only serializes the request, and `send` posts it and polls from a worker
thread while the caller's thread watches the clock, the cancel event and a progress callback.
`MeasuredLocally` runs a trace here after serializing it as a remote request would be, so the bytes a
request moves can be measured on a local model. `result_bytes` is the size of an answer as the
server sends it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import torch
from nnsight.intervention.backends.display import StatusDisplay
from nnsight.intervention.backends.remote import RemoteBackend, RemoteError
from nnsight.schema.config import CONFIG
from nnsight.schema.request import RequestModel
from nnsight.tracing.backend import Backend

from core.models import remote as rm

POLL_FIRST_S, POLL_MAX_S = 0.2, 1.0  # waiting for a remote job: first poll, then back off to this
WAIT_SLICE_S = 0.1  # how often the waiting thread checks timeout and cancel (and calls progress)


class Submission(RemoteBackend):
    """nnsight's remote backend, split in two: the trace's exit only serializes the request; send()
    posts it and polls for the result from a worker thread, under our timeout and cancel."""

    def __init__(self, model_key: str, host: str, key: str | None, env: dict):
        super().__init__(model_key, host=host, api_key=key, env=env, blocking=False)
        self.display = StatusDisplay(enabled=False, verbose=False)
        self.blob: bytes | None = None
        self.received = 0

    def __call__(self, tracer=None):
        self.blob = self._serialize(tracer)
        return None

    def finalize(self, content: bytes):
        self.received += len(content)
        return super().finalize(content)

    def _run(self, abandon: threading.Event):
        request = RequestModel(model_key=self.model_key, compress=self.compress, env=self.env)
        response = self._post(request, self.blob)
        self.job_id = response.id
        if self.note(response):  # COMPLETED at once (a small job)
            return self.download_result(response.data)
        delay = POLL_FIRST_S
        while not abandon.is_set():
            result = self.poll()
            if result is not None:
                return result
            abandon.wait(delay)
            delay = min(delay * 1.5, POLL_MAX_S)
        return None

    def send(self, timeout_s: float, cancel: threading.Event | None,
             progress: Callable[[float], None] | None) -> dict:
        outcome: dict = {}
        done, abandon = threading.Event(), threading.Event()

        def work():
            try:
                outcome["result"] = self._run(abandon)
            except BaseException as err:  # handed to the waiting thread
                outcome["error"] = err
            finally:
                done.set()

        threading.Thread(target=work, name="ndif-request", daemon=True).start()
        start = time.monotonic()
        try:
            while not done.wait(WAIT_SLICE_S):
                elapsed = time.monotonic() - start
                if cancel is not None and cancel.is_set():
                    raise rm.RequestCancelled("The request was cancelled. NDIF may still finish it; "
                                              "its answer is thrown away.")
                if elapsed > timeout_s:
                    raise rm.RequestTimeout(
                        f"NDIF did not answer within {timeout_s:g} s (queue wait included), so the "
                        "request was abandoned. The service may be busy: try again, or ask for less "
                        "(fewer prompts, layers or tokens).")
                if progress is not None:
                    progress(elapsed)
        finally:
            abandon.set()  # the worker stops polling whatever happened here
        if "error" in outcome:
            raise explain(outcome["error"]) from outcome["error"]
        return outcome["result"]


class MeasuredLocally(Backend):
    """Runs a trace here, after serializing it exactly as a remote request would be: the sizes a
    remote call would move, measured on a local model (NNsightLM.measure = True)."""

    sent = 0

    def __call__(self, tracer):
        from nnsight.ndif import pull_env

        pull_env()
        self.sent = len(RequestModel.serialize(tracer, CONFIG.API.COMPRESS))
        tracer.execute(tracer.info.code)


def explain(err: BaseException) -> rm.RemoteRequestError:
    """An error from nnsight's transport as a sentence a learner can act on."""
    import httpx

    if isinstance(err, rm.RemoteRequestError):
        return err
    cause = err.__cause__ if isinstance(err, RemoteError) and err.__cause__ is not None else err
    if isinstance(cause, httpx.HTTPStatusError):
        code = cause.response.status_code
        detail = str(err).removeprefix("Failed to send request: ")[:300]
        if code in (401, 403):
            return rm.BadKey(rm.bad_key_message(code) + f" NDIF said: {detail}")
        if code == 429:
            return rm.RequestRefused(f"NDIF is limiting requests from this key (HTTP 429): {detail}. Wait "
                                     "a minute and try again.")
        return rm.RequestRefused(f"NDIF refused the request (HTTP {code}): {detail}")
    if isinstance(cause, (httpx.TransportError, OSError)):
        return rm.RequestRefused(rm.unreachable_message(cause))
    if isinstance(err, RemoteError):
        return rm.JobFailed(f"NDIF ran the request and it failed there: {str(err)[:500]}")
    return rm.JobFailed(f"The request failed ({type(err).__name__}: {str(err)[:300]}).")


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in obj (nested dicts, tuples and lists), as held in memory."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def result_bytes(result: dict) -> int:
    """How many bytes a result takes as the server sends it (torch.save, zstd-compressed)."""
    import zstandard

    buffer = io.BytesIO()
    torch.save(result, buffer, pickle_protocol=4)
    return len(zstandard.ZstdCompressor(level=6).compress(buffer.getvalue()))
