/**
 * What the server extension sends (`/workbench/api/`) and how the panel words it.
 * Pure functions: no DOM, no JupyterLab, so that they are unit-tested directly.
 */

export type Severity = 'critical' | 'warning' | 'info';
export const SEVERITIES: Severity[] = ['critical', 'warning', 'info'];

export interface IStatus {
  state: 'not_analyzed' | 'running' | 'done' | 'error';
  label?: string;
  fraction?: number;
  findings?: Record<string, number>;
  error?: string;
  seconds?: number;
}

export interface IArtifact {
  path: string;
  kind: string;
  folder: boolean;
  files: number;
  size: number;
  mtime: number;
  reads_as?: string[];
  status: IStatus;
}

export interface IListing {
  root: string;
  truncated: boolean;
  artifacts: IArtifact[];
}

export interface IFix {
  summary: string;
  code: string;
  docs: string | string[];
}

export interface IFinding {
  id: string;
  title: string;
  severity: Severity;
  category: string;
  input: string;
  evidence: Record<string, unknown>;
  estimated_gain: Record<string, unknown>;
  fix: IFix;
}

export interface IReport {
  schema: string;
  inputs: { path: string; kind: string }[];
  findings: IFinding[];
}

const KIND_LABELS: Record<string, string> = {
  kineto_trace: 'trace',
  kineto_trace_ranks: 'ranks of a job',
  nsys_sqlite: 'Nsight Systems export',
  flight_recorder: 'hang: dumps and logs',
  memory: 'memory artifacts',
  memory_snapshot: 'allocator snapshot',
  oom_message: 'OOM message',
  memory_timeline: 'memory timeline export',
  capture_run: 'capture run',
  xctrace_export: 'Metal System Trace export'
};

/** A kind as the panel names it (the report's kind name when it has no label). */
export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind.replace(/_/g, ' ');
}

/**
 * What an artifact is, as the panel names it. The server lists every memory artifact as `memory`,
 * with the kinds its files' first bytes say they are (`reads_as`: allocator snapshot, memory
 * timeline, OOM message); once analyzed, by the kinds of its report.
 */
export function artifactLabel(artifact: Pick<IArtifact, 'kind' | 'reads_as'>, report?: IReport): string {
  const kinds = report?.inputs.length
    ? report.inputs.map(i => i.kind)
    : artifact.reads_as?.length
      ? artifact.reads_as
      : [artifact.kind];
  return [...new Set(kinds.map(kindLabel))].join(' + ');
}

/** One line for an artifact's analysis state. */
export function statusText(status: IStatus): string {
  switch (status.state) {
    case 'running': {
      const percent = Math.round((status.fraction ?? 0) * 100);
      return status.label ? `analyzing ${status.label} ${percent}%` : 'analyzing';
    }
    case 'done': {
      const counts = SEVERITIES.filter(s => status.findings?.[s]).map(s => `${status.findings?.[s]} ${s}`);
      return counts.length ? counts.join(' · ') : 'no findings';
    }
    case 'error':
      return `error: ${status.error ?? 'unknown'}`;
    default:
      return 'not analyzed';
  }
}

/**
 * The estimated gain of a finding, as the text report words it: `38.1 ms/step (43.2 % of the time)`,
 * `12.0 ms (...)`, the share alone, or for a failure (an OOM, a hang: no speed-up) what the fix prevents.
 */
export function gainText(gain: Record<string, unknown>): string {
  if (typeof gain.prevents === 'string') {
    return `prevents ${gain.prevents}`;
  }
  if (typeof gain.memory_bytes === 'number') {
    return `${sizeText(gain.memory_bytes)} of memory (${Number(gain.memory_pct ?? 0).toFixed(1)} %)`;
  }
  const share = typeof gain.pct === 'number' ? `${gain.pct.toFixed(1)} % of the time` : '';
  for (const [key, unit] of [['time_ms_per_step', 'ms/step'], ['time_ms', 'ms']]) {
    const value = gain[key];
    if (typeof value === 'number') {
      return share ? `${value.toFixed(1)} ${unit} (${share})` : `${value.toFixed(1)} ${unit}`;
    }
  }
  return share;
}

