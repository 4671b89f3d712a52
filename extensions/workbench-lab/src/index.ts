/**
 * The workbench-lab plugin: the "Workbench" left side panel and its commands (open an
 * artifact's dashboard in the notebook named after it, insert a finding's fix into the active notebook).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { dashboardNotebook, dashboardPath, dashboardSource, offerSource } from './model';
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
      caption: "The notebook named after the artifact (made the first time) whose first cell shows its full dashboard",
      execute: async args => {
        const path = String(args.path ?? panel.selected ?? '');
        if (!path) {
          Notification.warning('Select an artifact in the Workbench panel first.');
          return;
        }
        const contents = app.serviceManager.contents;
        const kernelName = app.serviceManager.kernelspecs.specs?.default ?? '';
        const target = dashboardPath(path);
        const exists = await contents.get(target, { content: false }).then(
          () => true,
          () => false
        );
        if (!exists) {
          await contents.save(target, { type: 'notebook', format: 'json', content: dashboardNotebook(path, kernelName) });
        }
        const notebook: NotebookPanel = await app.commands.execute('docmanager:open', {
          path: target,
          factory: 'Notebook',
          ...(kernelName ? { kernel: { name: kernelName } } : {})
        });
        await notebook.context.ready;
        await notebook.sessionContext.ready;
        const report = panel.reportOf(path);
        const kernel = notebook.sessionContext.session?.kernel;
        if (report && kernel) {
          // the server's report, so that the dashboard does not analyze the artifact again
          await kernel.requestExecute({ code: offerSource(path, report), silent: true, store_history: false }).done;
        }
        const first = notebook.content.widgets[0];
        if (first?.model.sharedModel.getSource() === dashboardSource(path)) {
          notebook.content.activeCellIndex = 0;
          await NotebookActions.run(notebook.content, notebook.sessionContext);
        }
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
