"""The broker-epoch marker, against a real embedded broker: a worker tells a broker that forgot
the stream (restarted empty) from one that was only slow or unreachable."""

from __future__ import annotations

from bus.broker_epoch import BrokerEpoch
from bus.embedded import EmbeddedBroker


async def test_the_marker_tells_a_broker_that_forgot_from_one_that_was_away(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    first, other = BrokerEpoch(broker.bootstrap, timeout=3), BrokerEpoch(broker.bootstrap, timeout=3)
    try:
        fresh = await first.check()
        assert fresh is not None and fresh.first_look  # an empty broker: this worker wrote the marker
        assert await first.check() is None
        assert await other.check() is None  # a second worker starting now meets the same epoch

        broker.stop()
        assert await first.check() is None  # away: nothing to conclude yet
        contact = first.last_contact
        broker.start()  # the same address, an empty memory
        forgot = await first.check()
        assert forgot is not None and not forgot.first_look and forgot.epoch != fresh.epoch
        assert forgot.since >= fresh.since and first.last_contact != contact
        seen_by_other = await other.check()  # the other worker sees the new epoch, written by the first
        assert seen_by_other is not None and seen_by_other.epoch == forgot.epoch
        assert seen_by_other.since == forgot.since  # so it redrives nothing the first already did
    finally:
        await first.close()
        await other.close()
        broker.stop()
