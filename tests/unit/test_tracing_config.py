"""Tracing configuration from the standard OTEL_* variables, and root-span pre-sampling.

Nothing here exports a span: tracings are shut down empty, and every OTLP endpoint is a
loopback address.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import signaling.telemetry.tracing
from signaling.telemetry.tracing import DEFAULT_RATIO, Tracing, sampling_ratio, traceparent_of

LOOPBACK = "http://127.0.0.1:14318"


class RecordingProcessor(BatchSpanProcessor):
    """The real batch processor, remembering which exporter ``from_env`` chose."""

    made: list[RecordingProcessor] = []  # noqa: RUF012 - reset per test by the fixture

    def __init__(self, exporter: SpanExporter, *args: Any, **kwargs: Any) -> None:
        super().__init__(exporter, *args, **kwargs)
        self.exporter = exporter
        RecordingProcessor.made.append(self)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Tracing]]:
    """No OTEL_* from the outer environment; record processors; shut tracings down."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(signaling.telemetry.tracing, "BatchSpanProcessor", RecordingProcessor)
    RecordingProcessor.made = []
    created: list[Tracing] = []
    yield created
    for tracing in created:
        tracing.shutdown()


def make(env: dict[str, str], created: list[Tracing]) -> Tracing:
    tracing = Tracing.from_env(env)
    created.append(tracing)
    return tracing


def exporter_of(tracing: Tracing) -> SpanExporter:
    assert tracing.tracer is not None and tracing.provider is not None
    (processor,) = RecordingProcessor.made
    return processor.exporter


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": " NONE ", "OTEL_EXPORTER_OTLP_ENDPOINT": LOOPBACK},
        {"OTEL_TRACES_EXPORTER": "zipkin"},  # unsupported: off, not a crash
        {"OTEL_TRACES_SAMPLER": "always_on"},  # a sampler alone exports nowhere
    ],
)
def test_disabled(env: dict[str, str], clean_env: list[Tracing]) -> None:
    tracing = make(env, clean_env)
    assert tracing.tracer is None and tracing.provider is None
    assert tracing.start("signal.relay", 0.0, None, {}) is None
    assert tracing.start("signal.relay", 0.0, "00-" + "1" * 32 + "-" + "2" * 16 + "-01", {}) is None
    assert RecordingProcessor.made == []


def test_console(clean_env: list[Tracing]) -> None:
    tracing = make({"OTEL_TRACES_EXPORTER": "console"}, clean_env)
    assert isinstance(exporter_of(tracing), ConsoleSpanExporter)
    assert tracing.ratio == DEFAULT_RATIO


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": LOOPBACK},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": LOOPBACK + "/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": LOOPBACK},
    ],
)
def test_otlp_when_an_endpoint_is_set(
    env: dict[str, str], clean_env: list[Tracing], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OTLP exporter reads os.environ itself, so the process environment says the same.
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    tracing = make(env, clean_env)
    exporter = exporter_of(tracing)
    assert isinstance(exporter, OTLPSpanExporter)
    assert getattr(exporter, "_endpoint", None) == LOOPBACK + "/v1/traces"


def test_otlp_endpoint_comes_from_the_given_mapping(clean_env: list[Tracing]) -> None:
    tracing = make({"OTEL_EXPORTER_OTLP_ENDPOINT": LOOPBACK}, clean_env)
    assert getattr(exporter_of(tracing), "_endpoint", None) == LOOPBACK + "/v1/traces"


def test_from_env_uses_the_sampler_ratio(clean_env: list[Tracing]) -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
    }
    assert make(env, clean_env).ratio == 0.25
    assert make({**env, "OTEL_TRACES_SAMPLER": "always_off"}, clean_env).ratio == 0.0


@pytest.mark.parametrize(
    ("env", "ratio"),
    [
        ({}, DEFAULT_RATIO),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": " Always_On "}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, DEFAULT_RATIO),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, 0.5),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, 1),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.2"}, 0.2),  # default sampler is parent-based ratio
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "abc"}, DEFAULT_RATIO),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "7"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-1"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, DEFAULT_RATIO),
    ],
)
def test_sampling_ratio(env: dict[str, str], ratio: float) -> None:
    assert DEFAULT_RATIO == 0.001
    assert sampling_ratio(env) == ratio


def test_root_spans_are_pre_sampled_at_the_ratio() -> None:
    exporter = InMemorySpanExporter()
    draws = iter([0.1, 0.3, 0.2999, 0.9])
    base = Tracing.from_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(base.tracer, 0.3, rng=lambda: next(draws), provider=base.provider)
    try:
        kept = [
            tracing.wants(None) and tracing.start("s", 1.0, None, {"i": i}) is not None
            for i in range(4)
        ]
        assert kept == [True, False, True, False]
        assert next(draws, None) is None, "exactly one draw per sampling decision"
        # a client context skips the draw: the parent-based sampler follows its flag
        assert tracing.wants("00-" + "a" * 32 + "-" + "b" * 16 + "-01")
        sampled = tracing.start("s", 1.0, "00-" + "a" * 32 + "-" + "b" * 16 + "-01", {})
        unsampled = tracing.start("s", 1.0, "00-" + "a" * 32 + "-" + "b" * 16 + "-00", {})
        assert sampled is not None and unsampled is None
        assert traceparent_of(sampled).startswith("00-" + "a" * 32 + "-")
        assert traceparent_of(sampled)[-2:] in ("01", "03")
    finally:
        tracing.shutdown()
