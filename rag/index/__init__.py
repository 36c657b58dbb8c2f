"""index stage: a folder holding a FAISS index, a SQLite chunk store and a manifest.

Example:
    >>> from rag.index import Index                        # doctest: +SKIP
    >>> idx = Index.open("my-index")                       # doctest: +SKIP
    >>> len(idx), idx.manifest.index_kind                  # doctest: +SKIP
    (2600, 'flat')
"""

from rag.index.index import Index
from rag.index.manifest import Manifest

__all__ = ["Index", "Manifest"]
