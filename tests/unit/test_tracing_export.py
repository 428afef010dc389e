"""The sampler and the exporter wrapper the tracer provider is built with."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.observability.tracing import SAMPLER, ScrubbingExporter


def test_the_sampler_names_its_rule_for_new_traces() -> None:
    description = SAMPLER.get_description()  # type: ignore[no-untyped-call]  # untyped upstream
    assert "root:NoLoneClientSpans" in description


def test_the_scrubbing_exporter_flushes_and_stops_the_one_it_wraps() -> None:
    inner = InMemorySpanExporter()
    exporter = ScrubbingExporter(inner)

    assert exporter.force_flush(timeout_millis=100)
    assert exporter.export([]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert inner.export([]) is SpanExportResult.FAILURE  # stopped
