/**
 * Calls to the server extension under `<base_url>workbench/api/`, authenticated like every
 * JupyterLab request (the server answers 403 without Jupyter's token or cookie).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IListing, IReport, IStatus } from './model';

async function request<T>(endpoint: string, path?: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const query = path === undefined ? '' : URLExt.objectToQueryString({ path });
  const url = URLExt.join(settings.baseUrl, 'workbench', 'api', endpoint) + query;
  const response = await ServerConnection.makeRequest(url, init, settings);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.message || `${response.status} ${response.statusText}`);
  }
  return body as T;
}

/** The analyzable artifacts under the server's root, with their status. */
export function listArtifacts(): Promise<IListing> {
  return request<IListing>('artifacts');
}

/** Start analyzing `path` (no-op when its report is cached). */
export async function analyze(path: string): Promise<IStatus> {
  const body = await request<{ status: IStatus }>('analyze', path, { method: 'POST' });
  return body.status;
}

/** The analysis state of `path`, with progress while it runs. */
export async function status(path: string): Promise<IStatus> {
  const body = await request<{ status: IStatus }>('status', path);
  return body.status;
}

/** The `workbench.report/1` document of `path`. */
export function report(path: string): Promise<IReport> {
  return request<IReport>('report', path);
}
