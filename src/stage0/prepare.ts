/**
 * stage0 prepare: fetch the images, create the pod, resolve every app (exec, user,
 * environment, isolators, volumes) and write the pod dir. Shared by `run` and `prepare`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fail } from '../util/errors.js';
import { info } from '../util/log.js';
import type { GlobalOptions } from '../options.js';
import type { AppSpec, PodSpec } from './spec.js';
import type { PortForward } from '../net/netflag.js';
import { parsePortFlag } from '../net/netflag.js';
import type { Host } from '../host/host.js';
import type { EventHandler, ImageManifest, Isolator, PodManifest, PodVolume, Port, RuntimeApp } from '../image/types.js';
import { appNameFromImageName, isACName } from '../image/acname.js';
import { checkOsArch, parsePodManifest } from '../image/manifest.js';
import { resolveAppResources, AppResources } from '../image/isolators.js';
import { fetchImage } from '../fetch/fetcher.js';
import { ImageStore } from '../store/imagestore.js';
import { createPod, Pod, runHolder } from './pod.js';
import { resolveUser, resolveGroup, passwdEntry } from './users.js';
import { buildAppEnv } from './env.js';
import { appMounts, checkHostSources, MountSpec, ResolvedMount } from './volumes.js';
import { kernelTargets, resolveInRootfs } from './rootfs-path.js';
import { configPodPidsLimit } from './limits.js';
import { SeccompSpec, checkSeccompArch, resolveSeccomp } from '../stage1/seccomp/filter.js';
import { makePodPrivateDirs, writePodManifest } from '../store/datadir.js';
import { allocateRange, checkIdsInRange, idmapHelper, probeIdmap, RANGE_COUNT, UidRange } from './userns.js';
import { checkStartOptions } from './validate.js';
import { appRootfs, MASKED_FILE, overlayDir, POD_DIRS, POD_PRIVATE_DIRS, RUNTIME_FILE, STAGE1_DIR, volumeDir } from '../pod-layout.js';

/** Everything stage0 resolved for one app; saved in the pod dir for run-prepared. */
export interface PreparedApp {
  name: string;
  imageId: string;
  imageName: string;
  treeRootfs: string;
  exec: string[];
  env: Array<[string, string]>;
  workingDir: string;
  uid: number;
  gid: number;
  supplementaryGids: number[];
  resources: AppResources;
  /** --pids-limit: the app's own pids.max. */
  pidsLimit?: number;
  /** The seccomp filter; null with --insecure-options=seccomp or `@appc.io/all` (absent in old pods: the default). */
  seccomp?: SeccompSpec | null;
  readOnlyRootfs: boolean;
  /** seedFrom: the image's directory an implicit volume of a Docker image starts as a copy of. */
  mounts: Array<{ volume: string; target: string; readOnly: boolean; seedFrom?: string }>;
  ports: Array<{ name: string; protocol: string; port: number; socketActivated?: boolean }>;
  /** The image's appc event handlers (pre-start, post-stop). */
  eventHandlers?: EventHandler[];
  /** --user-annotation / --user-label K=V: recorded in the pod manifest's app (rkt's api/v1 reports them). */
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
  /** The image says its app speaks sd_notify (annotation appc.io/executor/supports-systemd-notify=true). */
  sdNotify?: boolean;
}

/** The image annotation rkt read: its app sends READY=1 itself. */
export const SD_NOTIFY_ANNOTATION = 'appc.io/executor/supports-systemd-notify';

function supportsNotify(manifest: ImageManifest): boolean {
  return (manifest.annotations ?? []).some((a) => a.name === SD_NOTIFY_ANNOTATION && a.value === 'true');
}

export interface PreparedPod {
  uuid: string;
  apps: PreparedApp[];
  volumes: PodVolume[];
  /** --port of prepare/run, checked against the apps' ports. */
  ports: PortForward[];
  overlay: boolean;
  insecureCapabilities: boolean;
  openPaths: boolean;
}

export { RUNTIME_FILE } from '../pod-layout.js';

