"""`create_app()`: the web app, an ASGI application (Starlette) over one root folder.

The page (``static/``) is plain HTML and JavaScript that speaks to the JSON API below with
relative addresses, so the app works mounted under any prefix of another ASGI app.

    GET    api/files            media and model files under the root, each media file probed
    PUT    api/files/{name}     upload (the raw body): media into uploads/, model files into models/
    GET    api/choices          shipped models and presets
    POST   api/estimate         measured time of a job's options on a source: {source, options}
    POST   api/jobs             queue a job: {source, options}; GET api/jobs lists them
    GET    api/jobs/{id}        one job; DELETE stops it (or forgets a finished one)
    GET    api/events[?job=id]  Server-Sent Events: each job's state as it changes
    GET    api/compare          bicubic and model pictures of one frame: ?job=id&at=s or ?source=&at=&options
    GET    media/{path}         a file under the root (byte ranges for the video player; ?download=1)

Security: without a token the app answers only requests addressed to a loopback name (a page
elsewhere cannot reach it through DNS rebinding); with one, every request must present it (the
``Authorization: Bearer`` header, the cookie the page sets, or ``?token=``). A request that
changes something from a page of another origin is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..batch import is_media
from ..errors import EXIT_MEANINGS, DiskFullError, InputError, OutputError, StreamSRError
from ..segments import DEFAULT_SEGMENT_SECONDS
from ..stages.upscale import LastUpscaler
from .files import RefusedPathError, Root, UploadTooLargeError, is_model_file
from .jobs import FINISHED, JobQueue, job_config

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD = 8 << 30
"""Bytes an upload may have by default (8 GiB: a long film)."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
COOKIE = "streamsr_token"
EVENT_INTERVAL = 0.2
"""Seconds between looks at the jobs for the event stream."""


class NotFoundError(InputError):
    """A job or file the request names does not exist."""


def _missing(what: str) -> Any:
    raise NotFoundError(f"{what}: not found")


def _status(error: StreamSRError) -> int:
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, UploadTooLargeError):
        return 413
    if isinstance(error, RefusedPathError):
        return 403
    if isinstance(error, DiskFullError):
        return 507
    if isinstance(error, OutputError):
        return 500
    return 400


class Guard:
    """Refuses what a local web app must not answer: see the module's description."""

    jobs: JobQueue | None = None
    """The app's job queue (`create_app` sets it), for a host app that stops it on its way out."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        if self.token is None and name not in LOOPBACK_NAMES:
            return 403, "this server answers on the loopback interface only (start it with --token to serve other hosts)"
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode())
            auth = headers.get("authorization", "")
            cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
            given = auth[7:] if auth.lower().startswith("bearer ") else cookie or query.get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "a token is needed: open the address the server printed, with its ?token="
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin and urlsplit(origin).netloc != host:
            return 403, "a request from a page of another origin is refused"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self._refusal(scope)) is not None:
            await PlainTextResponse(refusal[1], status_code=refusal[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def describe(path: Path) -> dict[str, Any]:
    """What the page shows of a media file: the probe's picture, timing, audio, colour and shape."""
    from ..images import is_image

    if is_image(path):
        from PIL import Image

        with Image.open(path) as image:
            return {"kind": "image", "width": image.width, "height": image.height}
    from ..io.probe import probe

    info = probe(path)
    sar, dar = info.sample_aspect_ratio, info.display_aspect_ratio
    return {
        "kind": "video", "width": info.width, "height": info.height, "fps": round(float(info.fps), 3),
        "variable_frame_rate": info.variable_frame_rate, "duration": info.duration_seconds,
        "frames": info.num_frames_estimate, "codec": info.codec, "bit_depth": info.bit_depth,
        "audio": [s.codec for s in info.streams if s.kind == "audio"],
        "subtitles": sum(s.kind == "subtitle" for s in info.streams),
        "colour": info.color.beyond_srgb() or "", "fields": info.field_order,
        "sar": f"{sar.numerator}:{sar.denominator}", "dar": f"{dar.numerator}:{dar.denominator}",
        "rotation": info.rotation_degrees,
    }


