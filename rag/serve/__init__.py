"""``rag serve``: an HTTP API over a supervised, dynamically batched model worker.

- :mod:`rag.serve.app` - FastAPI endpoints, validation, API key, body limit, error mapping;
- :mod:`rag.serve.batcher` - bounded FIFO queue, dynamic batching, deadlines;
- :mod:`rag.serve.worker` - the model worker process and its supervisor.
"""

from rag.serve.app import ServeConfig, create_app, run

__all__ = ["ServeConfig", "create_app", "run"]