export function readPrepared(dir: string): PreparedPod {
  const pod = JSON.parse(fs.readFileSync(path.join(dir, RUNTIME_FILE), 'utf8')) as PreparedPod;
  // Pods prepared by an older rkt kept --port as given.
  pod.ports = (pod.ports as Array<PortForward | string>).map((p) => (typeof p === 'string' ? parsePortFlag(p) : p));
  return pod;
}

function appExec(image: ImageManifest, a: AppSpec): string[] {
  const base = a.exec !== undefined ? [a.exec] : [...(image.app?.exec ?? [])];
  const exec = [...base, ...a.args];
  if (exec.length === 0) fail(`image ${image.name} has no app to run: give one with --exec`);
  if (exec[0].includes('=')) fail(`exec path "${exec[0]}" must not contain "="`);
  return exec;
}

/** The caller's environment, without what bin/rkt added for stage0 (the hand-off fd). */
function callerEnv(): NodeJS.ProcessEnv {
  const { RKT_HANDOFF_FD: _handoff, ...env } = process.env;
  return env;
}

/** Mount targets resolved inside the image rootfs (never through the host's symlinks). */
function preparedMounts(treeRootfs: string, mounts: ResolvedMount[]): PreparedApp['mounts'] {
  return mounts.map((m) => {
    const target = resolveInRootfs(treeRootfs, m.target);
    return { volume: m.volume.name, target, readOnly: m.readOnly, ...(m.seed ? { seedFrom: path.join(treeRootfs, target) } : {}) };
  });
}

/** rkt's test for an image converted from Docker (docker2aci writes this annotation). */
function fromDocker(image: ImageManifest): boolean {
  return (image.annotations ?? []).some((a) => a.name === 'appc.io/docker/repository');
}

function preparedPorts(ports: Port[] | undefined): PreparedApp['ports'] {
  return (ports ?? []).map((p) => ({ name: p.name, protocol: p.protocol, port: p.port, ...(p.socketActivated ? { socketActivated: true } : {}) }));
}

/** The app's seccomp filter (null: none), checked before the pod exists. */
function appSeccomp(isolators: Isolator[] | undefined, flag: string | undefined, globals: GlobalOptions): SeccompSpec | null {
  const spec = resolveSeccomp(isolators, flag, globals.insecure.has('seccomp'));
  if (spec) checkSeccompArch();
  return spec ?? null;
}

export interface ResolveContext {
  globals: GlobalOptions;
  store: ImageStore;
  volumes: PodVolume[];
  podMounts: MountSpec[];
  fileEnv: Map<string, string>;
  setEnv: Map<string, string>;
  inheritEnv: boolean;
}

export async function resolveApp(ctx: ResolveContext, a: AppSpec, imageId: string, names: Set<string>): Promise<PreparedApp> {
  const manifest = ctx.store.manifest(imageId);
  checkOsArch(manifest);
  const name = a.name ?? appNameFromImageName(manifest.name);
  if (!isACName(name)) fail(`invalid app name "${name}": use lower case alphanumerics and dashes (--name)`);
  if (names.has(name)) fail(`app name "${name}" is used twice in this pod: give one of them --name=OTHER`);
  names.add(name);
  const treeRootfs = await ctx.store.treeRootfs(imageId);
  kernelTargets(treeRootfs); // an image whose /proc, /sys or /dev cannot be mounted is refused before the pod exists
  const app = manifest.app;
  const user = a.user ?? app?.user ?? '0';
  const group = a.group ?? app?.group ?? '0';
  const uid = resolveUser(treeRootfs, user);
  const gid = resolveGroup(treeRootfs, group);
  const env = buildAppEnv({
    appName: name,
    inherit: ctx.inheritEnv ? callerEnv() : undefined,
    image: app?.environment,
    fileEnv: ctx.fileEnv,
    setEnv: ctx.setEnv,
    appEnv: a.environment,
    user: passwdEntry(treeRootfs, uid),
  });
  const resources = resolveAppResources(app?.isolators, a.resources, { allCaps: ctx.globals.insecure.has('capabilities') });
  const seccomp = appSeccomp(app?.isolators, a.seccomp, ctx.globals);
  const mountSpecs = [...ctx.podMounts, ...a.mounts];
  const mounts: ResolvedMount[] = appMounts(name, app?.mountPoints, mountSpecs, ctx.volumes, fromDocker(manifest));
  const workingDir = a.workingDir ?? app?.workingDirectory ?? '/';
  if (!workingDir.startsWith('/')) fail(`--working-dir "${workingDir}" must be an absolute path`);
  return {
    name,
    imageId,
    imageName: manifest.name,
    treeRootfs,
    exec: appExec(manifest, a),
    env,
    workingDir,
    uid,
    gid,
    supplementaryGids: a.supplementaryGids ?? app?.supplementaryGIDs ?? [],
    resources,
    pidsLimit: a.pidsLimit,
    seccomp,
    readOnlyRootfs: a.readOnlyRootfs,
    mounts: preparedMounts(treeRootfs, mounts),
    ports: preparedPorts(app?.ports),
    sdNotify: supportsNotify(manifest),
    ...(app?.eventHandlers?.length ? { eventHandlers: app.eventHandlers } : {}),
    ...(a.userAnnotations ? { userAnnotations: a.userAnnotations } : {}),
    ...(a.userLabels ? { userLabels: a.userLabels } : {}),
  };
}

