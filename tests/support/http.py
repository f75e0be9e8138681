"""Plain HTTP GETs for probes and metrics: any status is an answer, never an exception."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request


def http_get(
    url: str, timeout: float = 3.0, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    """GET ``url``; (status, body) for any status instead of raising on 4xx/5xx.
    ``context`` verifies an https server (a test CA)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


async def ahttp_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    """:func:`http_get` off the event loop, so an in-process server can answer it."""
    return await asyncio.to_thread(http_get, url, timeout)


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None if absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
