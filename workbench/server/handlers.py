"""REST handlers under `/workbench/api/`: the artifact list, analysis status and progress, and reports.

Every handler requires Jupyter's authentication (403 without it). A `path` parameter is
relative to the server's root; one that resolves outside it is refused with 403.
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

from workbench.server.artifacts import ArtifactIndex, PathRefused, Signature, resolve, signature
from workbench.server.cache import ReportCache


class WorkbenchHandler(APIHandler):
    """Shared by the handlers: the root's artifact index and report cache."""

    def initialize(self, index: ArtifactIndex, cache: ReportCache) -> None:
        self.index = index
        self.cache = cache

    async def target(self) -> tuple[str, Signature]:
        """The `path` argument as a path relative to the real root, with its current signature."""
        requested = self.get_query_argument("path", None)
        if requested is None:
            raise web.HTTPError(400, "missing the path argument")
        try:
            real = resolve(self.index.root, requested)
        except PathRefused:
            raise web.HTTPError(403, f"{requested}: outside the server's root") from None
        except FileNotFoundError:
            raise web.HTTPError(404, f"{requested}: no such file or directory") from None
        stamp = await asyncio.to_thread(signature, real)
        return Path(os.path.relpath(real, self.index.root)).as_posix(), stamp

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))


class ArtifactsHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The analyzable artifacts under the root, each with the status of its analysis."""
        artifacts = await asyncio.to_thread(self.index.list)
        stamps = await asyncio.to_thread(lambda: [signature(self.index.root / a.path) for a in artifacts])
        rows = [{**a.to_json(), "status": self.cache.status(a.path, stamp)} for a, stamp in zip(artifacts, stamps)]
        self.reply({"root": self.index.root.name, "truncated": self.index.truncated, "artifacts": rows})


class AnalyzeHandler(WorkbenchHandler):
    @web.authenticated
    async def post(self) -> None:
        """Start analyzing `path` (unless its report is cached); 202 while it runs."""
        relative, stamp = await self.target()
        status = self.cache.start(relative, stamp).status()
        self.reply({"path": relative, "status": status}, 202 if status["state"] == "running" else 200)


class StatusHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The state of `path`'s analysis: not_analyzed, running (label, fraction), done (counts) or error."""
        relative, stamp = await self.target()
        self.reply({"path": relative, "status": self.cache.status(relative, stamp)})


class ReportHandler(WorkbenchHandler):
    @web.authenticated
    async def get(self) -> None:
        """The `workbench.report/1` document of `path`, analyzing it first if needed; 422 if it cannot be."""
        relative, stamp = await self.target()
        job = await self.cache.report(relative, stamp)
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
        (url_path_join(api, "status"), StatusHandler, shared),
        (url_path_join(api, "report"), ReportHandler, shared),
    ])
