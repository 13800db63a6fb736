"""Prometheus metrics, in a registry of the app's own (several apps in one process never clash)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("wanwu_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram("wanwu_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.images = Counter("wanwu_images", "Images classified, by outcome", ["outcome"], registry=r)
        self.batch_size = Histogram(
            "wanwu_batch_size", "Images per engine call", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64), registry=r
        )
        self.inference = Histogram("wanwu_inference_seconds", "Engine time per batch", buckets=LATENCY_BUCKETS, registry=r)
        self.decode = Histogram("wanwu_decode_seconds", "Decode + preprocess time per image", buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("wanwu_queue_depth", "Images waiting for the engine", registry=r)
        self.cache_hits = Counter("wanwu_cache_hits", "Result cache hits", registry=r)
        self.cache_misses = Counter("wanwu_cache_misses", "Result cache misses", registry=r)
        self.ready = Gauge("wanwu_ready", "1 once the model is loaded and warmed", registry=r)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
