"""What this machine can do at best, measured in the same run as the pipeline.

Each ceiling is the bare cost of one thing the pipeline does many times per document: a Kafka
round trip, a faust hop, an RSA signature, a committed database transaction. Ratios against them
make a documents/s figure comparable across machines and noisy runs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import text

from bus.children import spawn
from bus.store.db import Store


@dataclass
class Ceilings:
    aiokafka_msgs_per_s: float
    faust_3hop_events_per_s: float
    rsa2048_signs_per_s: float
    db_commits_per_s: float


async def aiokafka_produce_consume(bootstrap: str, messages: int = 20_000) -> float:
    """Messages/s for `messages` records produced (batched) and consumed back, end to end."""
    topic = f"ceiling-aiokafka-{uuid.uuid4().hex[:8]}"
    payload = b"x" * 200
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50, group_id=None)
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")  # creates the topic
    await consumer.start()
    try:
        start = time.perf_counter()
        acks = [await producer.send(topic, payload) for _ in range(messages)]
        await asyncio.gather(*acks)
        seen = 0
        while seen < messages + 1:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        return messages / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


def faust_3hop(bootstrap: str, events: int = 5_000, timeout: float = 180) -> float:
    with tempfile.TemporaryDirectory(prefix="dematbus-ceiling-") as tmp:
        out = Path(tmp) / "result.json"
        # Dies with the bench, even a SIGKILLed one (bus.children).
        proc = spawn([sys.executable, "-m", "bus.bench.faust3hop", bootstrap, str(events), str(out)])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the faust 3-hop ceiling did not finish {events} events in {timeout} s") from None
        if not out.exists():
            raise RuntimeError(f"the faust 3-hop ceiling process exited with {proc.returncode} and no result")
        return float(json.loads(out.read_text())["events_per_s"])


def rsa2048_signs(seconds: float = 1.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"x" * 1024
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - start)


async def db_commits(url: str, seconds: float = 2.0) -> float:
    """Committed one-row transactions/s through the store's own session path."""
    store = Store(url)
    table = f"bench_commits_{uuid.uuid4().hex[:8]}"
    try:
        async with store.transaction() as session:
            await session.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v VARCHAR(64))"))
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            async with store.transaction() as session:
                await session.execute(text(f"INSERT INTO {table} (id, v) VALUES (:i, :v)"), {"i": count, "v": "x" * 64})
            count += 1
        rate = count / (time.perf_counter() - start)
        async with store.transaction() as session:
            await session.execute(text(f"DROP TABLE {table}"))
        return rate
    finally:
        await store.close()


def measure(bootstrap: str, db_url: str, scale: float = 1.0) -> Ceilings:
    """`scale` < 1 shortens every measure (smoke runs); the figures are then rougher."""
    return Ceilings(
        aiokafka_msgs_per_s=round(asyncio.run(aiokafka_produce_consume(bootstrap, int(20_000 * scale))), 1),
        faust_3hop_events_per_s=round(faust_3hop(bootstrap, max(100, int(5_000 * scale))), 1),
        rsa2048_signs_per_s=round(rsa2048_signs(max(0.2, scale)), 1),
        db_commits_per_s=round(asyncio.run(db_commits(db_url, max(0.3, 2 * scale))), 1),
    )
