"""Which files a browser may hand the page: only those it uploaded itself, or that the page handed
it for a field it sends back (the example, the image shown in the editor, the region canvas).

Gradio passes every file value a client sends (the `FileData` dict `{"path": ..., "meta":
{"_type": "gradio.FileData"}}`, anywhere in an event's inputs: the editor's background, layers
and composite, the reference, the upload field, even a number field) to its input processing,
which reads the named file and copies it into its cache before any handler runs. Gradio itself
refuses a path outside its upload folder, but accepts anything inside it: another person's
upload, the cache copies of another person's results, a folder, a missing name (each with a
different error), and it fetches a URL named as a path. So the page keeps, per browser, the files
that browser may name, and refuses anything else before Gradio sees it:

- a browser is known by a cookie of its own (`COOKIE`, 256 random bits, HttpOnly, SameSite=Strict),
  set by `BrowserCookie` on the first answer it gets. The browser's file uploads, the Python
  client's (gradio_client keeps the cookies of its first answer) and the page's events all carry
  it; Gradio's own upload route carries no session of its own, so a cookie is what ties an upload
  to the event that later names it.
- `BrowserCookie` records the paths Gradio's upload route answers to that browser; `guard`
  records the files the page's handlers hand it for the page's input fields, and the image
  editor's pasted blobs (`accept_blobs`) by the id that browser chose.
- `guard` wraps the page's `Blocks.process_api`, which every event passes through whichever route
  it came by (the queue, `/call`, `/run`, `/api`, the MCP server if it were on): before Gradio
  preprocesses an event's inputs, every file value in them must be one of that browser's; anything
  else ends the event with `REFUSED`, one line, the same whatever the path names (nothing on the
  disk is looked at to decide).

A client on the server's own machine that can read a file can still upload it (gradio_client
uploads a local path it is given): that is the client reading its own file, which the page cannot
and need not prevent. What the page prevents is a client naming a file it never sent.
"""

from __future__ import annotations

import inspect
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

#: the cookie that tells browsers apart (its value: 32 random bytes, URL-safe base64)
COOKIE = "anytime_page"
#: what a client gets for a file value that is not one of its own, whatever the value names
REFUSED = ("this page takes only images uploaded from this browser (or its example): upload the image again "
           "(the page needs its cookie)")
#: browsers remembered (the least recently active forgotten first) and files remembered per browser
MAX_BROWSERS = 1000
MAX_FILES = 500

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_BROWSER: ContextVar[str | None] = ContextVar("anytime_page_browser", default=None)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_of(cookies: Any) -> str | None:
    """The page's cookie among `cookies` (a mapping), or None when absent or not one the page could
    have set (a client that picks its own value gets only its own, empty, record)."""
    try:
        value = cookies.get(COOKIE)
    except AttributeError:
        return None
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


class Received:
    """The files each browser may name: browser token -> the paths (and the editor's blob ids) it
    uploaded or was handed. Bounded: MAX_BROWSERS browsers, MAX_FILES files each, the least
    recently used dropped first (a dropped file is uploaded again by the browser on its next
    Start: the editor sends its images afresh each time)."""

    def __init__(self, max_browsers: int = MAX_BROWSERS, max_files: int = MAX_FILES):
        self.max_browsers, self.max_files = max_browsers, max_files
        self._files: OrderedDict[str, OrderedDict[tuple[str, str], None]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, browser: str | None, values: Iterable[tuple[str, Any]]) -> None:
        values = [(kind, v) for kind, v in values if isinstance(v, str)]
        if browser is None or not values:
            return
        with self._lock:
            files = self._files.setdefault(browser, OrderedDict())
            self._files.move_to_end(browser)
            for value in values:
                files[value] = None
                files.move_to_end(value)
            while len(files) > self.max_files:
                files.popitem(last=False)
            while len(self._files) > self.max_browsers:
                self._files.popitem(last=False)

    def holds(self, browser: str | None, value: tuple[str, Any]) -> bool:
        """Whether `browser` uploaded or was handed `value` (("path", p) or ("blob", id)): an exact
        match, nothing resolved or looked up on the disk."""
        if browser is None or not isinstance(value[1], str):
            return False
        with self._lock:
            files = self._files.get(browser)
            if files is None or value not in files:
                return False
            files.move_to_end(value)
            self._files.move_to_end(browser)
            return True


