"""``create_app(model_loader)``: the FastAPI app, its middleware and routes.

Middleware, outermost first: CORS (so even a refused or oversized request carries the CORS answer a
browser needs to read it), the body-size limit (413 before anything is parsed), the per-client rate limit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address

from . import cases, errors, info, predict
from .bodylimit import BodyLimit
from .settings import ApiSettings
from .state import ServerState

TITLE = "DermaScan Review API"
DESCRIPTION = ("Decision support for research and education; not a medical device. The original backend's "
               "`/api/predict` and `/api/health`, served by the DermaScan engine with dynamic batching.")
TOO_LARGE = "The request is too large: images are limited to {mb:.3g} MB each."
CORS_METHODS = ["GET", "POST", "PUT", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "X-API-Key", "Authorization"]


def create_app(model_loader: Callable[[], object], settings: ApiSettings | None = None) -> FastAPI:
    """The API app; ``model_loader()`` returns a ``LesionModel`` and runs on a background thread at start."""
    settings = settings or ApiSettings.from_env()
    state = ServerState(model_loader, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(title=TITLE, description=DESCRIPTION, version="1", lifespan=lifespan)
    app.state.server = state
    app.state.settings = settings
    limiter = Limiter(key_func=get_remote_address, default_limits=[settings.rate_limit] if settings.rate_limit
                      else [], enabled=settings.rate_limit is not None)
    app.state.limiter = limiter
    errors.install(app)

    @app.exception_handler(RateLimitExceeded)
    async def _too_many(request, exc):
        return errors.error_response(429, "Too many requests from this client; slow down and retry shortly.",
                                     {"Retry-After": "10"})

    for module in (info, predict, cases):
        # The routes themselves, not include_router: FastAPI 0.165 wraps included routers in a route that
        # slowapi's middleware cannot see through, which would silently exempt every endpoint from the limit.
        # (Router-level dependencies, such as the cases' API key, are already part of each route.)
        app.router.routes.extend(module.router.routes)
    limiter.exempt(info.health)

    app.add_middleware(SlowAPIASGIMiddleware)
    app.add_middleware(BodyLimit, limits={"/api/predict": settings.predict_body_limit,
                                          "/api/batch": settings.batch_body_limit},
                       message=TOO_LARGE.format(mb=settings.max_bytes / (1024 * 1024)))
    # No credentials: keys travel in a header the frontend sets, so "*" would never be combined with cookies.
    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=CORS_METHODS,
                       allow_headers=CORS_HEADERS, allow_credentials=False, max_age=600)
    return app
