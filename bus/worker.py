"""The stream processor, read top to bottom: app, topics, agents, timers.

- engine agent on `dematbus.events`: flow decisions (bus.engine);
- one runner agent per stage kind on `dematbus.cmd.<kind>`: external effects (bus.stages.runner);
- timers: outbox relay, poller of submitted effects, due retries, reconciler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import faust

from bus import metrics, webhooks
from bus.annulation import AnnulationRunner
from bus.assignment import record_assignment
from bus.blobs import BlobStore
from bus.broker_epoch import RESTART_AT_ONCE, BrokerEpoch, Loss
from bus.children import stop_deadline
from bus.config import Settings
from bus.counters import refresh_gauges
from bus.courriers import worker as courriers
from bus.engine import Engine
from bus.flows.definition import stage_kinds
from bus.health.worker_server import WorkerHealthServer, worker_readiness
from bus.lanes import Lanes
from bus.reconciler import reconcile
from bus.relay import prune_published, relay_forever
from bus.stages.runner import RunnerSettings, StageRunner
from bus.store.db import Store
from bus.store.models import utcnow
from bus.topics import EVENTS, MOVES, command_topic
from connectors.registry import ConnectorRegistry
from schemas.events import Command, Event

log = logging.getLogger("dematbus.worker")


def short_fetch_wait(max_wait_ms: int) -> None:
    """faust hard-codes `fetch_max_wait_ms=1500`. Tansu holds a fetch for the whole wait even when
    records arrive meanwhile, which adds up to 1.5 s per hop; a short wait keeps hops fast."""
    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = min(kwargs.get("fetch_max_wait_ms", max_wait_ms), max_wait_ms)
            super().__init__(*args, **kwargs)

    driver.aiokafka.AIOKafkaConsumer = Consumer  # the driver looks it up through its module


def faust_options(bootstrap: str, datadir: Path, partitions: int) -> dict[str, Any]:
    """The consumer and producer settings of every faust app of ours (the worker, the bench ceiling)."""
    return {
        "broker": f"kafka://{bootstrap}",
        "store": "memory://",
        "datadir": str(datadir),
        "topic_partitions": partitions,
        "topic_replication_factor": 1,
        "web_enabled": False,
        # The embedded broker settles a group in ~session_timeout/2: keep start-up short.
        "broker_session_timeout": 10,
        "broker_heartbeat_interval": 1,
        "broker_rebalance_timeout": 5,
        "broker_commit_interval": 0.5,
        "broker_max_poll_records": 500,
        "stream_wait_empty": False,
        # Tansu's reported highwater can trail the offsets its produce acks gave a table's changelog
        # records by one or two. faust's check then crashes table recovery after a rebalance, which
        # leaves every partition of the worker paused. The worker keeps no table today (the live
        # counters are written with the journal, bus.counters): this only guards a future one.
        "recovery_consistency_check": False,
    }


def create_app(settings: Settings, bootstrap: str, health: WorkerHealthServer | None = None,
               epoch: BrokerEpoch | None = None, first_loss: Loss | None = None) -> faust.App:
    """`epoch` holds the worker's first look at the broker (run_worker takes it before faust
    starts); `first_loss`, what that look found forgotten, is redriven once the app runs."""
    short_fetch_wait(settings.fetch_max_wait_ms)
    app = faust.App("dematbus", **faust_options(bootstrap, settings.data_dir / "faust", settings.topic_partitions))
    store = Store(settings.db_url)
    blobs = BlobStore(settings.blob_dir, settings.keys_dir)
    registry = ConnectorRegistry(f"http://{settings.host}:{settings.simulators_port}", settings.connector_timeout,
                                 public_url=settings.public_base_url)
    engine = Engine(store)
    runner_settings = RunnerSettings(
        max_attempts=settings.max_attempts,
        retry_backoff=settings.retry_backoff,
        retry_backoff_max=settings.retry_backoff_max,
        poll_interval=settings.poll_interval,
        poll_interval_max=settings.poll_interval_max,
        lease=settings.connector_timeout * 2 + 5,
    )
    runner = StageRunner(store, blobs, registry, runner_settings, engine)
    annulations = AnnulationRunner(store, blobs, registry, runner_settings, engine)
    courriers.install(app, store, blobs, registry, runner_settings, settings)

    events = app.topic(EVENTS, key_type=str, value_type=bytes, value_serializer="json", key_serializer="raw")
    topics = {
        kind: app.topic(command_topic(kind), key_type=str, value_type=bytes, value_serializer="json",
                        key_serializer="raw")
        for kind in stage_kinds()
    }
    moves_topic = app.topic(MOVES, key_type=str, value_type=bytes, value_serializer="json", key_serializer="raw")
    by_name = {EVENTS: events, MOVES: moves_topic, **{command_topic(k): t for k, t in topics.items()}}
    webhooks.install(app, store, moves_topic, webhooks.DeliverySettings(
        backoff=settings.webhook_retry_backoff, backoff_max=settings.webhook_retry_backoff_max,
        max_attempts=settings.webhook_max_attempts, timeout=settings.webhook_timeout))

    async def publish(topic: str, key: str, payload: dict[str, Any]) -> Any:
        return await by_name[topic].send(key=key.encode(), value=payload)

    async def handle(event: Event) -> None:
        if event.type == "poll":  # an operator (Pastell's verif-*) asks the remote side now
            await runner.poll_now(event.document_id)
        else:
            await engine.handle(event)

    lanes: Lanes[Event] = Lanes(settings.engine_lanes, handle)

    @app.agent(events)
    async def engine_agent(stream: Any) -> None:
        async for value in stream:
            try:
                event = Event.model_validate(value)
            except Exception:
                log.exception("not an event: %s", value)
                continue
            await lanes.put(event.document_id, event)

    def runner_agent(kind: str) -> None:
        async def run(stream: Any) -> None:
            async for value in stream:
                try:
                    await runner.run_command(Command.model_validate(value))
                except Exception:
                    log.exception("runner %s failed on %s", kind, value)

        run.__name__ = f"runner_{kind}"
        app.agent(topics[kind], name=f"dematbus.runner.{kind}", concurrency=settings.runner_concurrency)(run)

    for kind in stage_kinds():
        runner_agent(kind)

    @app.on_partitions_assigned.connect
    async def on_assigned(_: Any, assigned: Any, **__: Any) -> None:
        record_assignment(settings.data_dir, assigned)
        metrics.ASSIGNED_PARTITIONS.set(len(assigned))

    watch = epoch or BrokerEpoch(bootstrap)

    @app.task
    async def on_start() -> None:
        if health is not None:
            health.bind(asyncio.get_running_loop(), worker_readiness(app, store, watch, settings),
                        lambda: refresh_gauges(store))  # dematbus_live_documents, from the store
        await store.migrate()
        await reconcile(store, 0 if settings.redrive_on_start else settings.stage_timeout)
        if first_loss is not None:  # a broker that never saw the stream, or forgot it while we were down
            await reconcile(store, max(0.0, (utcnow() - first_loss.since).total_seconds()))
        await relay_forever(store, publish)

    @app.timer(settings.poll_interval)
    async def poll_submitted() -> None:
        await runner.poll_due()

    @app.timer(max(settings.poll_interval, 1.0))  # annulations are rare: no need to ask more often
    async def annulations_due() -> None:
        await annulations.process_due()

    @app.timer(max(settings.retry_backoff / 2, 0.5))
    async def retry_due() -> None:
        for command in await runner.due_retries():
            asyncio.ensure_future(runner.run_command(command))

    @app.timer(2.0)
    async def watchdog() -> None:
        # A crashed faust service (table recovery, consumer) leaves its partitions paused while the
        # process looks alive. Exit instead: the group hands the partitions to the other workers
        # and the supervisor (compose `restart:`, systemd) starts this one again.
        crashed = [s for s in (app.tables.recovery, app.consumer) if s.crashed]
        if crashed:
            log.critical("faust service crashed (%s): exiting so the group rebalances",
                         ", ".join(f"{s.label}: {s.crash_reason!r}" for s in crashed))
            os._exit(70)

    @app.timer(settings.broker_epoch_interval)
    async def broker_epoch() -> None:
        # A broker restarted empty lost the events of every open document: redrive them now
        # rather than after the stage timeout (bus.broker_epoch).
        loss = await watch.check()
        if loss is None:
            silent = time.monotonic() - (watch.last_contact or 0)
            if silent > settings.broker_lost_after:
                # Its group membership is gone by now, and what this process would send when the
                # broker comes back (buffered records, offsets) may belong to a broker that has
                # since restarted empty: a fresh process waits for the broker, then starts clean.
                log.critical("no answer from the broker for %.0f s: exiting to start afresh", silent)
                os._exit(RESTART_AT_ONCE)
            return
        await reconcile(store, max(0.0, (utcnow() - loss.since).total_seconds()))
        if not loss.first_look:
            # faust keeps the old broker's offsets in memory (consumer positions, table recovery)
            # and would skip, or wait forever for, records this broker never had: start afresh.
            log.critical("the broker forgot the stream while this worker ran: exiting to start afresh")
            os._exit(RESTART_AT_ONCE)

    @app.timer(60.0)
    async def outbox_prune() -> None:
        await prune_published(store, settings.outbox_retention)

    @app.timer(5.0)
    async def outbox_gauge() -> None:
        await metrics.refresh_outbox_pending(store)

    @app.timer(settings.reconcile_interval)
    async def reconcile_stale() -> None:
        await reconcile(store, settings.stage_timeout)

    return app


class BoundedStopWorker(faust.Worker):
    """faust's worker, whose clean stop on SIGTERM/SIGINT is bounded: with the broker gone it
    would wait for it forever, and a supervisor (or a rolling deploy) waits with it."""

    grace: float = 10.0

    def _setup_spinner_handler(self, logger: Any, level: int) -> None:
        """faust's terminal spinner turns the root logger to DEBUG so that every record makes it
        spin: each debug call of aiokafka, mode and aiosqlite then builds a record for nothing (7 %
        of an idle worker's CPU). The workers log to files: no spinner."""

    def _schedule_shutdown(self, signal: Any) -> None:  # mode.Worker's one entry for both signals
        if not self._signal_stop_time:
            stop_deadline(self.grace)
        super()._schedule_shutdown(signal)


def run_worker(settings: Settings, bootstrap: str, loglevel: str = "warning") -> None:
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    health = WorkerHealthServer(settings.worker_metrics_port, settings.host) if settings.worker_metrics_port else None
    epoch = BrokerEpoch(bootstrap)
    loop = asyncio.new_event_loop()  # not asyncio.run: faust wants the current loop left alone
    try:
        first_loss = loop.run_until_complete(epoch.first_look())
    finally:
        loop.close()
    app = create_app(settings, bootstrap, health, epoch, first_loss)
    if health is not None:
        health.start()
    worker = BoundedStopWorker(app, loglevel=loglevel.upper(), quiet=True)
    worker.grace = settings.shutdown_grace
    worker.execute_from_commandline()
