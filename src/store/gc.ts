/**
 * Image store garbage collection (rkt image gc): trees that no pod references, images not
 * used within the grace period that no pod references, stale staging and orphaned blobs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PodManifest } from '../image/types.js';
import type { ImageInfo, ImageStore } from './imagestore.js';
import { PODS_DIR, POD_MANIFEST_FILE } from '../pod-layout.js';

/** Image IDs named by the pod manifests of every pod in <dir>/pods/<state>/<uuid>/pod. */
export function podImageIds(dataDir: string): Set<string> {
  const ids = new Set<string>();
  const podsDir = path.join(dataDir, PODS_DIR);
  const list = (dir: string): string[] => {
    try { return fs.readdirSync(dir); } catch { return []; }
  };
  for (const state of list(podsDir)) {
    for (const uuid of list(path.join(podsDir, state))) {
      try {
        const pod = JSON.parse(fs.readFileSync(path.join(podsDir, state, uuid, POD_MANIFEST_FILE), 'utf8')) as PodManifest;
        for (const app of pod.apps ?? []) if (app.image?.id) ids.add(app.image.id);
      } catch {
        // no manifest yet (embryo) or gone meanwhile
      }
    }
  }
  return ids;
}

/** A pod manifest may hold a full ID or a prefix of one. */
function referenced(id: string, refs: Set<string>): boolean {
  for (const r of refs) if (id.startsWith(r)) return true;
  return false;
}

export interface GcPlan { trees: string[]; images: ImageInfo[] }

/** What image gc removes: unreferenced trees, and unreferenced images unused since `cutoff`. */
export function planImageGc(store: ImageStore, dataDir: string, cutoff: Date): GcPlan {
  const refs = podImageIds(dataDir);
  return {
    trees: store.treeIds().filter((id) => !referenced(id, refs)),
    images: store.list().filter((i) => !referenced(i.id, refs) && Date.parse(i.lastUsed) < cutoff.getTime()),
  };
}
