"""``serve``: run the API under uvicorn (``python -m dermascan serve``)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DermascanError
from .app import create_app
from .settings import ApiSettings


def serve(model_loader: Callable[[], object], *, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve until interrupted; the settings are read (and checked) from the environment first."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise DermascanError(f"--port must be between 1 and 65535, not {port}.")

    app = create_app(model_loader, ApiSettings.from_env())
    # One process: the model is loaded once and shared; the batcher is what turns concurrency into throughput.
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
    return 0
