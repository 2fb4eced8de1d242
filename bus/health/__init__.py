"""Liveness and readiness of the API and the workers (`/healthz`, `/readyz`).

- `/healthz`: the process is alive and its event loop answers. A supervisor restarts a process
  whose `/healthz` fails.
- `/readyz`: the process can do its job now: the store answers, the broker answers, the blob
  store is writable, the outbox is being published (its oldest pending row is younger than
  `DEMATBUS_READY_OUTBOX_LAG` seconds), and the consumer group has workers holding partitions
  (on a worker: this worker holds some). 503 with the failing checks otherwise.

checks.py holds the checks, api.py the routes of the API, server.py the worker's small HTTP
server (which also serves `/metrics`).
"""
