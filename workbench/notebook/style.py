"""The dashboard's look: one stylesheet and the category colours every tab shares."""

from __future__ import annotations

COLORS = {
    "computation": "#4C78A8", "communication": "#F58518", "memcpy": "#54A24B", "memset": "#88D27A",
    "idle": "#BAB0AC", "operator": "#B279A2", "launch": "#E45756", "synchronization": "#9D755D",
    "runtime": "#FF9DA6", "allocated": "#4C78A8", "reserved": "#F58518", "free": "#BAB0AC",
    "critical": "#C62828", "warning": "#EF6C00", "info": "#1565C0",
}

CSS = """
<style>
.wb { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
      color: var(--jp-ui-font-color1, #222); }
.wb-h { margin: 10px 0 4px; font-size: 14px; }
.wb-sub { color: var(--jp-ui-font-color2, #666); font-size: 12px; }
.wb-cards { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
.wb-card { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 4px 8px; min-width: 120px; }
.wb-card .v { font-size: 16px; font-weight: 600; }
.wb-card .l { font-size: 11px; color: var(--jp-ui-font-color2, #666); }
.wb-bar { display: flex; height: 22px; border-radius: 3px; overflow: hidden; margin: 4px 0; }
.wb-bar div { color: white; font-size: 11px; line-height: 22px; padding-left: 3px; white-space: nowrap;
              overflow: hidden; }
.wb-legend span { margin-right: 10px; font-size: 11px; }
.wb-table { border-collapse: collapse; margin: 4px 0 10px; font-size: 12px; }
.wb-table th, .wb-table td { border-bottom: 1px solid var(--jp-border-color2, #e0e0e0); padding: 2px 8px;
                             text-align: left; max-width: 520px; overflow: hidden; text-overflow: ellipsis; }
.wb-table th { cursor: pointer; user-select: none; }
.wb-finding { border-left: 4px solid #888; padding: 4px 10px; margin: 8px 0;
               background: var(--jp-layout-color1, #fff); }
.wb-sev { display: inline-block; color: white; border-radius: 3px; padding: 0 6px; font-size: 11px; margin-right: 6px; }
.wb-evidence { font-size: 12px; }
.wb-evidence td { vertical-align: top; }
.wb-code { background: var(--jp-cell-editor-background, #f5f5f5); padding: 6px; font-size: 12px; overflow-x: auto;
           white-space: pre; font-family: var(--jp-code-font-family, monospace); margin: 4px 0; }
.wb-button { margin-right: 6px; }
.wb-wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
"""

# Shown only where the widgets run (JupyterLab's and Notebook 7's output areas are lumino widgets,
# nbconvert's are plain divs; VS Code's outputs share one webview whose body has its theme's data
# attribute): the static view displayed after them is hidden there.
HIDE_STATIC_CSS = ("<style>.lm-Widget.jp-OutputArea-child:has(.wb-static) { display: none; }\n"
                   "body[data-vscode-theme-kind] :has(.wb-widgets) ~ * .wb-static,\n"
                   "body[data-vscode-theme-kind] :has(.wb-widgets) ~ .wb-static { display: none; }</style>")