export function podManifestOf(pod: PreparedPod): PodManifest {
  const apps: RuntimeApp[] = pod.apps.map((a) => ({
    name: a.name,
    image: { name: a.imageName, id: a.imageId },
    app: {
      exec: a.exec, user: String(a.uid), group: String(a.gid), workingDirectory: a.workingDir, environment: a.env.map(([name, value]) => ({ name, value })),
      ...(a.userAnnotations ? { userAnnotations: a.userAnnotations } : {}),
      ...(a.userLabels ? { userLabels: a.userLabels } : {}),
    },
    readOnlyRootFS: a.readOnlyRootfs,
    mounts: a.mounts.map((m) => ({ volume: m.volume, path: m.target })),
  }));
  // idmap is this rkt's own volume option: not part of the appc pod manifest.
  const volumes = pod.volumes.map(({ idmap: _idmap, ...v }) => v);
  return { acKind: 'PodManifest', acVersion: '0.8.11', apps, volumes };
}

/**
 * Creates per-app overlay dirs (or rootfs copies) and empty-volume dirs. With
 * --private-users, what the pod writes in is owned by its range (shifted by `shift`).
 */
function layoutPodDir(dir: string, pod: PreparedPod, shift = 0): void {
  // Each dir made once: every one costs an inode and a block (about 0.5 ms on a VM disk);
  // overlay/ and volumes/ only for a pod that puts something in them.
  const hasEmpty = pod.volumes.some((v) => v.kind === 'empty');
  makePodPrivateDirs(dir, POD_PRIVATE_DIRS.filter((d) => (d !== 'overlay' || pod.overlay) && (d !== 'volumes' || hasEmpty)));
  for (const sub of POD_DIRS) fs.mkdirSync(path.join(dir, sub));
  const masked = path.join(dir, MASKED_FILE);
  fs.writeFileSync(masked, '');
  fs.chmodSync(masked, 0);
  for (const app of pod.apps) {
    const rootfs = path.join(dir, appRootfs(app.name));
    if (pod.overlay) {
      // The app's mount point is made at run time on the pod's own tmpfs (PodSkeleton), mounted here.
      fs.mkdirSync(path.join(dir, STAGE1_DIR, 'rootfs'), { recursive: true });
      fs.mkdirSync(path.join(dir, overlayDir(app.name)));
      for (const d of ['upper', 'work']) fs.mkdirSync(path.join(dir, overlayDir(app.name), d));
      // The upper dir's owner is the owner of the app's / (the image's root, in the pod's range).
      if (shift) fs.chownSync(path.join(dir, overlayDir(app.name), 'upper'), shift, shift);
    } else {
      fs.mkdirSync(path.dirname(rootfs), { recursive: true });
      // A private copy that keeps owners, modes, links and special files.
      const r = spawnSync('cp', ['-a', '--', app.treeRootfs, rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0) fail(`cannot copy the rootfs of app ${app.name}: ${r.stderr.toString().trim()}`);
    }
  }
  for (const v of pod.volumes) {
    if (v.kind !== 'empty') continue;
    const vdir = path.join(dir, volumeDir(v.name));
    fs.mkdirSync(vdir, { recursive: true });
    const seed = pod.apps.flatMap((a) => a.mounts).find((m) => m.volume === v.name && m.seedFrom)?.seedFrom;
    const from = seed ? fs.statSync(seed, { throwIfNoEntry: false }) : undefined;
    if (seed && from?.isDirectory()) {
      // The image's files there, with their owners, modes and links (links are not followed).
      const r = spawnSync('cp', ['-a', '--', `${seed}/.`, `${vdir}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0) fail(`cannot fill volume "${v.name}" from the image: ${r.stderr.toString().trim()}`);
      if (shift) shiftOwners(vdir, shift);
      fs.chmodSync(vdir, from.mode & 0o7777);
      fs.chownSync(vdir, from.uid + shift, from.gid + shift);
      continue;
    }
    fs.chmodSync(vdir, parseInt(v.mode ?? '0755', 8));
    fs.chownSync(vdir, (v.uid ?? 0) + shift, (v.gid ?? 0) + shift);
  }
}

/** --private-users: a copied tree's owners moved into the pod's range. */
function shiftOwners(dir: string, shift: number): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const st = fs.lstatSync(p);
    fs.lchownSync(p, st.uid + shift, st.gid + shift);
    if (e.isDirectory()) shiftOwners(p, shift);
  }
}

export interface PrepareResult { pod: Pod; prepared: PreparedPod }

/**
 * Images are fetched and every flag is checked BEFORE the pod exists, so a fetch
 * failure or a bad flag leaves no pod behind. `run` is false for `rkt prepare`.
 */
export async function preparePod(host: Host, globals: GlobalOptions, spec: PodSpec, run = true): Promise<PrepareResult> {
  if (spec.podManifest !== undefined) return preparePodManifest(host, globals, spec, spec.podManifest, run);
  // Checked before anything is fetched or created.
  configPodPidsLimit([globals.systemConfig, globals.localConfig, globals.userConfig]);
  const images = [];
  for (const a of spec.apps) {
    images.push(await fetchImage(a.image, { globals, pullPolicy: spec.pullPolicy, signatureFile: a.signature }));
  }
  const volumes = spec.volumes;
  checkHostSources(volumes);
  const ctx: ResolveContext = {
    globals,
    store: new ImageStore(globals.dir),
    volumes,
    podMounts: spec.podMounts,
    fileEnv: spec.fileEnv,
    setEnv: spec.setEnv,
    inheritEnv: spec.inheritEnv,
  };
  const appNames = new Set<string>();
  const apps: PreparedApp[] = [];
  for (let i = 0; i < spec.apps.length; i++) apps.push(await resolveApp(ctx, spec.apps[i], images[i].id, appNames));
  await checkStartOptions(host, globals, apps, spec.ports, spec.start, run);
  for (const img of images) ctx.store.touch(img.id);
  return writePod(host, globals, spec, apps, volumes, run);
}

async function preparePodManifest(host: Host, globals: GlobalOptions, spec: PodSpec, file: string, run: boolean): Promise<PrepareResult> {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { return fail(`cannot read --pod-manifest ${file}: ${(e as Error).message}`); }
  const pm = parsePodManifest(text);
  const store = new ImageStore(globals.dir);
  const volumes = pm.volumes ?? [];
  checkHostSources(volumes);
  const apps: PreparedApp[] = [];
  const names = new Set<string>();
  for (const ra of pm.apps) {
    const info = store.resolve(ra.image.id);
    const image = store.manifest(info.id);
    checkOsArch(image);
    const app = ra.app ?? image.app;
    if (!app) fail(`app "${ra.name}" in ${file} has no app section and its image has none: add "app"`);
    const treeRootfs = await store.treeRootfs(info.id);
    kernelTargets(treeRootfs);
    const uid = resolveUser(treeRootfs, app.user);
    const gid = resolveGroup(treeRootfs, app.group);
    if (names.has(ra.name)) fail(`app name "${ra.name}" is used twice in ${file}`);
    names.add(ra.name);
    const mounts = appMounts(ra.name, app.mountPoints, (ra.mounts ?? []).map((m) => ({ volume: m.volume, target: m.path })), volumes, fromDocker(image));
    apps.push({
      name: ra.name, imageId: info.id, imageName: image.name, treeRootfs,
      exec: app.exec ?? fail(`app "${ra.name}" has no exec`),
      env: buildAppEnv({ appName: ra.name, image: app.environment, fileEnv: new Map(), setEnv: new Map(), appEnv: new Map(), user: passwdEntry(treeRootfs, uid) }),
      workingDir: app.workingDirectory ?? '/', uid, gid, supplementaryGids: app.supplementaryGIDs ?? [],
      resources: resolveAppResources(app.isolators, {}, { allCaps: globals.insecure.has('capabilities') }),
      seccomp: appSeccomp(app.isolators, undefined, globals),
      readOnlyRootfs: ra.readOnlyRootFS ?? false,
      mounts: preparedMounts(treeRootfs, mounts),
      ports: preparedPorts(app.ports),
      sdNotify: supportsNotify(image),
      ...(app.eventHandlers?.length ? { eventHandlers: app.eventHandlers } : {}),
    });
  }
  if (apps.length === 0) fail('pod must contain at least one application');
  await checkStartOptions(host, globals, apps, [], spec.start, run);
  return writePod(host, globals, spec, apps, volumes, run);
}

async function writePod(host: Host, globals: GlobalOptions, spec: PodSpec, apps: PreparedApp[], volumes: PodVolume[], run: boolean): Promise<PrepareResult> {
  const privateUsers = spec.privateUsers;
  if (privateUsers) {
    // Checked before the pod exists: a refusal leaves nothing behind.
    checkIdsInRange(apps, volumes, RANGE_COUNT);
    const hostVolumes = volumes.filter((v) => v.kind === 'host' && v.idmap !== false).map((v) => (v.recursive === false ? v.source! : `+${v.source!}`));
    await probeIdmap(host, idmapHelper(), [...new Set([...apps.map((a) => a.treeRootfs), ...hostVolumes])]);
  }
  // A pod to run is held by the process that becomes it (bin/rkt) from the first, so status
  // names that one throughout; `rkt prepare` holds its pod itself until it ends.
  const holder = run ? runHolder() : { pid: process.pid };
  const pod = createPod(host, globals.dir, holder.pid, holder.stage0);
  const uuidFile = spec.uuidFileSave;
  const prepared: PreparedPod = {
    uuid: pod.uuid,
    apps,
    volumes,
    ports: spec.ports,
    overlay: spec.overlay,
    insecureCapabilities: globals.insecure.has('capabilities'),
    openPaths: globals.insecure.has('paths'),
  };
  try {
    if (uuidFile) {
      try { fs.writeFileSync(uuidFile, pod.uuid, { mode: 0o644 }); } catch (e) { fail(`cannot write --uuid-file-save ${uuidFile}: ${(e as Error).message}: give a writable path`); }
    }
    let range: UidRange | undefined;
    if (privateUsers) range = allocateRange(host, globals.dir, pod.uuid, pod.dir);
    layoutPodDir(pod.dir, prepared, range?.base ?? 0);
    writePodManifest(pod.dir, JSON.stringify(podManifestOf(prepared)));
    fs.writeFileSync(path.join(pod.dir, RUNTIME_FILE), JSON.stringify(prepared), { mode: 0o600 }); // env values: root only
  } catch (e) {
    fs.rmSync(pod.dir, { recursive: true, force: true });
    throw e;
  }
  if (globals.debug) info(`prepared pod ${pod.uuid}`);
  return { pod, prepared };
}
