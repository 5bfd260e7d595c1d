/**
 * The states of a pod's apps as rkt's app API reports them (stage0/app.ts makes them): created
 * (rkt/created/NAME), running (rkt/pid/NAME), exited (rkt/status/NAME). Light: list and
 * status --format=json import it for every pod.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PodManifest } from '../image/types.js';
import type { Pod } from './pod.js';
import { appCreatedFile, appPidFile, appStatusFile, POD_MANIFEST_FILE } from '../pod-layout.js';

const mtimeOf = (file: string) => fs.statSync(file, { throwIfNoEntry: false })?.mtime;

export type AppState = 'created' | 'running' | 'exited';

export interface AppInfo {
  name: string;
  state: AppState;
  imageName: string;
  imageId: string;
  created?: Date;
  started?: Date;
  finished?: Date;
  exitCode?: number;
}

/** The apps of a pod and their states, from its manifest and its rkt/ dir (readable by group rkt). */
export function listApps(pod: Pod): AppInfo[] {
  let manifest: PodManifest;
  try { manifest = JSON.parse(fs.readFileSync(path.join(pod.dir, POD_MANIFEST_FILE), 'utf8')) as PodManifest; } catch { return []; }
  return manifest.apps.map((a) => {
    const code = Number((() => { try { return fs.readFileSync(path.join(pod.dir, appStatusFile(a.name)), 'utf8').trim(); } catch { return ''; } })() || NaN);
    const started = mtimeOf(path.join(pod.dir, appPidFile(a.name)));
    const exited = Number.isInteger(code);
    const out: AppInfo = {
      name: a.name,
      state: exited ? 'exited' : started ? 'running' : 'created',
      imageName: a.image.name ?? '',
      imageId: a.image.id ?? '',
      created: mtimeOf(path.join(pod.dir, appCreatedFile(a.name))),
      started,
    };
    if (exited) { out.exitCode = code; out.finished = mtimeOf(path.join(pod.dir, appStatusFile(a.name))); }
    return out;
  });
}

