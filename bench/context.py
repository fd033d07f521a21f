"""Thread store at scale: Redis memory per thread and phone-lookup latency at 1,000 and 100,000 threads.

Prints figures; passes or fails nothing. Uses its own embedded Redis in a temporary directory.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from context.schemas import ThreadIn
from context.store import ThreadStore
from core.redis_server import EmbeddedRedis, connect

MESSAGES_PER_THREAD = 20
LOOKUPS = 5000
WORDS = ("app crash login payment card screen update reinstall account password sync photo upload error "
         "button freeze slow network offline cart order refund delivery address").split()


def phone_of(i: int) -> str:
    return f"+1415{2000000 + i:07d}"


def make_thread(i: int, rng: random.Random) -> ThreadIn:
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i)
    messages = [{"id": f"m{n}", "author": "customer" if n % 2 == 0 else "agent", "name": "Jane",
                 "text": " ".join(rng.choices(WORDS, k=18)), "sent_at": (start + timedelta(seconds=n)).isoformat()}
                for n in range(MESSAGES_PER_THREAD)]
    return ThreadIn.model_validate({
        "subject": " ".join(rng.choices(WORDS, k=5)), "status": "open" if i % 4 else "resolved",
        "customer": {"id": f"u-{i}", "name": "Jane Doe", "phone": phone_of(i), "locale": "en-US",
                     "time_zone": "America/Los_Angeles"},
        "device": {"platform": "iOS", "os_version": "17.2", "app_version": "3.2.1", "model": "iPhone 14"},
        "metadata": {"plan": "pro"}, "messages": messages})


def time_lookups(store: ThreadStore, count: int, rng: random.Random) -> dict[str, tuple[float, float, float]]:
    """Per lookup: client-side median and p99, and Redis's own microseconds per command (all in us)."""
    figures = {}
    for name, lookup in (("open_thread_ids", store.open_thread_ids), ("find_by_phone", store.find_by_phone)):
        for _ in range(500):  # warm up connection and caches
            lookup(phone_of(rng.randrange(count)))
        store.redis.config_resetstat()
        samples = []
        for _ in tqdm(range(LOOKUPS), desc=f"timing {name}", unit=" lookups", leave=False):
            phone = phone_of(rng.randrange(count))
            began = time.perf_counter()
            found = lookup(phone)
            samples.append((time.perf_counter() - began) * 1e6)
            assert isinstance(found, list)
        stats = store.redis.info("commandstats")
        server_us = sum(s["usec"] for s in stats.values()) / LOOKUPS
        figures[name] = (statistics.median(samples), percentile(samples, 0.99), server_us)
    return figures


def main() -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(tmp, appendonly=False)
        client = connect(server.start())
        try:
            store = ThreadStore(client)
            baseline = client.info("memory")["used_memory"]
            loaded = 0
            print(f"threads of {MESSAGES_PER_THREAD} messages; {LOOKUPS} lookups of random phones, in us")
            for target in (1_000, 100_000):
                began = time.perf_counter()
                for i in tqdm(range(loaded, target), desc=f"loading {target:,} threads", unit=" threads",
                              leave=False):
                    store.put(f"thread-{i}", make_thread(i, rng))
                rate = (target - loaded) / (time.perf_counter() - began)
                loaded = target
                per_thread = (client.info("memory")["used_memory"] - baseline) / loaded
                print(f"\n{loaded:>7,} threads  ({rate:,.0f} PUTs/s while loading)")
                print(f"  Redis memory per thread: {per_thread:,.0f} bytes")
                for name, (p50, p99, inside) in time_lookups(store, loaded, rng).items():
                    print(f"  {name:<16} median {p50:7.1f} us  p99 {p99:7.1f} us  inside Redis {inside:5.1f} us")
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
