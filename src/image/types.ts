/** appc 0.8.11 schema types (spec/aci.md, spec/pods.md). Validation lives in manifest.ts. */

export interface Label { name: string; value: string }
export interface Annotation { name: string; value: string }
export interface EnvVar { name: string; value: string }
export interface Isolator { name: string; value: unknown }

export interface MountPoint { name: string; path: string; readOnly?: boolean }
export interface Port { name: string; protocol: string; port: number; count?: number; socketActivated?: boolean }
export interface EventHandler { name: 'pre-start' | 'post-stop'; exec: string[] }

export interface App {
  exec?: string[];
  user: string;
  group: string;
  supplementaryGIDs?: number[];
  eventHandlers?: EventHandler[];
  workingDirectory?: string;
  environment?: EnvVar[];
  isolators?: Isolator[];
  mountPoints?: MountPoint[];
  ports?: Port[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

export interface Dependency { imageName: string; imageID?: string; labels?: Label[]; size?: number }

export interface ImageManifest {
  acKind: 'ImageManifest';
  acVersion: string;
  name: string;
  labels?: Label[];
  app?: App;
  annotations?: Annotation[];
  dependencies?: Dependency[];
  pathWhitelist?: string[];
}

export interface PodVolume {
  name: string;
  kind: 'host' | 'empty';
  source?: string;
  readOnly?: boolean;
  recursive?: boolean;
  mode?: string;
  uid?: number;
  gid?: number;
  /** kind=host with --private-users: false keeps the volume unmapped (not appc; rkt's own). */
  idmap?: boolean;
}

export interface PodMount { volume: string; path: string; appVolume?: PodVolume }

export interface RuntimeImage { name?: string; id: string; labels?: Label[] }

export interface RuntimeApp {
  name: string;
  image: RuntimeImage;
  app?: App;
  readOnlyRootFS?: boolean;
  mounts?: PodMount[];
  annotations?: Annotation[];
}

export interface ExposedPort { name: string; hostPort: number; hostIP?: string; podPort?: Port }

export interface PodManifest {
  acKind: 'PodManifest';
  acVersion: string;
  apps: RuntimeApp[];
  volumes?: PodVolume[];
  isolators?: Isolator[];
  annotations?: Annotation[];
  ports?: ExposedPort[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

export function labelValue(labels: Label[] | undefined, name: string): string | undefined {
  return labels?.find((l) => l.name === name)?.value;
}
