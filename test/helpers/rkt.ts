/**
 * Integration test harness: runs the real bin/rkt (built dist/) as root with a private
 * data dir and config dirs, against the images scripts/build-images.sh builds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { describe, test } from '@jest/globals';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const RKT = path.join(ROOT, 'bin', 'rkt');
export const IMAGES = path.join(ROOT, 'build', 'images');
export const BUSYBOX_ACI = path.join(IMAGES, 'busybox.aci');
export const ETCD_ACI = path.join(IMAGES, 'etcd.aci');
export const IMAGES_KEY = path.join(ROOT, 'build', 'keys', 'images.pub.asc');

export const isRoot = process.getuid?.() === 0;
export const haveImages = fs.existsSync(BUSYBOX_ACI) && fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));

/**
 * The `describe` for a suite that cannot run when `missing` names something (root, an
 * image, a tool, a cgroup layout). Outside CI it skips, saying why; under CI (CI=true,
 * as .ci/run runs) it fails instead, so a run that tested nothing cannot look green.
 */
export function describeIf(missing: string | undefined): (name: string, fn: () => void) => void {
  if (!missing) return describe;
  if (process.env.CI === 'true') {
    return (name, _fn) => describe(name, () => {
      test(`needs what is missing here: ${missing}`, () => { throw new Error(`${name}: cannot run under CI: ${missing}`); });
    });
  }
  return (name, fn) => {
    process.stderr.write(`${name}: skipped: ${missing}\n`);
    describe.skip(`${name} (skipped: ${missing})`, fn);
  };
}

/** Why integration tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (!isRoot) return 'needs root';
  if (!haveImages) return 'needs `npm run build` and scripts/build-images.sh';
  return undefined;
}

export interface RktEnv {
  dir: string;
  localConfig: string;
  systemConfig: string;
  base: string;
  globals: string[];
}

export function makeEnv(prefix = 'rkt-it-'): RktEnv {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const env = {
    base,
    dir: path.join(base, 'data'),
    localConfig: path.join(base, 'etc'),
    systemConfig: path.join(base, 'lib'),
    globals: [] as string[],
  };
  for (const d of [env.dir, env.localConfig, env.systemConfig]) fs.mkdirSync(d, { recursive: true });
  env.globals = [`--dir=${env.dir}`, `--local-config=${env.localConfig}`, `--system-config=${env.systemConfig}`];
  return env;
}

export function rkt(env: RktEnv, args: string[], opts: { input?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(RKT, [...env.globals, ...args], { encoding: 'utf8', input: opts.input ?? '', timeout: opts.timeout ?? 60_000, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
}

/** Starts a command in the background; `done` resolves with its status and output when it exits. */
export function background(command: string, args: string[], env?: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Starts rkt in the background; resolves with its status and output when it exits. */
export function rktBackground(env: RktEnv, args: string[], processEnv?: NodeJS.ProcessEnv) {
  return background(RKT, [...env.globals, ...args], processEnv);
}

/** Runs busybox from the test image with image verification off; returns the result. */
export function runBusybox(env: RktEnv, podFlags: string[], appFlags: string[], shell: string) {
  return rkt(env, ['--insecure-options=image', 'run', ...podFlags, BUSYBOX_ACI, ...appFlags, '--exec=/bin/sh', '--', '-c', shell]);
}

export async function waitFor(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function cleanup(env: RktEnv): void {
  rkt(env, ['gc', '--grace-period=0s', '--expire-prepared=0s']);
  fs.rmSync(env.base, { recursive: true, force: true });
}

/** Host state that must not change across a test: mounts, cgroups and netns of rkt. */
export function hostFootprint(): { mounts: string[]; cgroups: string[]; netns: string[] } {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('/rkt-it-'));
  const cgroups: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 6) return;
    let ents: fs.Dirent[] = [];
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name.startsWith('rkt-')) cgroups.push(p);
      else walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  let netns: string[] = [];
  try { netns = fs.readdirSync('/var/run/netns').filter((n) => n.startsWith('rkt-')); } catch { /* none */ }
  return { mounts, cgroups, netns };
}
