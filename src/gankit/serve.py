"""``gankit serve RUN``: a local web page to play with a trained generator, and the JSON API under it.

The stack is Starlette (a small, maintained ASGI toolkit: routing, requests, responses, a test client) served
by uvicorn; the page is one HTML file with plain JavaScript, nothing fetched from the network. It binds
127.0.0.1 (this machine only) unless told ``--host``.

    GET  /                      the page
    GET  /api/info              what the run is: recipe, kind, shape, classes, domains, what the page can do
    GET  /api/sample            ?n=16&seed=0[&class=NAME][&truncation=psi]: {"image": PNG data URI} (points: a
                                scatter; token runs: {"lines": [...]})
    GET  /api/interpolate       ?seed_a=0&seed_b=1&t=0.5[&class=NAME]: the sample at t on the slerp from z_a to z_b
    POST /api/translate         ?to=DOMAIN (CycleGAN, StarGAN) or [degrade=0] (pix2pix), the body an image (PNG,
                                JPEG, WebP, BMP; at most MAX_UPLOAD bytes): {"image": input | output (| upload)};
                                text style transfer runs: a JSON body
                                {"text": "...", "to": "B"} -> {"text": "..."}

Nothing is written to disk: uploads are read into memory, bounded by MAX_UPLOAD and MAX_PIXELS. Every error
is a JSON {"error": "one line"} with a 4xx status: 400 a bad parameter, 404 an unknown path, 405 a wrong
method, 413 an upload over the limit, 415 a body that is not an image.
"""
from __future__ import annotations

import io
import json
import socket
import threading
from pathlib import Path

import torch

from .errors import GankitError
from .report import png_uri

MAX_UPLOAD = 8 * 2**20     # bytes of one uploaded image
MAX_PIXELS = 4096 * 4096   # pixels of one decoded image (PIL's decompression-bomb guard works at about 89 M)
MAX_SAMPLES = 64           # samples one request may ask for
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP"}


