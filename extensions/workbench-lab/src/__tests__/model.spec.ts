import {
  artifactLabel,
  dashboardNotebook,
  dashboardPath,
  dashboardSource,
  docsLinks,
  evidenceItems,
  gainText,
  IReport,
  kindLabel,
  offerSource,
  sizeText,
  statusText
} from '../model';

describe('statusText', () => {
  it('names each state', () => {
    expect(statusText({ state: 'not_analyzed' })).toBe('not analyzed');
    expect(statusText({ state: 'running', label: 'rank-0.json.gz', fraction: 0.424 })).toBe(
      'analyzing rank-0.json.gz 42%'
    );
    expect(statusText({ state: 'done', findings: { critical: 2, warning: 0, info: 1 } })).toBe(
      '2 critical · 1 info'
    );
    expect(statusText({ state: 'done', findings: { critical: 0, warning: 0, info: 0 } })).toBe('no findings');
    expect(statusText({ state: 'error', error: 'x.log: empty file' })).toBe('error: x.log: empty file');
  });
});

describe('gainText', () => {
  it('shows time per step and share, or the share alone', () => {
    expect(gainText({ time_ms_per_step: 38.116, pct: 43.19, method: 'm' })).toBe('38.1 ms/step (43.2 % of the time)');
    expect(gainText({ time_ms: 12.04, pct: 3.0, method: 'm' })).toBe('12.0 ms (3.0 % of the time)');
    expect(gainText({ pct: 4.25, method: 'm' })).toBe('4.3 % of the time');
    expect(gainText({ method: 'm' })).toBe('');
  });

  it('shows a memory gain in bytes, never as a share of the time', () => {
    expect(gainText({ memory_bytes: 2 * 1024 ** 3, memory_pct: 5.04, method: 'm' })).toBe('2.0 GiB of memory (5.0 %)');
  });

  it('says what fixing a failure prevents, not a percentage', () => {
    expect(gainText({ pct: 100.0, method: 'm', prevents: 'the OOM that stopped the run' })).toBe(
      'prevents the OOM that stopped the run'
    );
  });
});

describe('dashboardSource', () => {
  it('calls workbench.show with the path as a Python string', () => {
    expect(dashboardSource('h100/train "naive".json.gz')).toBe(
      'import workbench\n\nworkbench.show("h100/train \\"naive\\".json.gz")'
    );
  });
});

describe('evidenceItems', () => {
  it('turns lists of records into tables and the rest into values', () => {
    const items = evidenceItems({
      device: 'NVIDIA H100 80GB HBM3',
      input_shape: [8, 512],
      kernels: [
        { name: 'sgemm', count: 57 },
        { name: 'gemv', ms: 1.5 }
      ]
    });
    expect(items).toEqual([
      { key: 'device', kind: 'value', text: 'NVIDIA H100 80GB HBM3' },
      { key: 'input_shape', kind: 'value', text: '8, 512' },
      {
        key: 'kernels',
        kind: 'table',
        columns: ['name', 'count', 'ms'],
        rows: [
          ['sgemm', '57', ''],
          ['gemv', '', '1.5']
        ]
      }
    ]);
  });

  it('turns records by key into a table keyed in its first column', () => {
    expect(evidenceItems({ ranks: { '0': { seq: 5, state: 'scheduled' }, '1': { seq: 6 } } })).toEqual([
      {
        key: 'ranks',
        kind: 'table',
        columns: ['ranks', 'seq', 'state'],
        rows: [
          ['0', '5', 'scheduled'],
          ['1', '6', '']
        ]
      }
    ]);
  });
});

describe('labels', () => {
  it('words kinds, sizes and docs', () => {
    expect(kindLabel('kineto_trace_ranks')).toBe('ranks of a job');
    expect(kindLabel('some_new_kind')).toBe('some new kind');
    expect(sizeText(1474175)).toBe('1.4 MiB');
    expect(sizeText(512)).toBe('512 B');
    expect(docsLinks({ summary: '', code: '', docs: 'https://a' })).toEqual(['https://a']);
  });
});

describe('artifactLabel', () => {
  it('names memory artifacts by what the server read in their first bytes', () => {
    const memory = (reads_as: string[]) => artifactLabel({ kind: 'memory', reads_as });
    expect(memory(['memory_timeline'])).toBe('memory timeline export');
    expect(memory(['memory_snapshot'])).toBe('allocator snapshot');
    expect(memory(['oom_message'])).toBe('OOM message');
    expect(memory(['memory_snapshot', 'oom_message'])).toBe('allocator snapshot + OOM message');
    expect(artifactLabel({ kind: 'memory' })).toBe('memory artifacts');
    expect(artifactLabel({ kind: 'kineto_trace', reads_as: [] })).toBe('trace');
  });

  it('names an analyzed artifact by the kinds of its report', () => {
    const report: IReport = {
      schema: 'workbench.report/1',
      inputs: [
        { path: 'oom/a.snapshot.pickle.gz', kind: 'memory_snapshot' },
        { path: 'oom/b.oom.txt', kind: 'oom_message' }
      ],
      findings: []
    };
    expect(artifactLabel({ kind: 'memory', reads_as: ['oom_message'] }, report)).toBe(
      'allocator snapshot + OOM message'
    );
  });
});

describe('the dashboard notebook', () => {
  it('is named after the artifact, at the root', () => {
    expect(dashboardPath('train_naive.pt.trace.json.gz')).toBe('train_naive.dashboard.ipynb');
    expect(dashboardPath('traces/h100/oom_capacity')).toBe('traces-h100-oom_capacity.dashboard.ipynb');
    expect(dashboardPath('runs/job/')).toBe('runs-job.dashboard.ipynb');
  });

  it('holds one cell showing the artifact', () => {
    const notebook = dashboardNotebook('a.json.gz', 'python3') as any;
    expect(notebook.nbformat).toBe(4);
    expect(notebook.metadata.kernelspec.name).toBe('python3');
    expect(notebook.cells.map((c: any) => c.source)).toEqual([dashboardSource('a.json.gz')]);
  });

  it("hands the server's report to the kernel as a Python string literal", () => {
    const report: IReport = { schema: 'workbench.report/1', inputs: [{ path: 'a "b".json', kind: 'kineto_trace' }], findings: [] };
    const code = offerSource('a "b".json', report);
    const literal = code.split('\n')[1].match(/offer_report\((".*"), (".*")\)$/)!;
    // a JSON string literal with only the escapes Python shares: its value is the report's JSON
    expect(JSON.parse(JSON.parse(literal[2]))).toEqual(report);
    expect(JSON.parse(literal[1])).toBe('a "b".json');
  });
});

describe('evidenceItems with sizes', () => {
  it('says a size once when the evidence has it in words too', () => {
    const items = evidenceItems({ requested_bytes: 5368709120, requested: '5.00 GiB', free_bytes: 12 });
    expect(items.map(i => i.key)).toEqual(['requested', 'free_bytes']);
  });
});
