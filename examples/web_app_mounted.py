"""streamsr's web app inside an ASGI app of your own, under /upscaler/ (pip install -e ".[serve]").

    python examples/web_app_mounted.py ~/videos     # then open http://127.0.0.1:8000/upscaler/
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from streamsr.serve import create_app


def main() -> None:
    upscaler = create_app(sys.argv[1] if len(sys.argv) > 1 else ".")

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse('<p>Our tools: <a href="upscaler/">upscale a video</a></p>')

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        upscaler.jobs.stop()  # a mounted app's own lifespan does not run: stop its job worker here

    app = Starlette(routes=[Route("/", home), Mount("/upscaler", app=upscaler)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