class HTTPProblem(Exception):
    """A request the API refuses: a status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _number(params, key: str, default, lo, hi, kind: type = int):
    """Query parameter ``key`` as an int (or ``kind`` float) in [lo, hi]; ``default`` when absent or empty."""
    raw = params.get(key)
    if raw in (None, ""):
        return default
    try:
        v = kind(raw)
    except ValueError:
        raise HTTPProblem(400, f"{key}: not {'an integer' if kind is int else 'a number'}: {raw!r}") from None
    if not lo <= v <= hi:
        raise HTTPProblem(400, f"{key}: must be in [{lo:g}, {hi:g}], got {v:g}")
    return v


def decode_image(body: bytes, channels: int, size: int) -> torch.Tensor:
    """An uploaded image -> (1, C, size, size) in [-1, 1] (shorter side to ``size``, centre crop); 415 when the
    bytes are no image of an accepted format, 413 when it declares more than MAX_PIXELS."""
    from PIL import Image

    from .data.images import read_image
    from .errors import DataError

    try:
        with Image.open(io.BytesIO(body)) as im:
            fmt, (w, h) = im.format, im.size
    except Exception:   # PIL raises many types on bytes that are no image
        raise HTTPProblem(415, "the body is not a readable image; send PNG, JPEG, WebP or BMP") from None
    if fmt not in IMAGE_FORMATS:
        raise HTTPProblem(415, f"an image in {fmt} given; send PNG, JPEG, WebP or BMP")
    if w * h > MAX_PIXELS:
        raise HTTPProblem(413, f"the image is {w}×{h}; at most {MAX_PIXELS:,} pixels")
    try:
        a = read_image(io.BytesIO(body), size, channels)
    except DataError:
        raise HTTPProblem(415, "the body is not a readable image (truncated or corrupt)") from None
    return torch.from_numpy(a).float().div(127.5).sub(1).unsqueeze(0)


class Playground:
    """What the page and the API do with one loaded run; one request at a time reaches the networks."""

    def __init__(self, loaded, name: str) -> None:
        self.loaded = loaded
        self.name = name
        self.recipe = loaded.recipe
        self.lock = threading.Lock()

    def info(self) -> dict:
        r, i = self.recipe, self.loaded.info
        c = r.conditioning
        return {"name": self.name, "recipe": self.loaded.cfg.train.recipe, "kind": i.kind, "shape": list(i.shape),
                "conditioning": c, "classes": list(r.classes) if c == "class" else [],
                "domains": list(r.domains) if c in ("domains", "sentences") else [],
                "can": {"sample": c in ("none", "class"), "interpolate": c in ("none", "class") and i.kind != "tokens",
                        "truncation": c in ("none", "class") and i.kind != "tokens" and not r.rejection,
                        "translate_image": c in ("image", "domains"), "translate_text": c == "sentences"},
                "max_upload": MAX_UPLOAD, "max_samples": MAX_SAMPLES}

    def _class(self, params) -> int | None:
        name = params.get("class")
        if name in (None, ""):
            return None
        from .run import class_index

        try:
            return class_index(self.loaded, name)
        except GankitError as e:
            raise HTTPProblem(400, str(e).replace("--class", "class")) from None

    def _picture(self, x: torch.Tensor, nrow: int | None = None) -> str:
        from .images import default_scale, grid_image

        if self.loaded.info.kind == "points":
            import tempfile

            from PIL import Image

            from .images import save_points_plot

            with tempfile.TemporaryDirectory() as tmp:   # matplotlib writes the plot; nothing stays
                path = Path(tmp) / "points.png"
                save_points_plot(x, path)
                with Image.open(path) as im:
                    return png_uri(im.copy())
        return png_uri(grid_image(x, nrow=nrow, scale=max(2, default_scale(x.shape[-1]))))

    def sample(self, params) -> dict:
        if not self.info()["can"]["sample"]:
            c = self.recipe.conditioning
            raise HTTPProblem(400, "this run translates; use /api/translate" if c in ("image", "domains", "sentences")
                              else f"this run is conditioned on {c}s, which the page cannot choose; use gankit sample "
                                   f"RUN --condition FILE.npy")
        from .data.text import decode_all
        from .run import draw

        n = _number(params, "n", 16, 1, MAX_SAMPLES)
        seed = _number(params, "seed", 0, 0, 2**31 - 1)
        k = self._class(params)
        psi = _number(params, "truncation", None, 0.05, 10.0, float)
        if psi is not None and not self.info()["can"]["truncation"]:
            raise HTTPProblem(400, "truncation: this run's latents are not drawn from N(0, I) and decoded directly")
        labels = torch.full((n,), k, dtype=torch.int64) if k is not None else None
        with self.lock:
            x = draw(self.loaded, n, seed=seed, labels=labels, truncation=psi)
        if self.loaded.info.kind == "tokens":
            return {"lines": decode_all(x, self.loaded.info), "seed": seed}
        return {"image": self._picture(x), "n": n, "seed": seed}

    def interpolate(self, params) -> dict:
        if not self.info()["can"]["interpolate"]:
            raise HTTPProblem(400, "this run has no latent space to walk between two samples")
        from .sampling import slerp

        a, b = (_number(params, key, d, 0, 2**31 - 1) for key, d in (("seed_a", 0), ("seed_b", 1)))
        t = _number(params, "t", 0.5, 0.0, 1.0, float)
        k = self._class(params)
        za, zb = (self.recipe.latents(1, generator=torch.Generator().manual_seed(s)).cpu() for s in (a, b))
        z = slerp(za, zb, torch.tensor([t])).reshape(1, -1)
        labels = None
        if self.recipe.conditioning == "class":
            labels = torch.tensor([k if k is not None else 0])
        with self.lock:
            x = self.recipe.sample(z, labels).cpu()
        return {"image": self._picture(x), "t": t}

    def translate_image(self, params, body: bytes) -> dict:
        """CycleGAN / StarGAN: the upload into domain ``to`` (input | output). A pix2pix run trained on a
        degradation: the upload is degraded first, as training did (``degrade=0``: it is the condition as it is —
        a low-resolution, grey or noisy image; refused for inpainting, whose condition carries the hole):
        condition | output (| the upload)."""
        if not self.info()["can"]["translate_image"]:
            raise HTTPProblem(400, "this run does not translate images")
        from .data.paired import degrade
        from .translation import translate_tensor

        r = self.recipe
        c, h, _ = self.loaded.info.shape
        shown = []
        if r.conditioning == "domains":
            x = decode_image(body, c, h)
        elif r.degradation and params.get("degrade", "1") != "0":
            original = decode_image(body, c, h)
            x = degrade(original, r.degradation, torch.Generator().manual_seed(0))
            shown = [original]
        elif r.degradation == "inpaint":
            raise HTTPProblem(400, "degrade=0: an inpainting run's condition carries its hole; send degrade=1")
        else:
            cin, hc, _ = r.condition_shape
            x = decode_image(body, cin, hc)
        with self.lock:
            try:
                y = translate_tensor(self.loaded, x, to=params.get("to") or None)
            except GankitError as e:
                raise HTTPProblem(400, str(e).replace("--to", "to")) from None
        first = r.show_condition(x) if r.conditioning == "image" else x
        return {"image": self._picture(torch.cat([first, y, *shown]), nrow=2 + len(shown))}

    def translate_text(self, body: bytes) -> dict:
        if not self.info()["can"]["translate_text"]:
            raise HTTPProblem(400, "this run does not translate sentences")
        from .text_transfer import translate_lines
        from .translation import target_domain

        try:
            asked = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPProblem(400, 'the body must be JSON: {"text": "...", "to": "B"}') from None
        text = asked.get("text") if isinstance(asked, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise HTTPProblem(400, "text: a non-empty string of at most 2,000 characters")
        try:
            target = target_domain(list(self.recipe.domains), asked.get("to"), None)
        except GankitError as e:
            raise HTTPProblem(400, str(e).replace("--to", "to")) from None
        with self.lock:
            return {"text": translate_lines(self.loaded, [text.replace("\n", " ")], target)[0]}


async def read_body(request, limit: int = MAX_UPLOAD) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes (announced or streamed)."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise HTTPProblem(413, f"the upload is {int(announced):,} bytes; at most {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPProblem(413, f"the upload passes {limit:,} bytes")
    return bytes(body)


def build_app(loaded, name: str = "run"):
    """The Starlette application of run ``loaded``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    play = Playground(loaded, name)
    page = (Path(__file__).parent / "templates" / "serve.html").read_text(encoding="utf-8")

    def answer(fn):
        async def endpoint(request):
            try:
                return JSONResponse(await fn(request))
            except HTTPProblem as e:
                return JSONResponse({"error": str(e)}, status_code=e.status)
            except GankitError as e:   # a request the run cannot answer (a library check)
                return JSONResponse({"error": str(e)}, status_code=400)
        return endpoint

    async def index(request):
        return HTMLResponse(page)

    async def info(request):
        return play.info()

    async def sample(request):
        return await run_in_threadpool(play.sample, request.query_params)

    async def interpolate(request):
        return await run_in_threadpool(play.interpolate, request.query_params)

    async def translate(request):
        body = await read_body(request)
        if play.recipe.conditioning == "sentences":
            return await run_in_threadpool(play.translate_text, body)
        return await run_in_threadpool(play.translate_image, request.query_params, body)

    async def problem(request, exc: HTTPException):
        message = {404: f"no such path: {request.url.path}", 405: f"{request.method} is not allowed here"}
        return JSONResponse({"error": message.get(exc.status_code, exc.detail)}, status_code=exc.status_code)

    routes = [Route("/", index), Route("/api/info", answer(info)), Route("/api/sample", answer(sample)),
              Route("/api/interpolate", answer(interpolate)),
              Route("/api/translate", answer(translate), methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: problem})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. A GankitError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise GankitError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); choose another --port") from None
    sock.listen(128)
    return sock


