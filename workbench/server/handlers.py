"""REST handlers under `/workbench/api/`: the artifact list, analysis status and progress, and reports.

Every handler requires Jupyter's authentication (403 without it). A `path` parameter is
relative to the server's root; an empty one (or one with a NUL) is a 400, one that resolves
outside the root a 403. Only `POST analyze` starts work; the GETs only read.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from workbench.server.artifacts import ArtifactIndex, BadPath, PathRefused, Signature, resolve, signature
from workbench.server.cache import ReportCache


class WorkbenchHandler(APIHandler):
    """Shared by the handlers: the root's artifact index and report cache."""

    def initialize(self, index: ArtifactIndex, cache: ReportCache) -> None:
        self.index = index
        self.cache = cache

    async def target(self) -> tuple[str, Signature]:
        """The `path` argument as a path relative to the real root, with its current signature."""
        values = self.request.query_arguments.get("path")  # raw: tornado's getters turn control characters into spaces
        if not values:
            raise web.HTTPError(400, "missing the path argument")
        requested = values[-1].decode("utf-8", errors="replace")
        try:
            real = resolve(self.index.root, requested)
        except BadPath:
            raise web.HTTPError(400, f"{requested!r}: not a path (empty, or holding a NUL character)") from None
        except PathRefused:
            raise web.HTTPError(403, f"{requested}: outside the server's root") from None
        except FileNotFoundError:
            raise web.HTTPError(404, f"{requested}: no such file or directory") from None
        stamp = await asyncio.to_thread(signature, real, self.index.root)
        return Path(os.path.relpath(real, self.index.root)).as_posix(), stamp

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))


class ArtifactsHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The analyzable artifacts under the root, each with the status of its analysis."""
        artifacts = await asyncio.to_thread(self.index.list)
        root = self.index.root
        stamps = await asyncio.to_thread(lambda: [signature(root / a.path, root) for a in artifacts])
        rows = [{**a.to_json(), "status": self.cache.status(a.path, stamp)} for a, stamp in zip(artifacts, stamps)]
        self.reply({"root": root.name, "truncated": self.index.truncated,
                    "skipped_links": self.index.skipped_links, "artifacts": rows})


class AnalyzeHandler(WorkbenchHandler):
    @web.authenticated
    async def post(self) -> None:
        """Start analyzing `path` (unless its report is cached); 202 while it runs."""
        relative, stamp = await self.target()
        status = self.cache.start(relative, stamp).status()
        self.reply({"path": relative, "status": status}, 202 if status["state"] == "running" else 200)


class CancelHandler(WorkbenchHandler):
    @web.authenticated
    async def post(self) -> None:
        """Stop `path`'s running analysis (its report becomes a 'cancelled' error); 404 if none runs."""
        relative, _ = await self.target()
        if not self.cache.cancel(relative):
            raise web.HTTPError(404, f"{relative}: no analysis is running")
        self.reply({"path": relative, "cancelled": True})


class StatusHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The state of `path`'s analysis: not_analyzed, running (label, fraction), done (counts) or error."""
        relative, stamp = await self.target()
        self.reply({"path": relative, "status": self.cache.status(relative, stamp)})


class ReportHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The `workbench.report/1` document of `path` once `POST analyze` made it; 422 if it could not be, 409
        while it is not analyzed (at these file stamps) or still running."""
        relative, stamp = await self.target()
        job = self.cache.finished(relative, stamp)
        if job is None:
            state = self.cache.status(relative, stamp)["state"]
            raise web.HTTPError(409, f"{relative}: {state.replace('_', ' ')}; POST /workbench/api/analyze starts it")
        if job.error is not None:
            raise web.HTTPError(422, job.error)
        self.reply(job.report)


def setup_handlers(web_app: web.Application, root: str | Path) -> None:
    """Register the handlers under `<base_url>workbench/api/`."""
    shared = {"index": ArtifactIndex(root), "cache": ReportCache(root)}
    api = url_path_join(web_app.settings["base_url"], "workbench", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(api, "artifacts"), ArtifactsHandler, shared),
        (url_path_join(api, "analyze"), AnalyzeHandler, shared),
        (url_path_join(api, "cancel"), CancelHandler, shared),
        (url_path_join(api, "status"), StatusHandler, shared),
        (url_path_join(api, "report"), ReportHandler, shared),
    ])
