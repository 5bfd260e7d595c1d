/**
 * rkt install: sets up a machine for rkt's group model (as rkt's `install` and
 * setup-data-dir did): groups `rkt` and `rkt-admin`, the data dir with the owners and
 * modes of src/store/datadir.ts, and the local config dir writable by `rkt-admin`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from './command.js';
import { dataDirModes, ensureGroup, makeDataDirs, RKT_ADMIN_GROUP, RKT_GROUP, tightenDataDir } from '../store/datadir.js';
import { toStdout } from '../util/log.js';

/** The trust store dirs (few): group rkt-admin, writable by it, new dirs inherit the group. */
function openConfigToAdmins(dir: string, gid: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, 0, gid);
  fs.chmodSync(dir, 0o2775);
  const trusted = path.join(dir, 'trustedkeys');
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      fs.chownSync(p, 0, gid);
      fs.chmodSync(p, 0o2775);
      walk(p);
    }
  };
  if (fs.existsSync(trusted)) {
    fs.chownSync(trusted, 0, gid);
    fs.chmodSync(trusted, 0o2775);
    walk(trusted);
  }
}

export const command: Command = {
  name: 'install',
  summary: 'Set up groups rkt and rkt-admin and the data directory permissions',
  usage: 'install',
  flags: [],
  needsRoot: true,
  async run({ globals }) {
    const gid = ensureGroup(RKT_GROUP);
    const adminGid = ensureGroup(RKT_ADMIN_GROUP);
    makeDataDirs(globals.dir, dataDirModes().map(([rel]) => rel).filter((rel) => rel !== ''));
    tightenDataDir(globals.dir, gid);
    openConfigToAdmins(globals.localConfig, adminGid);
    toStdout(`rkt directory structure successfully created in ${globals.dir}\n`);
    return 0;
  },
};