def server(loaded, name: str, sock: socket.socket):
    """A uvicorn server of ``build_app`` on ``sock`` (``.run(sockets=[sock])``; ``.should_exit`` stops it)."""
    import uvicorn

    config = uvicorn.Config(build_app(loaded, name), log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve_in_thread(loaded, name: str = "run", host: str = "127.0.0.1"):
    """(base URL, stop()) of a server of ``loaded`` on a free port, in a thread of this process (tests,
    benchmarks/serve_load.py)."""
    import time

    sock = bind(host, 0)
    srv = server(loaded, name, sock)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise GankitError(f"serve: the server on {host} did not start")
        time.sleep(0.05)

    def stop() -> None:
        srv.should_exit = True
        thread.join(30)
        sock.close()
    return f"http://{host}:{sock.getsockname()[1]}", stop


def serve(run: str, host: str = "127.0.0.1", port: int = 8000, log=print) -> None:
    """Serve run ``run`` until Ctrl-C."""
    from .run import open_run

    loaded = open_run(run)
    sock = bind(host, port)
    where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else "reachable from the network"
    shown = f"[{host}]" if ":" in host else host
    log(f"serving {run} ({loaded.cfg.train.recipe}) at http://{shown}:{sock.getsockname()[1]}/ ({where}); Ctrl-C stops")
    server(loaded, Path(run).name, sock).run(sockets=[sock])
