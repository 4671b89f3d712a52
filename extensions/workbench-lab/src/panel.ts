/**
 * The "Workbench" side panel: the artifacts under the server's root with the state of their
 * analysis, and, in an area of its own below them that stays in view, the selected artifact's
 * findings (evidence, estimated gain, fix code). The two areas scroll separately; the list's
 * height can be dragged.
 */
import { Contents } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import {
  artifactLabel,
  docsLinks,
  evidenceItems,
  gainText,
  IArtifact,
  IFinding,
  IReport,
  IStatus,
  SEVERITIES,
  sizeText,
  statusText
} from './model';

export const COMMANDS = {
  openDashboard: 'workbench:open-dashboard',
  insertFix: 'workbench:insert-fix',
  refresh: 'workbench:refresh'
};

const LIST_EVERY_MS = 5000;
const STATUS_EVERY_MS = 500;
const KEEP_REPORTS = 8;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function button(label: string, title: string, onClick: () => void): HTMLButtonElement {
  const node = element('button', 'jp-Workbench-button', label);
  node.title = title;
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

export class WorkbenchPanel extends Widget {
  constructor(commands: CommandRegistry, contents: Contents.IManager) {
    super();
    this._commands = commands;
    this.id = 'workbench-panel';
    this.addClass('jp-Workbench');
    this.title.caption = 'Workbench: traces, snapshots and dumps with their findings';
    const header = element('div', 'jp-Workbench-header');
    header.append(
      element('span', 'jp-Workbench-heading', 'Workbench'),
      button('Refresh', 'List the artifacts again', () => void this.refresh())
    );
    this._list = element('ul', 'jp-Workbench-list');
    this._details = element('div', 'jp-Workbench-details');
    this.node.append(header, this._note, this._list, this._details);
    contents.fileChanged.connect(() => void this.refresh(), this);
  }

  /** The path of the artifact whose findings are shown. */
  get selected(): string | null {
    return this._selected;
  }

  /** The report of `path` the panel fetched from the server, if it has one. */
  reportOf(path: string): IReport | undefined {
    return this._reports.get(path);
  }

  /** List the artifacts again (and their states). */
  async refresh(): Promise<void> {
    try {
      const listing = await api.listArtifacts();
      this._artifacts = listing.artifacts;
      this._note.textContent = listing.artifacts.length
        ? listing.truncated
          ? 'Too many files: only the first ones were looked at.'
          : ''
        : `Nothing under ${listing.root || 'the root'} that workbench reads (traces, snapshots, dumps, logs).`;
    } catch (error) {
      this._note.textContent = `Cannot list the artifacts: ${(error as Error).message}`;
    }
    this._renderList();
  }

  /** Show `path`'s findings, analyzing it first (with progress) when needed. */
  async select(path: string): Promise<void> {
    this._selected = path;
    this.addClass('jp-mod-hasDetails');
    this._renderList();
    this._list.querySelector('.jp-mod-selected')?.scrollIntoView?.({ block: 'nearest' });
    this._details.replaceChildren(element('div', 'jp-Workbench-message', `Analyzing ${path}…`));
    this._details.scrollTop = 0;
    try {
      let status = await api.analyze(path);
      while (status.state === 'running') {
        this._setStatus(path, status);
        await new Promise(resolve => setTimeout(resolve, STATUS_EVERY_MS));
        if (this._selected !== path) {
          return;
        }
        status = await api.status(path);
      }
      this._setStatus(path, status);
      if (status.state === 'error') {
        this._showError(path, status.error ?? 'the analysis failed');
        return;
      }
      const report = await api.report(path);
      this._reports.delete(path);
      this._reports.set(path, report);
      while (this._reports.size > KEEP_REPORTS) {
        this._reports.delete(this._reports.keys().next().value as string);
      }
      if (this._selected === path) {
        this._renderList();
        this._renderReport(path, report);
      }
    } catch (error) {
      this._showError(path, (error as Error).message);
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._timer = window.setInterval(() => void this.refresh(), LIST_EVERY_MS);
  }

  protected onBeforeHide(msg: Message): void {
    window.clearInterval(this._timer);
    super.onBeforeHide(msg);
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  private _setStatus(path: string, status: IStatus): void {
    const artifact = this._artifacts.find(a => a.path === path);
    if (artifact) {
      artifact.status = status;
      this._renderList();
    }
  }

  private _renderList(): void {
    this._list.replaceChildren(...this._artifacts.map(a => this._item(a)));
  }

  private _item(artifact: IArtifact): HTMLLIElement {
    const item = element('li', 'jp-Workbench-item');
    item.dataset.path = artifact.path;
    item.title = `${artifact.path}\n${artifact.files} file(s), ${sizeText(artifact.size)}`;
    item.classList.toggle('jp-mod-selected', artifact.path === this._selected);
    const slash = artifact.path.lastIndexOf('/');
    const name = element('div', 'jp-Workbench-name', artifact.path.slice(slash + 1) + (artifact.folder ? '/' : ''));
    const label = artifactLabel(artifact, this._reports.get(artifact.path));
    const where = element('div', 'jp-Workbench-where', `${label} · ${artifact.path.slice(0, slash + 1) || './'}`);
    item.append(name, where, this._status(artifact.status));
    item.addEventListener('click', () => void this.select(artifact.path));
    return item;
  }

  private _status(status: IStatus): HTMLElement {
    const node = element('div', `jp-Workbench-status jp-mod-${status.state}`);
    node.dataset.state = status.state;
    if (status.state === 'done' && status.findings) {
      const counts = SEVERITIES.filter(s => status.findings?.[s]);
      node.append(...counts.map(s => element('span', `jp-Workbench-badge jp-mod-${s}`, `${status.findings?.[s]} ${s}`)));
      if (!counts.length) {
        node.textContent = statusText(status);
      }
      return node;
    }
    node.textContent = statusText(status);
    if (status.state === 'running') {
      const bar = element('div', 'jp-Workbench-progress');
      const done = element('div');
      done.style.width = `${Math.round((status.fraction ?? 0) * 100)}%`;
      bar.append(done);
      node.append(bar);
    }
    return node;
  }

  private _showError(path: string, message: string): void {
    if (this._selected === path) {
      this._details.replaceChildren(element('div', 'jp-Workbench-message jp-mod-error', message));
    }
  }

  private _renderReport(path: string, report: IReport): void {
    const header = element('div', 'jp-Workbench-reportHeader');
    header.append(
      element('span', 'jp-Workbench-heading jp-Workbench-path', path),
      button('Open dashboard', 'Open (or reopen) the notebook named after this artifact that shows its full dashboard', () =>
        void this._commands.execute(COMMANDS.openDashboard, { path })
      )
    );
    const findings = report.findings.map(f => this._finding(f));
    const none = element('div', 'jp-Workbench-message', 'No findings: nothing the rules flag in this artifact.');
    this._details.replaceChildren(header, ...(findings.length ? findings : [none]));
  }

  private _finding(finding: IFinding): HTMLElement {
    const node = element('details', `jp-Workbench-finding jp-mod-${finding.severity}`);
    node.dataset.id = finding.id;
    const summary = element('summary');
    summary.append(
      element('span', `jp-Workbench-badge jp-mod-${finding.severity}`, finding.severity),
      element('span', 'jp-Workbench-title', finding.title)
    );
    const facts = element('div', 'jp-Workbench-facts', [finding.id, finding.category, gainText(finding.estimated_gain)].filter(Boolean).join(' · '));
    const method = element('div', 'jp-Workbench-method', String(finding.estimated_gain.method ?? ''));
    const fix = element('div', 'jp-Workbench-fix');
    const code = element('pre', 'jp-Workbench-code', finding.fix.code);
    const links = docsLinks(finding.fix).map(href => {
      const link = element('a', '', href.replace(/^https?:\/\//, ''));
      link.href = href;
      link.target = '_blank';
      link.rel = 'noopener';
      return link;
    });
    fix.append(
      element('div', 'jp-Workbench-fixSummary', finding.fix.summary),
      code,
      button('Insert fix into notebook', 'Insert this code below the active cell of the current notebook', () =>
        void this._commands.execute(COMMANDS.insertFix, { code: finding.fix.code })
      ),
      ...links
    );
    node.append(summary, facts, method, this._evidence(finding.evidence), fix);
    return node;
  }

  private _evidence(evidence: Record<string, unknown>): HTMLElement {
    const node = element('div', 'jp-Workbench-evidence');
    for (const item of evidenceItems(evidence)) {
      if (item.kind === 'value') {
        const row = element('div', 'jp-Workbench-evidenceRow');
        row.append(element('span', 'jp-Workbench-key', item.key), element('span', 'jp-Workbench-value', item.text));
        node.append(row);
        continue;
      }
      const table = element('table', 'jp-Workbench-table');
      const head = element('tr');
      head.append(...item.columns.map(c => element('th', '', c)));
      table.append(head, ...item.rows.map(cells => {
        const row = element('tr');
        row.append(...cells.map(c => element('td', '', c)));
        return row;
      }));
      node.append(element('div', 'jp-Workbench-key', item.key), table);
    }
    return node;
  }

  private _commands: CommandRegistry;
  private _artifacts: IArtifact[] = [];
  private _reports = new Map<string, IReport>();
  private _selected: string | null = null;
  private _timer = 0;
  private _list: HTMLUListElement;
  private _details: HTMLDivElement;
  private _note = element('div', 'jp-Workbench-note');
}
