"""Result cache: identical image bytes + model + options -> the answer, in-process or Redis.

The cache stores an ``Answer``: the top ``max_top_k`` (index, score) pairs, the everyday categories' (id, score),
``unknown`` and (a trained version) ``out_of_set``, all worked out from the full probabilities once, so requests
that differ only in ``top_k``, ``min_score``, ``lang`` or ``view`` share one entry.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Protocol, TypedDict

from wanwu.ranking import Ranked


class Answer(TypedDict):
    ranked: Ranked
    categories: list[tuple[str, float]]  # (category id, score), highest first; empty for a trained model
    unknown: bool | None
    out_of_set: bool | None  # a trained version with out-of-set evidence: like none of its training images

log = logging.getLogger("wanwu.cache")


class ResultCache(Protocol):
    name: str

    async def get(self, key: str) -> Answer | None: ...

    async def put(self, key: str, value: Answer) -> None: ...

    async def close(self) -> None: ...


class NoCache:
    name = "off"

    async def get(self, key: str) -> Answer | None:
        return None

    async def put(self, key: str, value: Answer) -> None:
        return None

    async def close(self) -> None:
        return None


class LruCache:
    name = "memory"

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: str) -> Answer | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    async def put(self, key: str, value: Answer) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        return None


class RedisCache:
    """Shared by replicas. A Redis outage degrades to misses; it never fails a request."""

    name = "redis"

    def __init__(self, url: str, ttl_s: int, prefix: str = "wanwu:v3:") -> None:  # v3: an Answer with out_of_set
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._ttl = ttl_s
        self._prefix = prefix

    async def get(self, key: str) -> Answer | None:
        try:
            raw = await self._client.get(self._prefix + key)
        except Exception as err:  # noqa: BLE001 - any Redis failure is a miss
            log.warning("redis get failed: %s", err)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return Answer(ranked=[(int(i), float(s)) for i, s in data["ranked"]],
                      categories=[(str(c), float(s)) for c, s in data["categories"]], unknown=data["unknown"],
                      out_of_set=data.get("out_of_set"))

    async def put(self, key: str, value: Answer) -> None:
        try:
            await self._client.set(self._prefix + key, json.dumps(value), ex=self._ttl)
        except Exception as err:  # noqa: BLE001 - the answer is already computed; caching is best effort
            log.warning("redis set failed: %s", err)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        await self._client.aclose()


def make_cache(redis_url: str | None, capacity: int, ttl_s: int) -> ResultCache:
    if redis_url:
        return RedisCache(redis_url, ttl_s)
    return LruCache(capacity) if capacity > 0 else NoCache()
