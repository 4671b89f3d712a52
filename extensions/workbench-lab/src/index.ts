/**
 * The workbench-lab plugin: the "Workbench" left side panel and its commands (open an
 * artifact's dashboard in a new notebook, insert a finding's fix into the active notebook).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { dashboardSource } from './model';
import { COMMANDS, WorkbenchPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="13" width="4" height="8" rx="1"/><rect x="10" y="8" width="4" height="13" rx="1"/>
    <rect x="17" y="3" width="4" height="18" rx="1"/>
  </g>
</svg>`;

export const workbenchIcon = new LabIcon({ name: 'workbench-lab:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'workbench-lab:plugin',
  description: 'The Workbench side panel: artifacts under the root, their findings and fixes.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const panel = new WorkbenchPanel(app.commands, app.serviceManager.contents);
    panel.title.icon = workbenchIcon;

    app.commands.addCommand(COMMANDS.refresh, {
      label: 'Workbench: refresh the artifact list',
      execute: () => panel.refresh()
    });

    app.commands.addCommand(COMMANDS.openDashboard, {
      label: 'Open dashboard in a notebook',
      caption: 'A new notebook whose first cell shows the full dashboard of the artifact',
      execute: async args => {
        const path = String(args.path ?? panel.selected ?? '');
        if (!path) {
          Notification.warning('Select an artifact in the Workbench panel first.');
          return;
        }
        const kernelName = app.serviceManager.kernelspecs.specs?.default ?? '';
        const notebook: NotebookPanel = await app.commands.execute('notebook:create-new', { cwd: '', kernelName });
        await notebook.context.ready;
        notebook.content.model?.cells.get(0)?.sharedModel.setSource(dashboardSource(path));
        await notebook.sessionContext.ready;
        await NotebookActions.run(notebook.content, notebook.sessionContext);
      }
    });

    app.commands.addCommand(COMMANDS.insertFix, {
      label: 'Insert fix into active notebook',
      caption: "A code cell with the finding's fix, below the active cell",
      execute: args => {
        const notebook = notebooks.currentWidget;
        if (!notebook) {
          Notification.warning('Open a notebook first: the fix goes below its active cell.');
          return;
        }
        NotebookActions.insertBelow(notebook.content);
        notebook.content.activeCell?.model.sharedModel.setSource(String(args.code ?? ''));
        app.shell.activateById(notebook.id);
      }
    });

    palette?.addItem({ command: COMMANDS.refresh, category: 'Workbench' });
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);
  }
};

export default plugin;
