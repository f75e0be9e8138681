"""OpenTelemetry spans for relays and room lifecycle, sampled before the SDK is touched.

Configured only by the standard ``OTEL_*`` variables. With no exporter configured the
server holds no tracer at all and a relay pays one attribute test. With an exporter,
root spans are pre-sampled here with a single ``random()`` call at the ratio of
``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (default: parent-based, ratio 0.001),
because even a non-recording SDK span costs microseconds; a message carrying a W3C
``traceparent`` always goes to the SDK, whose parent-based sampler follows the client.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Span, SpanKind, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("signaling.telemetry.tracing")

# One relay in a thousand: a sampled relay costs ~100 us of SDK work (span objects,
# protobuf, HTTP export) against ~30 us for the relay itself, so 1% would cost about
# 13% of throughput (measured, BENCHMARKS.md) while 0.1% stays within noise and still
# yields tens of traces per second from a busy instance.
DEFAULT_RATIO = 0.001
_propagator = TraceContextTextMapPropagator()


def epoch_ns(wall_s: float) -> int:
    """Events carry wall-clock seconds (``time.time()``); spans want epoch nanoseconds."""
    return int(wall_s * 1e9)


def traceparent_of(span: Span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def sampling_ratio(env: Mapping[str, str]) -> float:
    """Root-span ratio implied by ``OTEL_TRACES_SAMPLER`` (and its ``_ARG``)."""
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_traceidratio").strip().lower()
    if name in ("always_on", "parentbased_always_on"):
        return 1.0
    if name in ("always_off", "parentbased_always_off"):
        return 0.0
    if name in ("traceidratio", "parentbased_traceidratio"):
        try:
            ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG", DEFAULT_RATIO))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG is not a number; using %s", DEFAULT_RATIO)
            return DEFAULT_RATIO
        return min(max(ratio, 0.0), 1.0)
    log.warning("unsupported OTEL_TRACES_SAMPLER=%s; using ratio %s", name, DEFAULT_RATIO)
    return DEFAULT_RATIO


class Tracing:
    """The server's tracer plus its sampling decision. ``tracer is None`` means off."""

    def __init__(
        self,
        tracer: Tracer | None,
        ratio: float = 1.0,
        rng: Callable[[], float] = random.random,
        provider: TracerProvider | None = None,
    ) -> None:
        self.tracer = tracer
        self.ratio = ratio
        self._rng = rng
        self.provider = provider

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(None, 0.0)

    @classmethod
    def from_processor(cls, processor: SpanProcessor, ratio: float = 1.0) -> Tracing:
        provider = TracerProvider(
            sampler=ParentBased(ALWAYS_ON),
            resource=Resource.create(
                {"service.name": os.environ.get("OTEL_SERVICE_NAME", "signaling")}
            ),
        )
        provider.add_span_processor(processor)
        return cls(provider.get_tracer("signaling"), ratio, provider=provider)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tracing:
        env = os.environ if env is None else env
        exporter_name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not exporter_name:
            exporter_name = "otlp" if endpoint else "none"
        exporter: SpanExporter
        if exporter_name == "none":
            return cls.disabled()
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        elif exporter_name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            if not traces_endpoint and endpoint:
                traces_endpoint = endpoint.rstrip("/") + "/v1/traces"
            # Headers, timeout and certificates still come from OTEL_EXPORTER_OTLP_*.
            exporter = OTLPSpanExporter(endpoint=traces_endpoint or None)
        else:
            log.warning("unsupported OTEL_TRACES_EXPORTER=%s; tracing off", exporter_name)
            return cls.disabled()
        tracing = cls.from_processor(BatchSpanProcessor(exporter), sampling_ratio(env))
        log.info("tracing on: exporter=%s ratio=%s", exporter_name, tracing.ratio)
        return tracing

    def wants(self, traceparent: str | None) -> bool:
        """Sample or not: call first, and ``start`` only when True. One ``random()`` call
        for a root span; a client's ``traceparent`` defers the decision to ``start``."""
        if self.tracer is None:
            return False
        return traceparent is not None or self._rng() < self.ratio

    def start(
        self, name: str, at: float, traceparent: str | None, attributes: dict[str, Any]
    ) -> Span | None:
        """A span starting at wall-clock time ``at`` (after ``wants`` said yes), or None.

        A client's ``traceparent`` makes the SDK's parent-based sampler decide; one that
        does not parse into a valid context (all-zero ids, version ``ff``) counts as
        absent and gets the ratio's one roll here, so it cannot force sampling.
        """
        tracer = self.tracer
        if tracer is None:
            return None
        parent: Context | None = None
        if traceparent is not None:
            parent = _propagator.extract({"traceparent": traceparent})
            if not get_current_span(parent).get_span_context().is_valid:
                parent = None
                if self._rng() >= self.ratio:
                    return None
        span = tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=epoch_ns(at),
        )
        if not span.is_recording():
            return None
        return span

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
