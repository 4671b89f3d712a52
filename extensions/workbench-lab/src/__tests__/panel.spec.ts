import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { IReport } from '../model';
import { COMMANDS, WorkbenchPanel } from '../panel';

jest.mock('../api');
const mocked = api as jest.Mocked<typeof api>;

const REPORT: IReport = {
  schema: 'workbench.report/1',
  inputs: [{ path: 'naive.json.gz', kind: 'kineto_trace' }],
  findings: [
    {
      id: 'fp32-matmul',
      title: '79% of GPU kernel time is float32 GEMMs without tensor cores',
      severity: 'critical',
      category: 'precision',
      input: 'naive.json.gz',
      evidence: { device: 'NVIDIA H100 80GB HBM3', kernels: [{ name: 'sgemm', count: 57 }] },
      estimated_gain: { time_ms_per_step: 38.116, pct: 43.19, method: 'GEMM time x 2/3' },
      fix: { summary: 'Allow TF32', code: 'import torch\ntorch.backends.cuda.matmul.allow_tf32 = True', docs: [] }
    }
  ]
};

function makePanel() {
  const commands = { execute: jest.fn() };
  const contents = { fileChanged: new Signal<unknown, unknown>({}) };
  const panel = new WorkbenchPanel(commands as any, contents as any);
  Widget.attach(panel, document.body);
  return { panel, commands, contents };
}

beforeEach(() => {
  jest.resetAllMocks();
  mocked.listArtifacts.mockResolvedValue({
    root: 'runs',
    truncated: false,
    artifacts: [
      {
        path: 'naive.json.gz', kind: 'kineto_trace', folder: false, files: 1, size: 1474175, mtime: 0,
        status: { state: 'not_analyzed' }
      },
      {
        path: 'job/ranks', kind: 'kineto_trace_ranks', folder: true, files: 4, size: 100, mtime: 0,
        status: { state: 'running', label: 'rank-2.json.gz', fraction: 0.5 }
      }
    ]
  });
});

describe('WorkbenchPanel', () => {
  it('lists the artifacts with their status', async () => {
    const { panel } = makePanel();
    await panel.refresh();
    const items = panel.node.querySelectorAll('.jp-Workbench-item');
    expect(items).toHaveLength(2);
    expect(items[0].querySelector('.jp-Workbench-status')!.textContent).toBe('not analyzed');
    expect(items[1].querySelector('.jp-Workbench-name')!.textContent).toBe('ranks/');
    expect(items[1].querySelector<HTMLElement>('.jp-Workbench-progress > div')!.style.width).toBe('50%');
    panel.dispose();
  });

  it('analyzes a clicked artifact, shows its findings and inserts a fix', async () => {
    mocked.analyze.mockResolvedValue({ state: 'done', findings: { critical: 1, warning: 0, info: 0 } });
    mocked.report.mockResolvedValue(REPORT);
    const { panel, commands } = makePanel();
    await panel.refresh();
    await panel.select('naive.json.gz');
    expect(mocked.analyze).toHaveBeenCalledWith('naive.json.gz');
    const badge = panel.node.querySelector('.jp-Workbench-item.jp-mod-selected .jp-Workbench-badge');
    expect(badge!.textContent).toBe('1 critical');
    const finding = panel.node.querySelector('.jp-Workbench-finding')!;
    expect(finding.querySelector('.jp-Workbench-title')!.textContent).toBe(REPORT.findings[0].title);
    expect(finding.querySelector('.jp-Workbench-facts')!.textContent).toBe(
      'fp32-matmul · precision · 38.1 ms/step (43.2 % of the time)'
    );
    expect(finding.querySelector('.jp-Workbench-table td')!.textContent).toBe('sgemm');
    const buttons = Array.from(finding.querySelectorAll('button'));
    buttons.find(b => b.textContent === 'Insert fix into notebook')!.click();
    expect(commands.execute).toHaveBeenCalledWith(COMMANDS.insertFix, { code: REPORT.findings[0].fix.code });
    panel.dispose();
  });

  it('shows the findings in an area of their own and keeps the report for the dashboard', async () => {
    mocked.analyze.mockResolvedValue({ state: 'done', findings: { critical: 1, warning: 0, info: 0 } });
    mocked.report.mockResolvedValue(REPORT);
    const { panel, commands } = makePanel();
    await panel.refresh();
    expect(panel.hasClass('jp-mod-hasDetails')).toBe(false);
    await panel.select('naive.json.gz');
    expect(panel.hasClass('jp-mod-hasDetails')).toBe(true);
    const details = panel.node.querySelector('.jp-Workbench-details')!;
    expect(details.parentElement).toBe(panel.node);
    expect(panel.node.querySelector('.jp-Workbench-list')!.contains(details)).toBe(false);
    expect(details.querySelector('.jp-Workbench-path')!.textContent).toBe('naive.json.gz');
    expect(panel.reportOf('naive.json.gz')).toBe(REPORT);
    Array.from(details.querySelectorAll('button')).find(b => b.textContent === 'Open dashboard')!.click();
    expect(commands.execute).toHaveBeenCalledWith(COMMANDS.openDashboard, { path: 'naive.json.gz' });
    panel.dispose();
  });

  it('shows an analysis error in place of the findings', async () => {
    mocked.analyze.mockResolvedValue({ state: 'error', error: 'naive.json.gz: truncated gzip file' });
    const { panel } = makePanel();
    await panel.refresh();
    await panel.select('naive.json.gz');
    expect(panel.node.querySelector('.jp-Workbench-details')!.textContent).toBe('naive.json.gz: truncated gzip file');
    expect(mocked.report).not.toHaveBeenCalled();
    panel.dispose();
  });

  it('lists again when a file changes', async () => {
    const { panel, contents } = makePanel();
    contents.fileChanged.emit({});
    expect(mocked.listArtifacts).toHaveBeenCalled();
    panel.dispose();
  });
});
