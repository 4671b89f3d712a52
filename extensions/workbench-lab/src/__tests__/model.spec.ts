import {
  dashboardSource,
  docsLinks,
  evidenceItems,
  gainText,
  kindLabel,
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
    expect(gainText({ time_ms_per_step: 38.116, pct: 43.19, method: 'm' })).toBe('38.1 ms/step (43.2 %)');
    expect(gainText({ pct: 100.0, method: 'm' })).toBe('100.0 %');
    expect(gainText({ method: 'm' })).toBe('');
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
