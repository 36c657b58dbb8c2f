"""ingest stage: files -> chunks -> vectors -> index.

Example:
    >>> from rag.ingest import ingest                                   # doctest: +SKIP
    >>> ingest(["docs/"], "my-index", Settings.build()).to_dict()       # doctest: +SKIP
"""

from rag.ingest.run import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
