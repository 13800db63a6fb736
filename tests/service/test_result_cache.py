"""The result cache keeps a whole ``Answer`` (out_of_set included) in memory and through Redis's JSON, and reads the
entries an earlier wanwu wrote without the fields added since."""

from __future__ import annotations

import asyncio
import json

from wanwu.service.cache import Answer, LruCache, RedisCache

ANSWER = Answer(ranked=[(3, 0.9), (1, 0.05)], categories=[], unknown=True, out_of_set=True)


class FakeRedis:
    """The two calls RedisCache makes, on a dict (the real server: tests/service/test_live.py)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def set(self, key: str, value: str, ex: int) -> None:
        self.data[key] = value.encode()


def test_an_answer_round_trips_through_memory_and_redis() -> None:
    async def run() -> tuple[Answer | None, Answer | None, dict]:
        lru, redis = LruCache(4), RedisCache("redis://127.0.0.1:1/0", ttl_s=60)
        redis._client = FakeRedis()  # type: ignore[assignment]
        await lru.put("k", ANSWER)
        await redis.put("k", ANSWER)
        return await lru.get("k"), await redis.get("k"), redis._client.data  # type: ignore[attr-defined]

    from_lru, from_redis, stored = asyncio.run(run())
    assert from_lru == ANSWER and from_redis == ANSWER
    (key,) = stored
    assert key.startswith("wanwu:v3:") and json.loads(stored[key])["out_of_set"] is True


def test_an_entry_without_out_of_set_reads_as_none() -> None:
    async def run() -> Answer | None:
        redis = RedisCache("redis://127.0.0.1:1/0", ttl_s=60)
        fake = FakeRedis()
        fake.data["wanwu:v3:k"] = json.dumps({"ranked": [[3, 0.9]], "categories": [["dog", 0.95]], "unknown": False}).encode()
        redis._client = fake  # type: ignore[assignment]
        return await redis.get("k")

    assert asyncio.run(run()) == Answer(ranked=[(3, 0.9)], categories=[("dog", 0.95)], unknown=False, out_of_set=None)
