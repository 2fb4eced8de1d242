"""Does the broker still remember the stream? A marker record tells.

The embedded broker keeps nothing across a restart, and a Kafka cluster rebuilt from empty
volumes neither: every event published before is gone, and the documents waiting for one would
wait until the reconciler's stage timeout (minutes). Each worker therefore looks, every few
seconds, at the first record of a one-partition topic, `dematbus.broker-epoch`:

- the topic is empty: this broker has never seen us, or has forgotten everything. The worker
  writes a marker (a fresh id and the time), which names this broker's *epoch*;
- the marker differs from the one this worker saw last: the broker lost its data in between.

Either way the worker redrives from the store every open document not moved since the marker was
written (`Loss.since`): their events may have died with the old broker. Documents that moved after
it have their events in the new broker already, so a second worker noticing the same loss finds
nothing left to redrive. A worker that noticed the loss while it ran then exits
(`RESTART_AT_ONCE`) and its supervisor starts a fresh one. A broker that was only unreachable (a
network cut, a rolling restart of a durable cluster) keeps its marker: nothing is redriven, the
clients reconnect and go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from bus.store.models import utcnow

log = logging.getLogger(__name__)

EPOCH_TOPIC = "dematbus.broker-epoch"
# A worker that finds the broker forgot the stream while it ran redrives, then exits with this
# code: faust's in-memory offsets belong to the old broker. Supervisors start it again at once.
RESTART_AT_ONCE = 75
_TP = TopicPartition(EPOCH_TOPIC, 0)


@dataclass(frozen=True)
class Loss:
    """The broker forgot the stream: what was published before `since` may be gone."""

    epoch: str
    since: datetime
    first_look: bool  # noticed at this worker's first look (its start), not while it ran


class BrokerEpoch:
    def __init__(self, bootstrap: str, timeout: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.known: str | None = None  # the marker id this worker saw last
        self.last_contact: float | None = None  # time.monotonic() of the broker's last answer
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._answering = False

    async def check(self) -> Loss | None:
        """Look at the marker once; a Loss when the broker has forgotten the stream since the
        last look (or had never seen it). None when it is unchanged or the broker does not answer."""
        try:
            epoch, at, wrote = await asyncio.wait_for(self._marker(), self.timeout)
        except (KafkaError, OSError, asyncio.TimeoutError, ValueError, KeyError) as exc:
            if self.last_contact is not None and self._answering:
                log.warning("the broker at %s does not answer (%r): documents wait for it", self.bootstrap, exc)
            self._answering = False
            return None
        if not self._answering and self.last_contact is not None:
            log.warning("the broker at %s answers again", self.bootstrap)
        self.last_contact, self._answering = time.monotonic(), True
        previous, self.known = self.known, epoch
        if previous == epoch or (previous is None and not wrote):
            return None  # the same broker memory as before (or as when this worker started)
        log.warning("the broker at %s has forgotten the stream (new epoch %s)", self.bootstrap, epoch)
        return Loss(epoch, at, first_look=previous is None)

    async def first_look(self, retry_every: float = 1.0) -> Loss | None:
        """The look a worker takes before it starts consuming, so that its consumer meets the
        broker epoch it saw: waits while the broker does not answer, then closes its clients
        (they belong to this loop)."""
        waited = 0.0
        try:
            while True:
                loss = await self.check()
                if self.known is not None:
                    return loss
                if waited % 30 == 0:
                    log.warning("waiting for the broker at %s", self.bootstrap)
                await asyncio.sleep(retry_every)
                waited += retry_every
        finally:
            await self.close()

    async def _marker(self) -> tuple[str, datetime, bool]:
        """(marker id, when it was written, whether this call wrote it)."""
        consumer = await self._client()
        begin = (await consumer.beginning_offsets([_TP]))[_TP]
        end = (await consumer.end_offsets([_TP]))[_TP]
        wrote = begin >= end  # nothing to read: a broker that never saw us, or forgot us
        if wrote:
            await self._write_marker()
        consumer.seek(_TP, begin)
        records: list = []  # type: ignore[type-arg]
        while not records:
            records = (await consumer.getmany(_TP, timeout_ms=int(self.timeout * 1000))).get(_TP, [])
        first = json.loads(records[0].value)
        return str(first["epoch"]), datetime.fromisoformat(first["at"]), wrote

    async def _write_marker(self) -> None:
        await self._create_topic()
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout * 1000))
            await producer.start()
            self._producer = producer
        marker = {"epoch": uuid.uuid4().hex, "at": utcnow().isoformat()}
        await self._producer.send_and_wait(EPOCH_TOPIC, json.dumps(marker).encode(), key=b"epoch")

    async def _create_topic(self) -> None:
        """One partition, kept forever (a durable cluster must not lose its marker to retention)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout * 1000))
        await admin.start()
        try:
            brokers = len((await admin.describe_cluster())["brokers"])
            await admin.create_topics([NewTopic(EPOCH_TOPIC, 1, min(3, max(1, brokers)),
                                                topic_configs={"retention.ms": "-1"})])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:  # auto-creation on the first write will do
            log.info("broker epoch: could not create %s (%s)", EPOCH_TOPIC, exc)
        finally:
            await admin.close()

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                        request_timeout_ms=int(self.timeout * 1000))
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            consumer.assign([_TP])
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = None
