"""The remote path, with no network: a stand-in NDIF server on 127.0.0.1 that speaks the protocol
nnsight's client uses (POST /request, GET /response/<id>, the result download, /status, /whoami) and
really runs the requests it is sent, by deserializing them as NDIF does and executing them on a tiny
model. So these tests cover what travels (the serialized trace and its saved values), not a mock of
it: the numbers that come back must equal a local run's.

Also covered: a timeout, a cancel, a refusal (HTTP 503), a bad key (HTTP 401 and /whoami), a job
that fails on the server, the model list (parsed, cached, never fetched without a key), and the
request log (prompts, seconds, bytes each way)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import linecache
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from core.models import remote as rm

VALID_KEY = "good-key"
REPO = "lab-tests/tiny-gpt2"


class FakeNDIF:
    """A local NDIF stand-in. mode: "run" (execute requests), "slow" (accept, never finish),
    "refuse" (HTTP 503 on submit), "fail" (the job errors on the server)."""

    def __init__(self, models: dict | None = None, mode: str = "run"):
        self.models = models or {}  # repo id -> server-side nnsight model (a TransformersModel)
        self.mode = mode
        self.jobs: dict[str, dict] = {}
        self.requests = 0
        self.status_calls = 0
        self.last_form: dict = {}
        self.deployments = {repo: {"repo_id": repo, "deployment_level": "HOT",
                                   "application_state": "RUNNING", "model_key": repo}
                            for repo in self.models}
        self._run_lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, code: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/status":
                    fake.status_calls += 1
                    return self._json(200, {"deployments": fake.deployments})
                if self.path == "/whoami":
                    ok = self.headers.get("ndif-api-key") == VALID_KEY
                    return self._json(200, {"email": "learner@example.org" if ok else None, "tags": []})
                if self.path.startswith("/response/"):
                    job = fake.jobs.get(self.path.rsplit("/", 1)[-1])
                    if job is None:
                        return self._json(404, {"detail": "no such job"})
                    return self._json(200, job["response"])
                if self.path.startswith("/result/"):
                    blob = fake.jobs[self.path.rsplit("/", 1)[-1]]["blob"]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    self.wfile.write(blob)
                    return None
                return self._json(404, {"detail": "unknown path"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if self.headers.get("ndif-api-key") != VALID_KEY:
                    return self._json(401, {"detail": "Invalid API key."})
                if fake.mode == "refuse":
                    return self._json(503, {"detail": "At capacity; try again later."})
                fake.requests += 1
                form = fake._form(self.headers.get("Content-Type"), body)
                fake.last_form = form
                job_id = uuid.uuid4().hex
                fake.jobs[job_id] = {"response": {"id": job_id, "status": "QUEUED"}}
                if fake.mode == "run":
                    fake._run(job_id, json.loads(form["data"]), form["blob"], self.server.server_address)
                elif fake.mode == "fail":
                    fake.jobs[job_id]["response"] = {"id": job_id, "status": "ERROR",
                                                     "description": "CUDA out of memory (fake)"}
                return self._json(200, {"id": job_id, "status": "RECEIVED"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _form(content_type: str, body: bytes) -> dict:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in message.iter_parts()}

    def _run(self, job_id: str, meta: dict, blob: bytes, address) -> None:
        """Deserialize the trace against the server's model and run it, as NDIF does."""
        import zstandard
        from nnsight.schema.request import RequestModel
        from nnsight.tracing.tracer import dec, inc

        repo = json.loads(meta["model_key"].split(":", 1)[1])["repo_id"]
        server = self.models[repo]
        with self._run_lock:
            saved_lines = dict(linecache.cache)  # deserialize registers the block's source there
            try:
                server._remoteable_set_env(meta.get("env"))
                tracer = RequestModel.deserialize(blob, server._remoteable_persistent_objects(),
                                                  compress=meta.get("compress", False))
            finally:
                linecache.cache.clear()
                linecache.cache.update(saved_lines)

            class Pushed(dict):
                got: dict = {}

                def update(self, other):
                    type(self).got = dict(other)
                    super().update(other)

            tracer.info.frame.f_locals = Pushed(tracer.info.frame.f_locals)
            inc()
            try:
                tracer.execute(tracer.info.code)
            finally:
                dec()
            buffer = io.BytesIO()
            torch.save(Pushed.got, buffer, pickle_protocol=4)
        data = buffer.getvalue()
        if meta.get("compress"):
            data = zstandard.ZstdCompressor(level=6).compress(data)
        self.jobs[job_id]["blob"] = data
        self.jobs[job_id]["response"] = {"id": job_id, "status": "COMPLETED",
                                         "data": f"http://{address[0]}:{address[1]}/result/{job_id}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2_dir(tiny_model_dir):
    return tiny_model_dir("gpt2")


@pytest.fixture(scope="module")
def server_model(gpt2_dir):
    from core.models.nnsight_backend import NNsightLM

    return NNsightLM.local(gpt2_dir)._envoy


_SERVERS: list[FakeNDIF] = []


@pytest.fixture()
def ndif(server_model):
    fake = FakeNDIF({REPO: server_model})
    _SERVERS.append(fake)
    rm.forget_listing()
    yield fake
    fake.close()
    rm.forget_listing()


def _connect(fake, gpt2_dir, key=VALID_KEY, **kw):
    from core.models.nnsight_backend import connect

    return connect(REPO, key_source=lambda: key, host=fake.url, folder=str(gpt2_dir), **kw)


@pytest.fixture()
def remote_lm(ndif, gpt2_dir):
    return _connect(ndif, gpt2_dir)


@pytest.fixture(scope="module")
def local_lm(gpt2_dir):
    from core.models import load_model

    return load_model(str(gpt2_dir))


TOKENS = torch.tensor([[0, 3, 4, 5, 6, 7], [0, 9, 15, 10, 12, 11]])


# -- the key ----------------------------------------------------------------------------------------
def test_key_comes_from_secrets_then_environment(monkeypatch):
    monkeypatch.delenv(rm.KEY_NAME, raising=False)
    assert rm.api_key(None) is None
    assert rm.api_key({rm.KEY_NAME: "  from-secrets "}) == "from-secrets"
    monkeypatch.setenv(rm.KEY_NAME, "from-env")
    assert rm.api_key({rm.KEY_NAME: "from-secrets"}) == "from-secrets"
    assert rm.api_key({}) == "from-env"

    class Broken:  # st.secrets raises when no secrets file exists
        def get(self, key):
            raise FileNotFoundError("no secrets.toml")

    assert rm.api_key(Broken()) == "from-env"


# -- the model list ---------------------------------------------------------------------------------
def test_no_key_means_no_network_and_an_explanation(ndif):
    listing = rm.list_models(None, url=ndif.url)
    assert not listing.has_key and not listing.reachable and listing.models == ()
    assert "login.ndif.us" in listing.message and rm.KEY_NAME in listing.message
    assert ndif.status_calls == 0


def test_listing_parses_deployed_models_and_is_cached(ndif):
    ndif.deployments["meta-llama/Llama-3.1-8B"] = {
        "repo_id": "meta-llama/Llama-3.1-8B", "deployment_level": "WARM", "application_state": "DEPLOYING"}
    ndif.deployments["cold/model"] = {"repo_id": "cold/model", "deployment_level": "COLD",
                                      "application_state": "NOT_STARTED"}
    listing = rm.list_models(VALID_KEY, url=ndif.url)
    assert listing.reachable and [m.repo_id for m in listing.models] == [REPO, "meta-llama/Llama-3.1-8B"]
    assert listing.find(REPO).ready and not listing.find("meta-llama/Llama-3.1-8B").ready
    assert listing.find("cold/model") is None  # downloaded only, not served
    rm.list_models(VALID_KEY, url=ndif.url)
    assert ndif.status_calls == 1  # the second answer came from the cache


def test_parse_status_keeps_the_healthiest_replica_and_ignores_junk():
    data = {"deployments": {
        "a1": {"repo_id": "org/a", "deployment_level": "WARM", "application_state": "DEPLOYING"},
        "a2": {"repo_id": "org/a", "deployment_level": "HOT", "application_state": "RUNNING"},
        "bad": "not a dict", "b": {"deployment_level": "HOT", "application_state": "RUNNING"}}}
    models = rm.parse_status(data)
    assert [(m.repo_id, m.level, m.state) for m in models] == [("b", "HOT", "RUNNING"),
                                                               ("org/a", "HOT", "RUNNING")]
    assert rm.parse_status({"deployments": ["x"]}) == ()


def test_unreachable_service_gives_a_clear_message_quickly():
    rm.forget_listing()
    t0 = time.perf_counter()
    listing = rm.list_models(VALID_KEY, url="http://127.0.0.1:9", timeout=1.0)  # closed port
    assert time.perf_counter() - t0 < 5
    assert listing.has_key and not listing.reachable and "cannot be reached" in listing.message
    rm.forget_listing()


# -- connecting: every failure keeps the model in use (RemoteModelError is a ModelLoadError) --------
def test_bad_key_is_refused_at_connect_with_a_clear_message(ndif, gpt2_dir):
    from core.models import ModelLoadError

    with pytest.raises(ModelLoadError, match="does not recognise the API key"):
        _connect(ndif, gpt2_dir, key="wrong")
    with pytest.raises(ModelLoadError, match="login.ndif.us"):
        _connect(ndif, gpt2_dir, key=None)


def test_a_model_ndif_does_not_serve_is_refused(ndif, gpt2_dir):
    from core.models.nnsight_backend import connect

    with pytest.raises(rm.RemoteModelError, match="does not serve"):
        connect("org/not-served", key_source=lambda: VALID_KEY, host=ndif.url, folder=str(gpt2_dir))


def test_unreachable_ndif_is_refused_at_connect(gpt2_dir):
    from core.models.nnsight_backend import connect

    rm.forget_listing()
    with pytest.raises(rm.RemoteModelError, match="cannot be reached"):
        connect(REPO, key_source=lambda: VALID_KEY, host="http://127.0.0.1:9", folder=str(gpt2_dir))
    rm.forget_listing()


# -- requests that go through ------------------------------------------------------------------------
def test_remote_trace_equals_the_local_model_and_moves_kilobytes(remote_lm, local_lm):
    names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z"]
    log = rm.RequestLog()
    with rm.use_log(log):
        logits, cache = remote_lm.run_with_cache(TOKENS, names=names)
    ref_logits, ref = local_lm.run_with_cache(TOKENS, names=names)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    for n in names:
        torch.testing.assert_close(cache[n], ref[n], atol=1e-5, rtol=0)
    (record,) = log.records()
    assert record.where == "NDIF" and record.status == "ok" and record.n_rows == 2
    import zstandard

    sent = zstandard.ZstdDecompressor().decompress(remote_lm_last_blob(remote_lm))
    assert VALID_KEY.encode() not in sent  # the key travels in a header only, never in the payload
    assert len(sent) > 1000
    assert record.prompts[0] == local_lm.to_string(TOKENS[0])
    assert 0 < record.bytes_sent < 64_000 and 0 < record.bytes_received < 64_000
    assert record.seconds > 0 and set(names) <= set(record.asked)


def test_remote_steered_generation_equals_local(remote_lm, local_lm):
    from core.models.backend import Write
    from core.models.generation import SamplingSettings, generate_batch

    push = Write("blocks.0.hook_resid_post", torch.linspace(-2, 2, 32), start_pos=7)  # from the 2nd new token
    settings = SamplingSettings(max_new_tokens=6, temperature=0.8, top_k=10, seed=5)
    with remote_lm.hooks([push]):
        got = remote_lm.generate_batch(TOKENS, settings, seeds=[1, 2])
    with local_lm.hooks([(push.name, push)]):
        ref = generate_batch(local_lm, TOKENS, settings, seeds=[1, 2])
    assert torch.equal(got.tokens, ref.tokens) and torch.equal(got.lengths, ref.lengths)


def test_remote_attribution_and_lens_equal_local(remote_lm, local_lm):
    from core.models.backend import attribution_scores, lens_logits

    corrupt = TOKENS.clone()
    corrupt[:, 2] = 20
    names = ["blocks.0.hook_attn_out", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post"]
    got = attribution_scores(remote_lm, TOKENS, corrupt, names, [5, 6], [7, 8])
    ref = attribution_scores(local_lm, TOKENS, corrupt, names, [5, 6], [7, 8])
    for n in names:
        torch.testing.assert_close(got.estimates[n], ref.estimates[n], atol=1e-5, rtol=0)
    assert float(got.estimates[names[1]].abs().sum()) > 0
    lens_r, lens_l = lens_logits(remote_lm, TOKENS, [-1, 0, 1]), lens_logits(local_lm, TOKENS, [-1, 0, 1])
    assert torch.equal(lens_r.ids, lens_l.ids)
    torch.testing.assert_close(lens_r.logits, lens_l.logits, atol=1e-5, rtol=0)


def test_python_hook_functions_are_refused_for_remote_models(remote_lm):
    with pytest.raises(rm.NotRemotable, match="as data"):
        with remote_lm.hooks([("blocks.0.hook_resid_post", lambda act, hook: act * 2)]):
            pass
    with pytest.raises(rm.NotRemotable, match="weights"):
        remote_lm.unembed(torch.zeros(32))


# -- requests that do not ----------------------------------------------------------------------------
def test_timeout_gives_a_clear_message_and_is_logged(ndif, gpt2_dir):
    lm = _connect(ndif, gpt2_dir, timeout_s=0.6)
    ndif.mode = "slow"
    log = rm.RequestLog()
    t0 = time.perf_counter()
    with rm.use_log(log), pytest.raises(rm.RequestTimeout, match="did not answer within 0.6 s"):
        lm.run_with_cache(TOKENS, names=["blocks.0.hook_resid_post"])
    assert time.perf_counter() - t0 < 5
    assert [r.status for r in log.records()] == ["timeout"]


def test_cancel_stops_waiting(ndif, gpt2_dir):
    lm = _connect(ndif, gpt2_dir)
    ndif.mode = "slow"
    cancel = threading.Event()
    seen = []

    def progress(elapsed):
        seen.append(elapsed)
        if elapsed > 0.3:
            cancel.set()

    with pytest.raises(rm.RequestCancelled, match="cancelled"):
        lm.run(TOKENS, {"blocks.0.hook_resid_post": ("all",)}, cancel=cancel, progress=progress)
    assert seen and max(seen) < 3


def test_refusal_and_bad_key_and_failed_job_are_explained(ndif, gpt2_dir):
    lm = _connect(ndif, gpt2_dir)
    ndif.mode = "refuse"
    with pytest.raises(rm.RequestRefused, match="HTTP 503.*At capacity"):
        lm.forward(TOKENS)
    ndif.mode = "fail"
    with pytest.raises(rm.JobFailed, match="CUDA out of memory"):
        lm.forward(TOKENS)
    ndif.mode = "run"
    revoked = _connect(ndif, gpt2_dir)
    revoked._key_source = lambda: "revoked"
    with pytest.raises(rm.BadKey, match="does not recognise the API key"):
        revoked.forward(TOKENS)
    assert lm.forward(TOKENS).shape == (2, 6, 64)  # the model still works after the failures


def test_request_log_is_per_thread_and_bounded():
    log, other = rm.RequestLog(maxlen=3), rm.RequestLog()
    rec = rm.RequestRecord("m", "trace", "NDIF", ("p",), 1, 2, (), 0.0, 0.1, 10, 20, "ok")
    with rm.use_log(log):
        for _ in range(5):
            rm.record(rec)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(rm.current_log()))
        thread.start()
        thread.join()
    assert len(log) == 3 and len(other) == 0 and seen == [None] and rm.current_log() is None
    assert rm.shown_prompts(["x" * 400] + ["y"] * 9)[0].endswith("...")
    assert rm.shown_prompts(["y"] * 10)[-1] == "... and 2 more"


def test_page_support_table_names_real_pages_and_says_why():
    from ui.common.registry import TOPICS

    paths = {t.url_path for t in TOPICS}
    assert set(rm.PAGE_SUPPORT) <= paths
    assert {p for p, s in rm.PAGE_SUPPORT.items() if s.remote} == {"residual", "attention", "steering",
                                                                   "patching"}
    assert rm.page_support("lora").status == "local" and "weights" in rm.page_support("lora").reason
    assert rm.page_support("sae").status == "local"
    assert all(len(s.reason) > 40 for s in rm.PAGE_SUPPORT.values())
    assert rm.page_support("xor") is None


def test_direct_logit_attribution_adds_up_from_kilobytes_of_remote_reads(remote_lm, local_lm):
    """The pieces a remote DLA needs (readout weights, per-head projections, a few stream vectors)
    sum to the model's own logit difference, as core.interp.residual.dla's decomposition says."""
    from core.models.backend import head_projections, read_at, readout_weights

    right, wrong, pos = torch.tensor([5, 6]), torch.tensor([7, 8]), torch.tensor([5, 4])
    log = rm.RequestLog()
    with rm.use_log(log):
        w = readout_weights(remote_lm, torch.cat([right, wrong]))
        d = (w.W_U[:, :2] - w.W_U[:, 2:]).T  # [batch, d_model]: W_U[:, right] - W_U[:, wrong] per row
        parts = ["hook_embed", "hook_pos_embed"] + [f"blocks.{L}.hook_mlp_out" for L in range(2)]
        final_name = "blocks.1.hook_resid_post"
        got = read_at(remote_lm, TOKENS, parts + [final_name], pos)
        final = got[final_name].double()
        eps = local_lm.model.config.layer_norm_epsilon
        centred = final - final.mean(-1, keepdim=True)
        scale = (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt()  # the final norm's frozen scale
        gd = (w.ln_weight.double() * d.double())
        w_eff = (gd - gd.mean(-1, keepdim=True)) / scale  # read(v) = v . w_eff
        heads = head_projections(remote_lm, TOKENS, [0, 1], w_eff.float(), pos)  # [layer, batch, head]
        total = heads.double().sum((0, 2))
        total += sum((got[n].double() * w_eff).sum(-1) for n in parts)
        total += (w.b_O.double().sum(0) * w_eff).sum(-1)
        total += (w.ln_bias.double() * d.double()).sum(-1)
        logits = remote_lm.logits_at(TOKENS, pos, torch.stack([right, wrong], 1))
    torch.testing.assert_close(total, (logits[:, 0] - logits[:, 1]).double(), atol=1e-4, rtol=0)
    assert all(r.where == "NDIF" for r in log.records()) and len(log) == 4
    assert max(r.bytes_received for r in log.records()) < 16_000


def remote_lm_last_blob(lm) -> bytes:
    """The last request's payload as the stand-in server received it."""
    return _SERVERS[-1].last_form["blob"]


def test_a_model_whose_config_cannot_be_read_is_refused_quickly(ndif, tmp_path):
    from core.models.nnsight_backend import connect

    t0 = time.perf_counter()
    with pytest.raises(rm.RemoteModelError, match="config and tokenizer of .* could not be read"):
        connect(REPO, key_source=lambda: VALID_KEY, host=ndif.url, folder=str(tmp_path))  # empty folder
    assert time.perf_counter() - t0 < 10


def test_a_family_the_lab_does_not_map_is_refused(ndif, tmp_path):
    from transformers import Qwen2Config

    from core.models.nnsight_backend import connect
    from tests.tiny_models import save_tokenizer

    Qwen2Config(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=32, vocab_size=64).save_pretrained(tmp_path)
    save_tokenizer(tmp_path)
    with pytest.raises(rm.RemoteModelError, match="'qwen2' model; the lab maps hook points for GPT-2"):
        connect(REPO, key_source=lambda: VALID_KEY, host=ndif.url, folder=str(tmp_path))
