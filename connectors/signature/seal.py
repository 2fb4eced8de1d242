"""Electronic seal (cachet électronique) of a collectivité: a PAdES signature with its own
certificate, applied to every payslip of a batch.

Same as :class:`PadesConnector`, but the signatures run in a small process pool: a batch is
hundreds of signatures, and pyHanko is pure Python, so signing in threads would hold the GIL and
starve the worker's event loop (the engine, the pollers) for the whole batch.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from connectors.base import OutputFile, PermanentConnectorError, StageJob
from connectors.signature.pades import PadesConnector, sign_pdf
from connectors.signature.pdf import is_pdf

_POOL: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _POOL
    if _POOL is None:
        # spawn, not fork: the worker runs threads (aiokafka, asyncio.to_thread) that fork would copy mid-flight.
        _POOL = ProcessPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)),
                                    mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_worker)
    return _POOL


def _die_with_worker() -> None:
    """A pool process does not outlive the worker that started it (SIGKILLed or not)."""
    from bus.children import die_with_parent

    die_with_parent()


class SealConnector(PadesConnector):
    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        documents = [f for f in job.files if f.role == "document"]
        if not documents or not all(is_pdf(d.data) for d in documents):
            raise PermanentConnectorError("nothing to seal: the document must be a PDF")
        signer = await asyncio.to_thread(self._signer)
        loop = asyncio.get_running_loop()
        sign = functools.partial(sign_pdf, cert_path=self.cert_path, key_path=self.key_path,
                                 reason=str(job.options.get("seal_reason") or "Cachet électronique de la collectivité"),
                                 location=job.collectivite.name, signer_name=signer.common_name)
        try:
            sealed = await asyncio.gather(*(loop.run_in_executor(_pool(), sign, d.data) for d in documents))
        except Exception as exc:
            raise PermanentConnectorError(f"cannot seal {documents[0].name}: {type(exc).__name__}") from exc
        return job.reference, [OutputFile(d.name, "signed_document", data, "application/pdf")
                               for d, data in zip(documents, sealed)]