def file_values(value: Any) -> Iterator[tuple[str, Any]]:
    """Every file value in a client's payload: ("path", p) for each dict with a "path" key (Gradio's
    FileData, with or without its meta: Gradio reads the first, and a component may read the
    second), ("blob", id) for an image editor value that points at pasted blobs by id."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item:
                yield "path", item["path"]
            if item.get("id") is not None and {"background", "layers", "composite"} & item.keys():
                yield "blob", item["id"]
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def browser_of(request: Any) -> str | None:
    """The browser token of a Gradio request (gr.Request, or a list of them for a batch: one
    browser only), from its cookie."""
    if isinstance(request, list):
        tokens = {browser_of(r) for r in request}
        return tokens.pop() if len(tokens) == 1 else None
    if request is None:
        return None
    raw = getattr(request, "request", None)  # the HTTP request, or None for one Gradio rebuilt
    if raw is not None:
        return token_of(getattr(raw, "cookies", None))
    return token_of((getattr(request, "kwargs", None) or {}).get("cookies"))


def guard(demo, received: Received) -> Received:
    """Make the launched `demo` honour a file value only if it is one of the sending browser's (see
    the module's docstring); returns `received`. Call after every event is defined, before
    launching; BrowserCookie (restore.page.layout.serve installs it) records the uploads."""
    import gradio as gr

    takes = {block._id for fn in demo.fns.values() for block in fn.inputs}
    process, postprocess = demo.process_api, demo.postprocess_data
    process_signature, postprocess_signature = inspect.signature(process), inspect.signature(postprocess)

    async def process_api(*args, **kwargs):
        call = process_signature.bind(*args, **kwargs).arguments
        browser = browser_of(call.get("request"))
        if call.get("iterator") is None:  # Gradio preprocesses (reads files) only on an event's first call
            if not all(received.holds(browser, value) for value in file_values(call.get("inputs"))):
                raise gr.Error(REFUSED, print_exception=False)
        token = _BROWSER.set(browser)
        try:
            return await process(*args, **kwargs)
        finally:
            _BROWSER.reset(token)

    async def postprocess_data(*args, **kwargs):
        data = await postprocess(*args, **kwargs)
        browser = _BROWSER.get()
        block_fn = postprocess_signature.bind(*args, **kwargs).arguments["block_fn"]
        if browser is not None and isinstance(data, (list, tuple)):
            for block, value in zip(block_fn.outputs, data):
                if block._id in takes:  # a field the browser may send back
                    received.record(browser, file_values(value))
        return data

    demo.process_api, demo.postprocess_data = process_api, postprocess_data
    for block in demo.blocks.values():
        if isinstance(block, gr.ImageEditor):
            block.accept_blobs = _recording_blobs(block.accept_blobs, received)
    return received


def _recording_blobs(accept, received: Received):
    """The image editor's server function that takes pasted images as blobs under an id the browser
    chose, recording that id as the sending browser's."""

    def accept_blobs(data):
        fields = getattr(data, "data", None)
        blob = fields.get("id") if isinstance(fields, dict) else None
        received.record(_BROWSER.get(), [("blob", blob)])
        return accept(data)

    accept_blobs._is_server_fn = True  # what Gradio's component_server route asks of it
    return accept_blobs


class BrowserCookie:
    """ASGI middleware of the page's app: gives each browser the page's cookie (on the first answer
    it gets without one), makes it known to the events of the request (guard's accept_blobs), and
    records the paths Gradio's upload route answers it, before the answer leaves."""

    def __init__(self, app, received: Received, upload_path: str = "/gradio_api/upload"):
        self.app, self.received, self.upload_path = app, received, upload_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.requests import cookie_parser

        headers = dict(scope.get("headers") or [])
        browser = token_of(cookie_parser(headers.get(b"cookie", b"").decode("latin-1")))
        fresh = browser is None
        if fresh:
            browser = new_token()
        upload = scope.get("method") == "POST" and scope.get("path", "").rstrip("/").endswith(self.upload_path)
        state = {"status": None, "body": []}

        async def answer(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                if fresh:
                    cookie = f"{COOKIE}={browser}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            elif message["type"] == "http.response.body" and upload and state["status"] == 200:
                state["body"].append(message.get("body", b""))
                if message.get("more_body", False):
                    return  # held until the whole list of paths is known and recorded
                self._record_upload(browser, b"".join(state["body"]))
                message = {**message, "body": b"".join(state["body"])}
            await send(message)

        token = _BROWSER.set(browser)
        try:
            await self.app(scope, receive, answer)
        finally:
            _BROWSER.reset(token)

    def _record_upload(self, browser: str, body: bytes) -> None:
        import json

        try:
            paths = json.loads(body)
        except ValueError:
            return
        if isinstance(paths, list):
            self.received.record(browser, (("path", p) for p in paths))