/** Bytes as a short size: `1.4 MiB`. */
export function sizeText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

/** The Python of the dashboard notebook's first cell (a JSON string is a valid Python literal here). */
export function dashboardSource(path: string): string {
  return `import workbench\n\nworkbench.show(${JSON.stringify(path)})`;
}

/**
 * The dashboard notebook of an artifact, at the root (where its path is relative to) and named
 * after it: `traces/run1/train.pt.trace.json.gz` -> `traces-run1-train.dashboard.ipynb`.
 */
export function dashboardPath(path: string): string {
  const parts = path.replace(/^\/+|\/+$/g, '').split('/');
  const last = parts.pop() ?? '';
  const stem = last.replace(/^\.+/, '').split('.')[0] || last;
  return [...parts, stem].join('-') + '.dashboard.ipynb';
}

/** A new dashboard notebook: one code cell showing the artifact, for the given kernel. */
export function dashboardNotebook(path: string, kernelName: string): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: kernelName ? { kernelspec: { name: kernelName, display_name: kernelName, language: 'python' } } : {},
    cells: [{ cell_type: 'code', id: 'workbench-dashboard', metadata: {}, source: dashboardSource(path), outputs: [], execution_count: null }]
  };
}

/**
 * Python that hands the panel's copy of the server's report to the kernel, so that
 * `workbench.show(path)` shows it instead of analyzing again (while the files are unchanged).
 * JSON.stringify of the report's JSON text is a valid Python string literal.
 */
export function offerSource(path: string, report: IReport): string {
  return (
    'import workbench.notebook.sources as _workbench_sources\n' +
    `_workbench_sources.offer_report(${JSON.stringify(path)}, ${JSON.stringify(JSON.stringify(report))})\n` +
    'del _workbench_sources'
  );
}

/** The docs links of a fix, whether the report holds one or several. */
export function docsLinks(fix: IFix): string[] {
  return (Array.isArray(fix.docs) ? fix.docs : [fix.docs]).filter(d => !!d);
}

export type EvidenceItem =
  | { key: string; kind: 'value'; text: string }
  | { key: string; kind: 'table'; columns: string[]; rows: string[][] };

/**
 * A finding's evidence as labelled values and small tables: a list of records, or records by
 * key (per rank, say), whose keys then fill the first column.
 */
export function evidenceItems(evidence: Record<string, unknown>, maxRows = 10): EvidenceItem[] {
  // a byte count beside the same size in words (`requested_bytes` beside `requested: "5.00 GiB"`) is said once
  const shown = Object.entries(evidence).filter(
    ([key]) => !(key.endsWith('_bytes') && typeof evidence[key.slice(0, -'_bytes'.length)] === 'string')
  );
  return shown.map(([key, value]): EvidenceItem => {
    if (Array.isArray(value) && value.length && value.every(isRecord)) {
      return { key, kind: 'table', ...table(value as Record<string, unknown>[], maxRows) };
    }
    const keyed = isRecord(value) ? Object.entries(value) : [];
    if (keyed.length && keyed.every(([, v]) => isRecord(v))) {
      const records = keyed.map(([k, v]) => ({ [key]: k, ...(v as Record<string, unknown>) }));
      return { key, kind: 'table', ...table(records, maxRows) };
    }
    return { key, kind: 'value', text: valueText(value) };
  });
}

function table(records: Record<string, unknown>[], maxRows: number): { columns: string[]; rows: string[][] } {
  const columns = [...new Set(records.flatMap(r => Object.keys(r)))];
  return { columns, rows: records.slice(0, maxRows).map(r => columns.map(c => valueText(r[c]))) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (Array.isArray(value) && value.every(v => typeof v !== 'object' || v === null)) {
    return value.join(', ');
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
