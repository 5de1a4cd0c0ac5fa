"""The Hugging Face provider, spoken through the real ``AsyncInferenceClient`` to the fake TGI server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Sequence

import numpy as np
import pytest
from huggingface_hub import ChatCompletionOutput
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

from judgeflow.core.prompts import answer_messages
from judgeflow.protocol.calls import ChatRequest, ErrorDecision, LimitKey
from judgeflow.protocol.messages import ChatMessage
from judgeflow.protocol.models import ChatModel, Embedder
from judgeflow.providers.hf.provider import (
    HFChat,
    HFEmbedder,
    MalformedResponseError,
    classify_hf_error,
    pool_embeddings,
    token_source,
)
from judgeflow.testing.tgi_server import DEFAULT_MODEL_ID, serve_tgi, weak_answer

pytestmark = pytest.mark.anyio

PASSAGES = (
    "The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall.",
    "Gustave Eiffel's company designed and built the tower.",
)
SECRET = "hf_judgeflowTestSecret0123456789"
LLAMA = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture(autouse=True)
def _no_ambient_token(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A developer's own token (environment or `hf auth login` file) must neither be sent to the fake server nor
    # change what these tests see; the live tests are the exception.
    if request.node.get_closest_marker("live") is not None:
        return
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path_factory.mktemp("hf-home") / "token"))


def ask(question: str, passages: Sequence[str] = PASSAGES, *, max_tokens: int | None = 64) -> ChatRequest:
    return ChatRequest(answer_messages(question, passages), temperature=0.0, max_tokens=max_tokens)


async def failing_call(model: HFChat, request: ChatRequest | None = None) -> tuple[Exception, ErrorDecision]:
    with pytest.raises(Exception) as info:  # noqa: PT011 - any SDK error; classify() is what is under test
        await model.complete(request if request is not None else ask("How tall is it?"))
    error = info.value
    assert isinstance(error, Exception)
    return error, model.classify(error)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- chat ------------------------------------------------------------------------------------------------------


async def test_chat_returns_text_usage_and_the_served_model() -> None:
    async with serve_tgi() as server, HFChat(server.base_url) as model:
        result = await model.complete(ask("How many metres tall is the tower?"))
    assert result.text == "It is 330 metres tall."
    assert result.model == DEFAULT_MODEL_ID
    assert result.finish_reason == "eos_token"
    assert result.usage is not None
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens == 6  # "It is 330 metres tall ."
    assert server.requests["chat"] == 1
    sent = server.log[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.authorization is None
    assert sent.body["model"] == "dummy"  # the client's stand-in when it was given only a URL
    assert sent.body["messages"] == [
        {"role": m.role, "content": m.content} for m in ask("How many metres tall is the tower?").messages
    ]
    assert sent.body["max_tokens"] == 64
    assert sent.body["temperature"] == 0.0
    assert sent.body["stream"] is False


async def test_chat_model_satisfies_the_seam_and_names_its_limit_key() -> None:
    async with serve_tgi() as server:
        chat: ChatModel = HFChat(LLAMA, base_url=server.base_url, provider="hf-tgi")
        embedder: Embedder = HFEmbedder("BAAI/bge-small-en-v1.5", base_url=server.base_url)
        assert chat.name == LLAMA
        assert chat.key == LimitKey("hf-tgi", "chat.completions", LLAMA, server.base_url)
        assert embedder.key == LimitKey("hf", "feature-extraction", "BAAI/bge-small-en-v1.5", server.base_url)
        assert HFChat(LLAMA).key.server == "https://router.huggingface.co"  # no URL: the router picks
        assert isinstance(chat, HFChat)
        assert isinstance(embedder, HFEmbedder)
        await chat.aclose()
        await embedder.aclose()


async def test_hub_model_id_with_a_base_url_goes_to_the_url_and_names_the_model() -> None:
    async with serve_tgi() as server:
        for base_url in (server.base_url, server.base_url + "/", server.base_url + "/v1"):
            async with HFChat(LLAMA, base_url=base_url) as model:
                result = await model.complete(ask("Who built the tower?"))
            assert result.text == "Gustave Eiffel's company designed and built the tower."
            assert server.log[-1].path == "/v1/chat/completions"
            assert server.log[-1].body["model"] == LLAMA
    assert server.requests["chat"] == 3
    assert server.requests["unknown"] == 0


async def test_weak_model_says_it_does_not_know_without_overlap() -> None:
    async with serve_tgi() as server, HFChat(server.base_url) as model:
        result = await model.complete(ask("Which river flows through Vienna?"))
    assert result.text == "I don't know."


async def test_max_tokens_cuts_the_reply_with_finish_reason_length() -> None:
    async with serve_tgi() as server, HFChat(server.base_url) as model:
        result = await model.complete(ask("Who built the tower?", max_tokens=3))
    assert result.text == "Gustave Eiffel's company"
    assert result.finish_reason == "length"


async def test_max_tokens_none_is_left_out_of_the_payload() -> None:
    async with serve_tgi() as server, HFChat(server.base_url) as model:
        await model.complete(ask("Who built the tower?", max_tokens=None))
    assert "max_tokens" not in server.log[-1].body


@pytest.mark.parametrize("content", [None, ""])
async def test_empty_or_null_content_is_an_empty_string(content: str | None) -> None:
    async with serve_tgi(reply_fn=lambda messages: content) as server, HFChat(server.base_url) as model:
        result = await model.complete(ChatRequest((ChatMessage("user", "hello"),)))
    assert result.text == ""
    assert result.usage is not None
    assert result.usage.output_tokens == 0


async def test_reply_fn_sees_roles_and_contents() -> None:
    seen: list[list[tuple[str, str]]] = []

    def reply(messages: Sequence[tuple[str, str]]) -> str:
        seen.append(list(messages))
        return "ok"

    request = ChatRequest((ChatMessage("system", "be brief"), ChatMessage("user", "hi")))
    async with serve_tgi(reply_fn=reply) as server, HFChat(server.base_url) as model:
        assert (await model.complete(request)).text == "ok"
    assert seen == [[("system", "be brief"), ("user", "hi")]]


def test_weak_answer_reads_question_lines_and_plain_text() -> None:
    text = "Paris is the capital of France. Berlin is in Germany.\nQuestion: What is the capital of France?"
    assert weak_answer([("user", text)]) == "Paris is the capital of France."
    assert weak_answer([("user", "Question: What is the capital of Peru?")]) == "I don't know."
    assert weak_answer([("system", "Paris is the capital of France."), ("user", "capital of France?")]) == (
        "I don't know."
    )


# -- errors ----------------------------------------------------------------------------------------------------


async def test_429_is_rate_limited_with_retry_after_and_the_next_call_succeeds() -> None:
    async with serve_tgi(fail_first_n=1, status=429, retry_after="3") as server, HFChat(server.base_url) as model:
        error, decision = await failing_call(model)
        result = await model.complete(ask("How tall is it?"))
    assert isinstance(error, HfHubHTTPError)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == 3.0
    assert decision.status == 429
    assert "overloaded" in decision.detail
    assert result.text == "It is 330 metres tall."
    assert server.requests["chat"] == 2
    assert server.failures_served == 1
    assert server.responses == {429: 1, 200: 1}


async def test_429_falls_back_to_the_ietf_ratelimit_header() -> None:
    async with (
        serve_tgi(fail_first_n=1, status=429, retry_after=None, ratelimit_reset_s=7) as server,
        HFChat(server.base_url) as model,
    ):
        _, decision = await failing_call(model)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == 7.0


async def test_429_without_any_hint_has_no_retry_after() -> None:
    async with serve_tgi(fail_first_n=1, status=429, retry_after=None) as server, HFChat(server.base_url) as model:
        _, decision = await failing_call(model)
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s is None


async def test_503_model_loading_means_wait_for_it_with_its_estimated_time() -> None:
    async with (
        serve_tgi(fail_first_n=1, status=503, retry_after=None, estimated_time_s=12.5) as server,
        HFChat(server.base_url) as model,
    ):
        _, decision = await failing_call(model)
    assert decision.kind == "unreachable"  # the server is there (it answered), its model is not yet
    assert decision.status == 503
    assert decision.retry_after_s == 12.5
    assert "currently loading" in decision.detail
    assert decision.detail.endswith("(estimated time 12.5 s)")


async def test_503_retry_after_header_wins_over_estimated_time() -> None:
    async with serve_tgi(fail_first_n=1, status=503, retry_after="2") as server, HFChat(server.base_url) as model:
        _, decision = await failing_call(model)
    assert decision.kind == "unreachable"
    assert decision.retry_after_s == 2.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, "transient"),
        (502, "unreachable"),  # a gateway whose backend is away
        (504, "unreachable"),
        (400, "fatal"),  # this request
        (422, "fatal"),
        (403, "fatal_model"),  # every request to this model here
        (404, "fatal_model"),
    ],
)
async def test_what_each_status_means(status: int, kind: str) -> None:
    async with serve_tgi(fail_first_n=1, status=status) as server, HFChat(server.base_url) as model:
        _, decision = await failing_call(model)
    assert decision.kind == kind
    assert decision.status == status


async def test_a_request_the_server_rejects_is_fatal() -> None:
    async with serve_tgi() as server, HFChat(server.base_url) as model:
        _, decision = await failing_call(model, ask("How tall?", max_tokens=0))
    assert decision.kind == "fatal"
    assert decision.status == 422
    assert "max_tokens" in decision.detail


async def test_a_timeout_means_the_server_is_unreachable() -> None:
    async with serve_tgi(latency_s=5.0) as server, HFChat(server.base_url, timeout_s=0.2) as model:
        error, decision = await failing_call(model)
    assert isinstance(error, InferenceTimeoutError)
    assert decision.kind == "unreachable"
    assert decision.status is None


async def test_a_refused_connection_means_the_server_is_unreachable() -> None:
    async with HFChat(f"http://127.0.0.1:{free_port()}") as model:
        _, decision = await failing_call(model)
    assert decision.kind == "unreachable"
    assert "ConnectError" in decision.detail


def test_other_errors() -> None:
    offline = classify_hf_error(OfflineModeIsEnabled("offline mode is enabled"))
    assert (offline.kind, offline.hint) == ("fatal_model", "HF_HUB_OFFLINE is set")
    assert classify_hf_error(ValueError("You must provide an api_key")).kind == "fatal"
    malformed = classify_hf_error(MalformedResponseError("no choices"))
    assert malformed.kind == "transient"
    assert malformed.detail.startswith("malformed response")
    assert classify_hf_error(json.JSONDecodeError("bad", "{", 0)).kind == "transient"
    assert classify_hf_error(TimeoutError()).kind == "unreachable"


def test_a_malformed_completion_is_a_malformed_response() -> None:
    from judgeflow.providers.hf.provider import _chat_result

    with pytest.raises(MalformedResponseError):
        _chat_result(ChatCompletionOutput.parse_obj_as_instance({"choices": []}), "m")
    with pytest.raises(MalformedResponseError):
        _chat_result(ChatCompletionOutput.parse_obj_as_instance({"model": "m"}), "m")
    ok = _chat_result(
        ChatCompletionOutput.parse_obj_as_instance({"choices": [{"index": 0, "message": {"role": "assistant"}}]}), "m"
    )
    assert (ok.text, ok.model, ok.usage, ok.finish_reason) == ("", "m", None, None)


# -- the token -------------------------------------------------------------------------------------------------


async def test_the_token_is_sent_and_never_shown() -> None:
    async with serve_tgi(api_token=SECRET) as server, HFChat(server.base_url, token=SECRET) as model:
        result = await model.complete(ask("How tall is it?"))
        shown = [repr(model), str(model)]
    assert result.text == "It is 330 metres tall."
    assert server.log[-1].authorization == f"Bearer {SECRET}"
    assert all(SECRET not in text for text in shown)


async def test_the_token_comes_from_hf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    async with serve_tgi(api_token=SECRET) as server, HFChat(LLAMA, base_url=server.base_url) as model:
        await model.complete(ask("How tall is it?"))
        assert SECRET not in repr(model)
    assert server.log[-1].authorization == f"Bearer {SECRET}"


async def test_a_rejected_token_stops_the_model_and_is_scrubbed_even_when_the_server_echoes_it() -> None:
    async with (
        serve_tgi(api_token="hf_theServersOwnToken0000", echo_credentials=True) as server,
        HFChat(server.base_url, token=SECRET) as model,
    ):
        error, decision = await failing_call(model)
    assert server.responses[401] == 1
    assert decision.kind == "fatal_model"
    assert decision.status == 401
    assert decision.hint == "the token passed as token"  # where it came from, never what it is
    assert "Invalid credentials" in decision.detail
    texts = [str(error), repr(error), decision.detail, repr(decision)]
    cause = error.__cause__
    if cause is not None:
        texts += [str(cause), repr(cause)]
    assert all(SECRET not in text for text in texts)


def test_a_rejected_tokens_hint_names_its_source() -> None:
    assert token_source("hf_x", explicit=False) == "the token came from HF_TOKEN"
    assert token_source(None, explicit=False).startswith("HF_TOKEN is not set")


def test_detail_scrubs_token_shaped_text() -> None:
    decision = classify_hf_error(RuntimeError("token hf_abcdefghijklmnop rejected"))
    assert "hf_abcdefghijklmnop" not in decision.detail
    assert "hf_***" in decision.detail


async def test_repr_hides_url_credentials() -> None:
    async with HFChat("https://user:pw@example.invalid/endpoint?token=abc") as model:
        texts = [repr(model), model.name, model.key.model, str(model.url)]
    assert all("pw" not in text and "abc" not in text for text in texts)
    assert model.name == "https://example.invalid/endpoint"


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="already a URL"):
        HFChat("http://127.0.0.1:1", base_url="http://127.0.0.1:2")
    with pytest.raises(ValueError, match="base_url"):
        HFChat(LLAMA, base_url="127.0.0.1:8080")
    with pytest.raises(ValueError, match="timeout_s"):
        HFChat(LLAMA, timeout_s=0)
    with pytest.raises(ValueError, match="batch_size"):
        HFEmbedder(LLAMA, batch_size=0)


async def test_aclose_is_idempotent_and_closes_the_connections() -> None:
    async with serve_tgi() as server:
        model = HFChat(server.base_url)
        await model.complete(ask("How tall is it?"))
        http = model._client._async_client  # the client's connection pool (httpx2)
        assert http is not None

        def closed() -> bool:  # read afresh each time
            return http.is_closed

        assert not closed()
        await model.aclose()
        assert closed()
        await model.aclose()  # a second close is harmless
        assert closed()


# -- embeddings ------------------------------------------------------------------------------------------------

TEXTS = (
    "The Eiffel Tower is in Paris.",
    "Paris has the Eiffel Tower.",
    "Bananas are yellow fruit that grow in bunches.",
)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_embeddings_have_one_vector_per_text_in_order() -> None:
    async with serve_tgi(embedding_dim=48) as server, HFEmbedder(server.base_url, batch_size=2) as embedder:
        vectors = await embedder.embed(TEXTS)
    assert len(vectors) == 3
    assert all(len(v) == 48 for v in vectors)
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-5) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > 0.9
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert server.requests["embed"] == 2
    assert [r.path for r in server.log] == ["/", "/"]
    assert server.log[0].body == {"inputs": list(TEXTS[:2])}
    assert server.log[1].body == {"inputs": list(TEXTS[2:])}


async def test_embeddings_for_a_hub_id_with_a_tei_url_and_normalize() -> None:
    async with (
        serve_tgi() as server,
        HFEmbedder("BAAI/bge-small-en-v1.5", base_url=server.base_url + "/embed", normalize=False) as embedder,
    ):
        vectors = await embedder.embed(["one text"])
        assert await embedder.embed([]) == []
    assert len(vectors) == 1
    assert server.log[-1].path == "/embed"
    assert server.log[-1].body == {"inputs": ["one text"], "normalize": False}


async def test_token_level_embeddings_are_mean_pooled() -> None:
    texts = ["Eiffel tower", "bananas grow in bunches", "Paris"]
    async with serve_tgi(token_level=True) as server, HFEmbedder(server.base_url) as embedder:
        vectors = await embedder.embed(texts)
        # Ragged token vectors cannot be stacked: one rejected batch, then one text per request from then on.
        assert server.requests["embed"] == 1 + len(texts)
        again = await embedder.embed(texts[:2])
        assert server.requests["embed"] == 1 + len(texts) + 2
    async with serve_tgi(token_level=False) as server, HFEmbedder(server.base_url, normalize=False) as embedder:
        sentence = await embedder.embed(texts)
    assert len(vectors) == 3
    assert again == vectors[:2]
    # The fake's sentence vector (normalize=False) is the mean of its token vectors.
    assert np.allclose(vectors, sentence, atol=1e-6)


async def test_embedding_errors_are_classified() -> None:
    async with (
        serve_tgi(fail_first_n=1, status=429, retry_after="4") as server,
        HFEmbedder(server.base_url, token=SECRET) as embedder,
    ):
        with pytest.raises(HfHubHTTPError) as info:
            await embedder.embed(TEXTS)
        decision = embedder.classify(info.value)
        assert len(await embedder.embed(TEXTS)) == 3
    assert decision.kind == "rate_limited"
    assert decision.retry_after_s == 4.0
    assert SECRET not in repr(embedder)


def test_pool_embeddings_shapes() -> None:
    assert pool_embeddings(np.array([1.0, 2.0], dtype="float32"), 1) == [[1.0, 2.0]]
    assert pool_embeddings(np.array([[1.0, 2.0], [3.0, 4.0]]), 2) == [[1.0, 2.0], [3.0, 4.0]]
    tokens = np.array([[[1.0, 0.0], [3.0, 2.0]], [[0.0, 0.0], [2.0, 2.0]]])
    assert pool_embeddings(tokens, 2) == [[2.0, 1.0], [1.0, 1.0]]
    with pytest.raises(MalformedResponseError, match="single vector"):
        pool_embeddings(np.array([1.0, 2.0]), 2)
    with pytest.raises(MalformedResponseError, match="asked for 3"):
        pool_embeddings(np.zeros((2, 4)), 3)
    with pytest.raises(MalformedResponseError, match="shape"):
        pool_embeddings(np.zeros((1, 1, 1, 1)), 1)
    with pytest.raises(MalformedResponseError, match="no token vectors"):
        pool_embeddings(np.zeros((1, 0, 4)), 1)


# -- live ------------------------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN")
async def test_live_chat_with_a_small_real_model() -> None:
    model_id = os.environ.get("JUDGEFLOW_HF_LIVE_MODEL", "meta-llama/Llama-3.1-8B-Instruct")
    async with HFChat(model_id, timeout_s=60.0) as model:
        result = await model.complete(ask("How tall is the tower?", max_tokens=32))
    assert result.text.strip()
    assert result.usage is not None
    assert result.usage.output_tokens > 0
    assert os.environ["HF_TOKEN"] not in repr(model)
