"""`dematbus chaos`: the invariants (docs/invariants.md) under fire, on a private stack.

Read top to bottom in campaign.py: start the benchmark's private stack (bus.bench) with several
workers → deposit a mixed workload with a client that retries with the same Idempotency-Key when
the API is down → meanwhile SIGKILL workers, the API and the broker at seeded random moments
(monkey.py) and make the simulators answer 500s, time out and answer slowly through their
`/_admin/faults` endpoints (faults.py) → calm down and let every document finish → check the
invariants (verify.py): nothing acknowledged lost, no duplicate transmission or archive
transfer counted by the simulators, every error with a reason, every journal chain intact →
write a JSON report and an SVG chart of throughput and kills over time (chart.py).
"""
