"""The HTTP API: the original backend's contract (``/api/predict``, ``/api/health``) served by the engine.

``create_app(model_loader)`` builds the FastAPI app; ``python -m dermascan serve`` runs it under uvicorn.
Concurrent predictions are gathered by a dynamic batcher into one compiled call. Never imports Streamlit.
"""

from .app import create_app
from .settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
