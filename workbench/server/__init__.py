"""The Jupyter server extension behind the JupyterLab "Workbench" panel (needs the `lab` extra).

Enabled by `etc/jupyter/jupyter_server_config.d/workbench.json`, which the wheel installs;
the handlers are imported only when a Jupyter server loads the extension.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "workbench.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from workbench.server.handlers import setup_handlers

    setup_handlers(server_app.web_app, server_app.root_dir)
    server_app.log.info("workbench: /workbench/api/ serves the reports of %s", server_app.root_dir)