class Probes:
    """`describe` of each file, kept while the file's size and time stay the same."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self._seen: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}

    def __call__(self, path: Path) -> dict[str, Any]:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        if (seen := self._seen.get(path)) is not None and seen[0] == key:
            return seen[1]
        try:
            found = describe(path)
        except (StreamSRError, OSError, ValueError) as e:
            found = {"kind": "unreadable", "error": self.root.shown(e)}
        self._seen[path] = (key, found)
        return found


def _png(rgb: Any) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def create_app(root: str | Path, *, token: str | None = None, engine: str = "local", address: str | None = None,
               segment_seconds: float = DEFAULT_SEGMENT_SECONDS, max_upload: int = DEFAULT_MAX_UPLOAD) -> Guard:
    """The web app over the folder `root` (see the module's description).

    Jobs run through `streamsr.upscale` one at a time, on this machine or (`engine` ``ray``) as Ray
    tasks, their state kept in ``<root>/.streamsr/``. The job worker starts with the app's
    lifespan, or with the first job where a host app does not run mounted apps' lifespans.
    """
    place = Root(root)
    place.remove_stale()
    jobs = JobQueue(place, engine=engine, address=address, segment_seconds=segment_seconds)
    probes = Probes(place)
    kept = LastUpscaler()  # the model "before / after" last ran

    async def refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, StreamSRError)
        code = error.exit_code
        return JSONResponse({"error": place.shown(error), "exit_code": code, "meaning": EXIT_MEANINGS.get(code, "")},
                            status_code=_status(error))

    async def index(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        if token is not None and hmac.compare_digest(request.query_params.get("token", "").encode(), token.encode()):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def files(request: Request) -> Response:
        def listing() -> dict[str, Any]:
            media, models = [], []
            for path in place.walk():
                entry = {"path": place.relative(path), "bytes": path.stat().st_size}
                if is_media(path):
                    media.append({**entry, **probes(path)})
                elif is_model_file(path):
                    models.append(entry)
            return {"media": media, "models": models}

        return JSONResponse(await run_in_threadpool(listing))

    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload:
            raise UploadTooLargeError(f"{request.path_params['name']}: over the upload limit of {max_upload} bytes")
        path = await place.save(request.path_params["name"], request.stream(), limit=max_upload)
        entry = {"path": place.relative(path), "bytes": path.stat().st_size}
        if is_media(path):
            entry.update(await run_in_threadpool(probes, path))
        return JSONResponse(entry, status_code=201)

    async def choices(request: Request) -> Response:
        from ..models import list_models
        from ..presets import list_presets

        return JSONResponse({
            "models": [{"name": m.name, "scale": m.scale, "summary": m.summary} for m in list_models()],
            "presets": [{"name": p.name, "description": p.description} for p in list_presets()],
        })

    def _video(body: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
        path = place.resolve(str(body.get("source", "")))
        if not path.is_file():
            _missing(f"{body.get('source')!r} under the root folder")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise InputError("options must be a JSON object")
        return path, options

    async def estimate(request: Request) -> Response:
        from ..estimate import estimate as measure
        from ..images import is_image

        path, options = _video(await _json_body(request))
        if is_image(path):
            raise InputError(f"{path.name}: an image is one model call; the estimate measures videos")
        cfg = job_config(place, options)
        found = await run_in_threadpool(measure, path, cfg)
        return JSONResponse([{"model": e.model, "seconds_per_frame": e.seconds_per_frame, "seconds": e.seconds}
                             for e in found])

    async def submit(request: Request) -> Response:
        body = await _json_body(request)
        path, options = _video(body)
        job = jobs.submit(place.relative(path), options)
        jobs.start()
        return JSONResponse(job.public(), status_code=201)

    async def list_jobs(request: Request) -> Response:
        return JSONResponse([j.public() for j in sorted(jobs.all(), key=lambda j: j.created)])

    def _job(request: Request) -> Any:
        return jobs.get(request.path_params["id"]) or _missing(f"job {request.path_params['id']!r}")

    async def one_job(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse(jobs.cancel(_job(request).id).public())
        return JSONResponse(_job(request).public())

    async def events(request: Request) -> Response:
        wanted = request.query_params.get("job")
        if wanted is not None and jobs.get(wanted) is None:
            _missing(f"job {wanted!r}")

        async def stream() -> AsyncIterator[str]:
            sent: dict[str, str] = {}
            beat = time.monotonic()
            while True:
                current = {j.id: j for j in jobs.all() if wanted is None or j.id == wanted}
                for job_id in set(sent) - set(current):
                    del sent[job_id]
                    yield f"event: removed\ndata: {json.dumps({'id': job_id})}\n\n"
                for job in current.values():
                    data = json.dumps(job.public())
                    if sent.get(job.id) != data:
                        sent[job.id] = data
                        yield f"event: job\ndata: {data}\n\n"
                if wanted is not None and (wanted not in current or current[wanted].state in FINISHED):
                    return
                if time.monotonic() - beat > 15:
                    beat = time.monotonic()
                    yield ": still here\n\n"
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def compare(request: Request) -> Response:
        from ..compare import before_after
        from ..images import is_image
        from ..io.probe import probe
        from ..stages.upscale import target_scale

        query = request.query_params
        try:
            at = float(query.get("at", "0"))
        except ValueError:
            raise InputError(f"at={query.get('at')!r} is not a time in seconds") from None
        if "job" in query:
            job = jobs.get(query["job"]) or _missing(f"job {query['job']!r}")
            source, options = place.resolve(job.source), job.options
            output = place.path / job.output if job.state == "done" else None
        else:
            options = {k: v for k, v in query.items() if k not in ("source", "at", "token")}
            for number in ("scale", "width", "height"):
                if number in options:
                    options[number] = int(options[number]) if options[number].isdigit() else options[number]
            source, output = place.resolve(query.get("source", "")), None
        cfg = job_config(place, options)

        def pictures() -> dict[str, Any]:
            try:  # the finished output itself, where it is a whole multiple of the source
                pair = before_after(source, output, at=at) if output is not None else None
            except InputError:
                pair = None
            if pair is None:
                # The model a job of these options would run: a target size picks its scale.
                scale = cfg.scale if is_image(source) else target_scale(source, probe(source), cfg)
                with kept(replace(cfg, scale=scale, width=None, height=None)) as upscaler:
                    pair = before_after(source, at=at, upscaler=upscaler)
            return {"seconds": pair.seconds, "scale": pair.scale, "name": pair.name,
                    "width": pair.upscaled.shape[1], "height": pair.upscaled.shape[0],
                    "before": _png(pair.bicubic), "after": _png(pair.upscaled)}

        return JSONResponse(await run_in_threadpool(pictures))

    async def media(request: Request) -> Response:
        path = place.resolve(request.path_params["path"])
        if not path.is_file():
            _missing(f"{request.path_params['path']!r} under the root folder")
        download = request.query_params.get("download") == "1"
        return FileResponse(path, filename=path.name if download else None,
                            content_disposition_type="attachment" if download else "inline")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            await run_in_threadpool(jobs.stop)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/files", files),
            Route("/api/files/{name:path}", upload, methods=["PUT"]),
            Route("/api/choices", choices),
            Route("/api/estimate", estimate, methods=["POST"]),
            Route("/api/jobs", list_jobs),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/jobs/{id}", one_job, methods=["GET", "DELETE"]),
            Route("/api/events", events),
            Route("/api/compare", compare),
            Route("/media/{path:path}", media),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        exception_handlers={StreamSRError: refusal},
        lifespan=lifespan,
    )
    guarded = Guard(app, token)
    guarded.jobs = jobs
    return guarded


