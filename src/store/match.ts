/**
 * Finding images in the store by name, labels or dependency: shared by the store itself and
 * the tree renderer (which imports no store code at run time, so neither imports the other).
 */
import type { Dependency, Label } from '../image/types.js';
import { fail } from '../util/errors.js';
import type { ImageInfo, ImageStore } from './imagestore.js';

export function notInStore(ref: string): never {
  return fail(`no image found for "${ref}" in the local store: fetch it with "rkt fetch ${ref}"`);
}

/** Images matching name and every requested label, best first (rkt's rule: a `latest`
 *  image wins when no version is asked for, then the most recent import). */
export function bestMatches(infos: ImageInfo[], name: string, labels: Record<string, string>): ImageInfo[] {
  const wanted = Object.entries(labels).filter(([, value]) => value !== '');
  const hits = infos.filter((i) => i.name === name && wanted.every(([k, v]) => i.labels.some((l) => l.name === k && l.value === v)));
  const preferLatest = !wanted.some(([k]) => k === 'version');
  return hits.sort((a, b) => {
    if (preferLatest && a.latest !== b.latest) return a.latest ? -1 : 1;
    // ISO times order as strings; localeCompare would load ICU's collator (slow start-up).
    return b.importTime < a.importTime ? -1 : b.importTime > a.importTime ? 1 : 0;
  });
}

export function labelRecord(labels: Label[] | undefined): Record<string, string> {
  return Object.fromEntries((labels ?? []).map((l) => [l.name, l.value]));
}

/** The stored image that satisfies a dependency, if any. */
export function findDependency(store: ImageStore, dep: Dependency): ImageInfo | undefined {
  const images = store.list();
  if (dep.imageID) return images.find((i) => i.id.startsWith(dep.imageID!));
  return bestMatches(images, dep.imageName, labelRecord(dep.labels))[0];
}

/** A sort order on ISO times, newest first (absent last), without ICU's collator. */
export function newestFirst(a: string | undefined, b: string | undefined): number {
  const x = a ?? ''; const y = b ?? '';
  return y < x ? -1 : y > x ? 1 : 0;
}
