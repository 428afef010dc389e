"""The server process as operations see it: stopping, several worker processes, traces."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import served
from tests.factories import PASSWORD, unique_email


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "OUTBOX_RELAY_ENABLED": "false",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_FORMAT": "json",
    }


def _wait_for_log(stderr: IO[bytes], event: str) -> None:
    """Read the server's log lines until one is `event` (the server writes it, or exits)."""
    for line in stderr:
        if json.loads(line).get("event", "").startswith(event):
            return
    raise AssertionError(f"the server exited without logging {event!r}")


def test_sigterm_fails_readiness_at_once_while_the_server_keeps_serving(
    env: dict[str, str],
) -> None:
    # Long enough that only the second SIGTERM below ends it.
    with served(env | {"SHUTDOWN_DRAIN_SECONDS": "60"}, stderr=subprocess.PIPE) as server:
        assert server.process.stderr is not None
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/ready").status_code == 200

            server.process.send_signal(signal.SIGTERM)
            _wait_for_log(server.process.stderr, "draining")

            ready = http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["error_code"] == "shutting_down"
            assert ready.headers["retry-after"] == "5"
            # Still alive, and still answering the traffic that reaches it meanwhile.
            assert http.get("/health").status_code == 200
            assert http.get("/api/v1/posts").status_code == 200
        # A second SIGTERM does not wait out the drain.
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == -signal.SIGTERM


def test_a_request_in_flight_at_sigterm_finishes(env: dict[str, str]) -> None:
    body = json.dumps({"email": unique_email(), "password": PASSWORD}).encode()
    with served(env, stderr=subprocess.PIPE) as server:
        assert server.process.stderr is not None
        address = urlsplit(server.url)
        assert address.hostname is not None
        assert address.port is not None
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            head = (
                "POST /api/v1/users HTTP/1.1\r\n"
                f"Host: {address.netloc}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n"
                "Connection: close\r\n\r\n"
            )
            sock.sendall(head.encode())
            # The server says "continue" when the application asks for the body: the
            # request is in the application's hands.
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")

            server.process.send_signal(signal.SIGTERM)
            _wait_for_log(server.process.stderr, "Shutting down")

            sock.sendall(body)
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 201 ")
        assert server.process.wait(timeout=30) == -signal.SIGTERM


def _requests_total(metrics_text: str, handler: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["handler"] == handler
    )


REQUESTS = 40


def _two_workers(env: dict[str, str], tmp_path: Path) -> tuple[list[str], set[str]]:
    """`REQUESTS` requests to a server with two worker processes, then a few scrapes;
    returns the scrapes and the workers' process ids."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file, served(env, "--workers", "2", stderr=log_file) as server:
        for _ in range(REQUESTS):
            # A connection each, so the kernel spreads them over both processes.
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert http.get("/health").status_code == 200
        scrapes = []
        for _ in range(4):
            with httpx.Client(base_url=server.url, timeout=30) as http:
                scrapes.append(http.get("/metrics").text)
        assert server.stop() == 0  # the supervisor exits cleanly after its workers
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    started = [line["event"] for line in log if line["event"].startswith("Started server")]
    return scrapes, {event.rsplit("[", 1)[1].rstrip("]") for event in started}


def test_several_worker_processes_report_their_metrics_together(
    env: dict[str, str], tmp_path: Path
) -> None:
    scrapes, workers = _two_workers(env, tmp_path)

    assert len(workers) == 2
    # Whichever process answered the scrape, it counted every process's requests.
    assert [_requests_total(text, "/health") for text in scrapes] == [REQUESTS] * len(scrapes)


def test_a_configured_metrics_directory_is_used_and_kept(
    env: dict[str, str], tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    scrapes, workers = _two_workers(env | {"PROMETHEUS_MULTIPROC_DIR": str(directory)}, tmp_path)

    assert [_requests_total(text, "/health") for text in scrapes] == [REQUESTS] * len(scrapes)
    # Each worker served some of them and wrote its own count there; the files stay for
    # the operator to manage.
    served_by = {pid: _health_requests(directory / f"counter_{pid}.db") for pid in workers}
    assert all(count > 0 for count in served_by.values()), served_by
    assert sum(served_by.values()) == REQUESTS


def _health_requests(values_file: Path) -> float:
    """The `/health` requests one process counted, read from the file it writes."""
    entries = MmapedDict.read_all_values_from_file(str(values_file))  # type: ignore[no-untyped-call]  # untyped upstream
    return sum(
        float(value)
        for key, value, _timestamp, _position in entries
        if json.loads(key)[1] == "http_requests_total" and '"/health"' in key
    )


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps every export request it is sent."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Collector", (_Collector,), {"received": received})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http_server:
        thread = threading.Thread(target=http_server.serve_forever)
        thread.start()
        host, port = http_server.server_address[:2]
        yield f"http://{host!s}:{port}", received
        http_server.shutdown()
        thread.join()


def test_traces_are_exported_over_otlp_when_an_endpoint_is_set(
    env: dict[str, str], collector: tuple[str, list[ExportTraceServiceRequest]]
) -> None:
    endpoint, received = collector
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "e2e-service"}
    with served(env | otel) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/api/v1/posts").status_code == 200
            assert http.get("/health").status_code == 200
        # Spans still buffered are exported when the application stops.
        assert server.stop() == -signal.SIGTERM

    spans = [
        (resource_spans.resource, span)
        for request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    ((resource, request_span),) = [(r, s) for r, s in spans if s.name == "GET /api/v1/posts"]
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "e2e-service"
    in_trace = [s.name for _, s in spans if s.trace_id == request_span.trace_id]
    assert any(name.startswith("SELECT") for name in in_trace)  # the request's SQL
    assert not any("/health" in s.name for _, s in spans)  # probes are not traced
