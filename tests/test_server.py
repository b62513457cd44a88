"""The REST server: every endpoint and every error in process (httpx), micro-batching, and the real command."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from bertclf import BertclfError, TextClassifier
from bertclf.serving import ServeSettings, create_app
from bertclf.serving.batcher import Batcher
from bertclf.serving.monitoring import ServerMetrics
from tests.helpers import assert_one_line_error, free_port, make_multilabel_texts, make_texts, run_cli

SETTINGS = ServeSettings(max_texts_per_request=4, max_text_chars=200, max_body_bytes=2000, max_concurrent_requests=8)


@pytest.fixture(scope="module")
def classifier(tiny_model):
    options = {"model": tiny_model, "epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "seed": 7}
    return TextClassifier(**options).fit(make_texts(90, seed=1), val=make_texts(30, seed=2))


@pytest.fixture(scope="module")
def multilabel_classifier(tiny_model):
    options = {"model": tiny_model, "epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "seed": 7,
               "task": "multilabel"}
    return TextClassifier(**options).fit(make_multilabel_texts(90, seed=1), val=make_multilabel_texts(30, seed=2))


@pytest.fixture
def client(classifier):
    with TestClient(create_app(classifier, SETTINGS)) as client:
        yield client


def test_predict_answers_each_text_in_order_as_offline_predict(client, classifier):
    texts = make_texts(4, seed=5)["text"].tolist()
    answer = client.post("/predict", json={"texts": texts})
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    assert all(set(p) == {"label", "probabilities"} for p in predictions)
    assert [p["label"] for p in predictions] == classifier.predict(texts)
    offline = classifier.predict_proba(texts)
    for row, prediction in zip(offline, predictions, strict=True):
        assert [prediction["probabilities"][str(c)] for c in classifier.classes_] == pytest.approx(row.tolist(),
                                                                                                 abs=1e-5)
    one = client.post("/predict", json={"text": texts[0], "top_k": 1}).json()["predictions"]
    assert len(one) == 1 and list(one[0]["probabilities"]) == [one[0]["label"]]


def test_health_ready_info_metrics_and_docs(client, classifier):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    info = client.get("/info").json()
    assert info["task"] == "multiclass" and info["labels"] == classifier.classes_ and info["runtime"] == "torch"
    assert info["max_length"] == classifier.max_length_ and "version" in info
    client.post("/predict", json={"texts": ["a", "b"]})
    client.post("/predict", json={"texts": []})
    metrics = client.get("/metrics").text
    for name in ('bertclf_requests_total{status="200"}', 'bertclf_requests_total{status="422"}',
                 "bertclf_request_seconds_bucket", "bertclf_batch_texts_bucket", "bertclf_queue_texts",
                 "bertclf_texts_total"):
        assert name in metrics
    openapi = client.get("/openapi.json").json()
    answers = openapi["paths"]["/predict"]["post"]["responses"]
    assert answers["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictResponse"}
    assert {"400", "413", "422", "503"} <= set(answers) and "Prediction" in openapi["components"]["schemas"]
    assert client.get("/docs").status_code == 200


BAD_REQUESTS = {
    "malformed_json": ({"content": b'{"texts": ["a"', "headers": {"content-type": "application/json"}}, 400,
                       "malformed JSON"),
    "not_an_object": ({"json": ["a", "b"]}, 422, "body"),
    "texts_not_a_list": ({"json": {"texts": "one text"}}, 422, "texts"),
    "text_not_a_string": ({"json": {"texts": ["fine", 3]}}, 422, "texts.1"),
    "text_is_null": ({"json": {"text": None}}, 422, "either 'texts'"),
    "both_text_and_texts": ({"json": {"text": "a", "texts": ["b"]}}, 422, "either 'texts'"),
    "neither": ({"json": {"top_k": 2}}, 422, "either 'texts'"),
    "empty_list": ({"json": {"texts": []}}, 422, "the list is empty"),
    "too_many_texts": ({"json": {"texts": ["a"] * 5}}, 413, "over the limit of 4 per request"),
    "text_too_long": ({"json": {"texts": ["a", "b" * 201]}}, 413, "texts.1: 201 characters"),
    "body_too_large": ({"content": json.dumps({"texts": ["a" * 150] * 20}).encode(),
                        "headers": {"content-type": "application/json"}}, 413, "body over 2000 bytes"),
    "chunked_body_too_large": ({"content": iter([b'{"texts": ["' + b"a" * 1500, b"a" * 1500 + b'"]}']),
                                "headers": {"content-type": "application/json"}}, 413, "body over 2000 bytes"),
    "not_json_at_all": ({"content": b"texts=a"}, 400, "malformed JSON"),
    "top_k_zero": ({"json": {"texts": ["a"], "top_k": 0}}, 422, "top_k"),
    "threshold_out_of_range": ({"json": {"texts": ["a"], "threshold": 1.5}}, 422, "threshold"),
    "threshold_on_multiclass": ({"json": {"texts": ["a"], "threshold": 0.3}}, 422, "multilabel models only"),
    "wrong_method": ({"method": "GET"}, 405, "Method Not Allowed"),
    "lone_surrogate_escaped": ({"content": b'{"texts": ["fine", "\\ud800"]}', "headers": {"content-type":
                                "application/json"}}, 400, "texts.1: not Unicode text (a lone surrogate '\\ud800')"),
    "lone_surrogate_as_bytes": ({"content": b'{"text": "a\xed\xa0\x80"}', "headers": {"content-type":
                                 "application/json"}}, 400, "text: not Unicode text (a lone surrogate '\\ud800')"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_the_right_4xx_and_the_server_stays_up(client, case):
    request, status, fragment = BAD_REQUESTS[case]
    options = {name: value for name, value in request.items() if name != "method"}
    answer = client.request(request.get("method", "POST"), "/predict", **options)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]
    assert f'bertclf_requests_total{{status="{status}"}}' in client.get("/metrics").text
    assert client.get("/health").status_code == 200
    assert client.post("/predict", json={"text": "still fine"}).status_code == 200


def test_deeply_nested_json_is_a_400_counted_in_the_metrics(classifier):
    depth = 5000
    with TestClient(create_app(classifier, ServeSettings(max_body_bytes=100_000))) as client:
        answer = client.post("/predict", content=b'{"texts": ' + b"[" * depth + b"]" * depth + b"}",
                             headers={"content-type": "application/json"})
        assert answer.status_code == 400 and answer.json() == {"error": "malformed JSON: nested too deeply"}
        assert 'bertclf_requests_total{status="400"}' in client.get("/metrics").text


def test_every_error_is_json_with_an_error_field_even_an_unexpected_one(client, classifier, monkeypatch):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    wrong = client.put("/health")
    assert wrong.status_code == 405 and wrong.json() == {"error": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET"

    def broken(texts):
        raise RuntimeError("the tokenizer broke")

    monkeypatch.setattr(classifier, "encode", broken)
    answer = client.post("/predict", json={"text": "soup"})
    assert answer.status_code == 500 and answer.json() == {"error": "internal error: the tokenizer broke"}
    assert 'bertclf_requests_total{status="500"}' in client.get("/metrics").text


def test_the_warm_up_does_not_wait_for_batch_companions(classifier):
    started = time.perf_counter()
    with TestClient(create_app(classifier, ServeSettings(max_wait_ms=10_000))) as client:
        assert client.get("/ready").json() == {"status": "ready"}
        assert time.perf_counter() - started < 5


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 60_000, -1])
def test_a_batching_wait_that_is_not_finite_or_too_long_is_refused_at_startup(value, tmp_path):
    with pytest.raises(BertclfError, match=r"max_wait_ms \(--max-wait-ms\) must be a number of milliseconds from "
                                           r"0 to 10000"):
        ServeSettings(max_wait_ms=value)
    if value in (float("inf"), 60_000):  # the command's own type refuses NaN and negative numbers
        code, _, err = run_cli(["serve", tmp_path / "no-run", "--max-wait-ms", str(value)])  # before the model loads
        assert_one_line_error(code, err, f"(--max-wait-ms) must be a number of milliseconds from 0 to 10000, got "
                                         f"{float(value)}")


def test_multilabel_answers_apply_the_saved_or_the_requested_threshold(multilabel_classifier):
    with TestClient(create_app(multilabel_classifier, SETTINGS)) as client:
        texts = make_multilabel_texts(4, seed=5)["text"].tolist()
        saved = client.post("/predict", json={"texts": texts}).json()["predictions"]
        assert all(set(p) == {"labels", "probabilities"} for p in saved)
        assert [tuple(p["labels"]) for p in saved] == multilabel_classifier.predict(texts)
        everything = client.post("/predict", json={"texts": texts, "threshold": 0.01}).json()["predictions"]
        assert all(p["labels"] == multilabel_classifier.classes_ for p in everything)


async def concurrent_requests(classifier, settings, count):
    app = create_app(classifier, settings)
    texts = make_texts(count * 3, seed=6)["text"].tolist()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.post("/predict", json={"texts": texts[i * 3:(i + 1) * 3]})
                                             for i in range(count)))
            metrics = (await client.get("/metrics")).text
    return texts, answers, metrics


def batch_count(metrics):
    line = next(line for line in metrics.splitlines() if line.startswith("bertclf_batch_texts_count"))
    return float(line.split()[-1])


def test_concurrent_requests_share_model_calls_and_get_their_own_rows(classifier):
    settings = ServeSettings(max_wait_ms=50, max_batch_size=64)
    texts, answers, metrics = asyncio.run(concurrent_requests(classifier, settings, 12))
    labels = [p["label"] for answer in answers for p in answer.json()["predictions"]]
    assert labels == classifier.predict(texts)
    assert batch_count(metrics) < 1 + 12  # the warm-up call plus fewer calls than requests
    _, _, unbatched = asyncio.run(concurrent_requests(classifier, ServeSettings(max_batch_size=1), 12))
    assert batch_count(unbatched) == 1 + 12


def test_requests_beyond_the_concurrency_cap_are_refused_with_retry_after(classifier):
    settings = ServeSettings(max_concurrent_requests=2, max_wait_ms=200)
    _, answers, metrics = asyncio.run(concurrent_requests(classifier, settings, 6))
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused and all(answer.headers["retry-after"] == "1" for answer in refused)
    assert sum(answer.status_code == 200 for answer in answers) >= 2
    assert 'bertclf_requests_total{status="503"}' in metrics


def test_texts_are_tokenized_in_the_model_worker_off_the_event_loop(classifier, monkeypatch):
    threads = []

    def encode(texts):
        threads.append(threading.current_thread().name)
        return TextClassifier.encode(classifier, texts)

    monkeypatch.setattr(classifier, "encode", encode)
    with TestClient(create_app(classifier, SETTINGS)) as client:
        assert client.post("/predict", json={"text": "soup"}).status_code == 200
    assert len(threads) == 2 and all(name.startswith("bertclf-model") for name in threads)  # warm-up and request


def test_a_request_whose_client_went_away_is_left_out_of_the_model_call(classifier):
    async def one_left_while_waiting():
        metrics = ServerMetrics()
        batcher = Batcher(classifier, ServeSettings(max_wait_ms=500), metrics)
        batcher.start()
        try:
            gone = asyncio.ensure_future(batcher.probabilities(["goes away"]))
            kept = asyncio.ensure_future(batcher.probabilities(["stays", "for its answer"]))
            while metrics.registry.get_sample_value("bertclf_queue_texts") < 3:  # both wait for companions
                await asyncio.sleep(0.005)
            gone.cancel()
            return await kept, metrics
        finally:
            await batcher.stop()

    rows, metrics = asyncio.run(one_left_while_waiting())
    assert rows.shape == (2, len(classifier.classes_))
    assert metrics.registry.get_sample_value("bertclf_texts_total") == 2
    assert metrics.registry.get_sample_value("bertclf_batch_texts_count") == 1


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--shutdown-timeout", "7.5"], 7.5)])
def test_requests_in_flight_at_a_stop_are_not_cut_unless_a_shutdown_timeout_is_given(classifier, tmp_path,
                                                                                      monkeypatch, flags, expected):
    import uvicorn

    classifier.save(tmp_path / "run")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # the command ignores stop signals in its own process
    code, _, err = run_cli(["serve", tmp_path / "run", "--port", free_port(), *flags])
    assert code == 0, err
    assert len(calls) == 1 and calls[0]["timeout_graceful_shutdown"] == expected


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "soon"])
def test_a_shutdown_timeout_that_is_not_a_positive_finite_number_is_refused(value, tmp_path):
    code, _, err = run_cli(["serve", tmp_path / "no-run", f"--shutdown-timeout={value}"])
    err = err.replace("bertclf serve: error:", "bertclf: error:")  # argparse names the subcommand
    assert_one_line_error(code, err, f"expected a finite number of seconds above 0, got {value!r}")


@pytest.mark.slow
def test_the_real_command_serves_and_stops_cleanly_on_sigterm(classifier, tmp_path):
    classifier.save(tmp_path / "run")
    port = free_port()
    # A long wait for batch companions keeps a request in flight long enough to send SIGTERM during it.
    command = [sys.executable, "-m", "bertclf", "-q", "serve", str(tmp_path / "run"), "--port", str(port),
               "--max-wait-ms", "1500"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise AssertionError("the server never became ready")
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"texts": ["bread and soup", "goal"]}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"http://127.0.0.1:{port}/predict", json={"text": "soup"}, timeout=30)
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)  # stops accepting, but answers the request in flight
            assert in_flight.result().status_code == 200
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert b"Traceback" not in process.stderr.read()


@pytest.mark.slow
def test_a_port_in_use_is_one_line_before_the_model_loads(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "bertclf", "serve", str(tmp_path / "no-run"), "--port",
                                 str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"bertclf: error: cannot listen on 127.0.0.1:{port}: "
                                                  "Address already in use"]
