/**
 * stage0's API: what a pod is asked to be, typed and already checked for syntax.
 * cli/pod-spec.ts builds these from rkt's flags before anything is fetched or created;
 * stage0 resolves them against the images and the host (users, networks, ports by name).
 */
import type { PodVolume } from '../image/types.js';
import type { ResourceOverrides } from '../image/isolators.js';
import type { NetMode, PortForward } from '../net/netflag.js';
import type { DnsOptions, HostsEntry } from '../net/dns.js';
import type { MountSpec } from './volumes.js';

/** How a started pod is wired: given to run, and again to run-prepared (prepare keeps none of it). */
export interface StartOptions {
  net: NetMode;
  /** undefined: no --dns* flag (CNI's DNS, if any, is used). */
  dns: DnsOptions | undefined;
  /** 'host': the host's /etc/hosts. */
  hostsEntries: HostsEntry[] | 'host';
  /** undefined: rkt-UUID. */
  hostname: string | undefined;
  /** --ipc=parent: the host's IPC namespace. */
  sharedIpc: boolean;
  /** Grace period between SIGTERM and SIGKILL when the pod stops. */
  stopTimeoutMs: number;
  interactive: boolean;
}

/** One image of the pod and the per-app overrides given after it. */
export interface AppSpec {
  image: string;
  /** A local signature file for this image. */
  signature?: string;
  name?: string;
  exec?: string;
  /** Arguments after `--`, appended to the exec. */
  args: string[];
  user?: string;
  group?: string;
  supplementaryGids?: number[];
  workingDir?: string;
  environment: Map<string, string>;
  /** Quantities and capabilities as given; resolved with the image's isolators. */
  resources: ResourceOverrides;
  pidsLimit?: number;
  /** The --seccomp filter text (replaces the image's seccomp isolator). */
  seccomp?: string;
  readOnlyRootfs: boolean;
  mounts: MountSpec[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

export type PullPolicy = 'new' | 'update' | 'never';

export interface PodSpec {
  /** A pod manifest file: then apps, volumes, ports and the environment come from it. */
  podManifest?: string;
  apps: AppSpec[];
  /** Mounts given before any image: for every app. */
  podMounts: MountSpec[];
  volumes: PodVolume[];
  ports: PortForward[];
  setEnv: Map<string, string>;
  /** --set-env-file contents, read at parse time. */
  fileEnv: Map<string, string>;
  inheritEnv: boolean;
  pullPolicy: PullPolicy;
  overlay: boolean;
  privateUsers: boolean;
  uuidFileSave?: string;
  start: StartOptions;
}

/** The grace period before SIGKILL when a pod stops, unless --stop-timeout says otherwise. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
