/**
 * `rkt trust`: add public keys to the local trust store, for an image name prefix or
 * (--root) for every image. Keys come from files, URLs, or meta discovery of the prefix.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import type { Command, CommandInput } from './command.js';
import { flagBool, flagString } from './flags.js';
import { KeyStore, checkPrefix, keyValidity } from '../trust/keystore.js';
import { discoverPubkeys } from '../image/discovery.js';
import { httpGetBuffer, type HttpOptions } from '../image/http.js';
import { RktError, errorMessage, fail } from '../util/errors.js';
import { toStdout } from '../util/log.js';

/** The command's outside world, replaceable in tests. */
export interface TrustEnv {
  /** Results, on stdout. */
  out(line: string): void;
  /** The key review, on stderr. */
  err(line: string): void;
  /** Asks a yes/no question; undefined when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  /** Meta discovery of key URLs (ac-discovery-pubkeys). */
  discover: typeof discoverPubkeys;
}

function askYesNo(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.on('close', () => resolve(false)); // end of input means no
    const ask = (): void => rl.question(`${question} `, (answer) => {
      const a = answer.trim().toLowerCase();
      if (a === 'yes' || a === 'y' || a === 'no' || a === 'n') {
        resolve(a.startsWith('y'));
        rl.close();
      } else {
        process.stderr.write('Please enter "yes" or "no".\n');
        ask();
      }
    });
    ask();
  });
}

function realEnv(): TrustEnv {
  return {
    discover: discoverPubkeys,
    out: (line) => toStdout(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    confirm: process.stdin.isTTY ? askYesNo : undefined,
  };
}

/** gpg's layout: `8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190`. */
export function groupFingerprint(fp: string): string {
  const blocks = fp.toUpperCase().match(/.{1,4}/g) ?? [];
  const half = blocks.length / 2;
  return `${blocks.slice(0, half).join(' ')}  ${blocks.slice(half).join(' ')}`;
}

/** 2020-01-10 */
function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

async function readKeySource(source: string, http: HttpOptions): Promise<openpgp.Key[]> {
  let bytes: Buffer;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1].toLowerCase();
  if (scheme === 'http' && !http.insecureHttp) {
    fail(`refusing to fetch key "${source}" over plain http: use an https URL or pass --insecure-allow-http`);
  }
  if (scheme === 'http' || scheme === 'https') {
    bytes = await httpGetBuffer(source, http);
  } else if (scheme && scheme !== 'file') {
    fail(`cannot fetch key "${source}": give a file path or an https URL`);
  } else {
    const file = scheme ? fileURLToPath(source) : source;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new RktError(`cannot read key file "${file}": ${errorMessage(e)}`);
    }
  }
  try {
    const text = bytes.toString('latin1');
    return text.includes('-----BEGIN PGP')
      ? await openpgp.readKeys({ armoredKeys: text })
      : await openpgp.readKeys({ binaryKeys: new Uint8Array(bytes) });
  } catch (e) {
    throw new RktError(`"${source}" does not hold an OpenPGP public key (${errorMessage(e)}): export one with "gpg --armor --export KEYID"`);
  }
}

export async function runTrust(input: CommandInput, env: TrustEnv = realEnv()): Promise<number> {
  const { values, positionals } = input.parsed;
  const prefix = flagString(values, 'prefix');
  const root = flagBool(values, 'root');
  const skipReview = flagBool(values, 'skip-fingerprint-review');
  const http = { insecureHttp: flagBool(values, 'insecure-allow-http'), insecureTls: input.globals.insecure.has('tls'), timeouts: input.globals.limits };

  if (root && prefix !== undefined) fail('--root and --prefix cannot be used together: use --root to trust a key for every image, or --prefix=PREFIX for images under PREFIX');
  if (!root && !prefix) fail('aborting due to implicit unbounded trust: use --prefix=PREFIX to restrict trust or --root to trust this key for every image');
  if (root && positionals.length === 0) fail('--root needs a key file or URL (keys are discovered only for a prefix): run "rkt trust --root KEY_FILE"');
  if (prefix) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(prefix)) fail(`--prefix=${prefix} is a URL: give an image name prefix such as example.com/app`);
    checkPrefix(prefix);
  }

  const sources = positionals.length > 0 ? positionals : await env.discover(prefix!, http);
  if (sources.length === 0) fail(`meta discovery found no keys (ac-discovery-pubkeys) for "${prefix}": give the key file or URL`);

  const { systemConfig, localConfig, userConfig } = input.globals;
  const store = new KeyStore({ systemConfig, localConfig, userConfig });
  for (const source of sources) {
    for (const key of await readKeySource(source, http)) {
      const fingerprint = key.getFingerprint().toLowerCase();
      env.err(root ? 'Root key' : `Prefix: "${prefix}"`);
      env.err(`Key: "${source}"`);
      env.err(`GPG key fingerprint is: ${groupFingerprint(fingerprint)}`);
      for (const id of key.getUserIDs()) env.err(`\t${id}`);
      const validity = await keyValidity(key);
      if (validity.revoked !== undefined || validity.expired) {
        // The rest of the key, as gpg would list it, for the review of a key in doubt.
        env.err(`\tCreated: ${day(key.getCreationTime())}`);
        for (const sub of key.getSubkeys()) env.err(`\tSubkey fingerprint: ${groupFingerprint(sub.getFingerprint())}`);
      }
      if (validity.revoked !== undefined) {
        const why = validity.revoked ? ` (reason: ${validity.revoked.replace(/\s+/g, ' ')})` : '';
        fail(`key ${fingerprint} from "${source}" was revoked by its owner${why}: it cannot be trusted; get the publisher's current key`);
      }
      if (validity.expired) {
        env.err(`warning: key ${fingerprint} expired on ${day(validity.expired)}: images it signed before then are accepted with a warning, later ones are refused; ask the publisher for a current key`);
      }

      // --trust-keys-from-https vouches for keys served over https, as rkt does.
      const vouched = skipReview || (input.globals.trustKeysFromHttps && source.startsWith('https://'));
      if (!vouched) {
        if (!env.confirm) fail(`cannot ask whether to trust key ${fingerprint}: stdin is not a terminal: check the fingerprint and pass --skip-fingerprint-review`);
        if (!(await env.confirm('Are you sure you want to trust this key (yes/no)?'))) {
          env.err(`Not trusting key ${fingerprint}`);
          continue;
        }
      }
      const added = await store.addKey(key.toPublic().armor(), root ? { root: true } : { prefix: prefix! });
      env.out(root ? `Added root key at "${added.path}"` : `Added key for prefix "${prefix}" at "${added.path}"`);
    }
  }
  return 0;
}

export const command: Command = {
  name: 'trust',
  summary: 'Trust a key for image verification',
  usage: 'trust [--prefix=PREFIX | --root] [--skip-fingerprint-review] [--insecure-allow-http] [PUBKEY_FILE|URL...]',
  flags: [
    { name: 'prefix', kind: 'string', help: 'image name prefix the key is trusted for (example.com/app)' },
    { name: 'root', kind: 'bool', help: 'trust the key for every image' },
    { name: 'skip-fingerprint-review', kind: 'bool', help: 'add the key without asking to confirm its fingerprint' },
    { name: 'insecure-allow-http', kind: 'bool', help: 'allow fetching keys and discovery over plain http' },
  ],
  needsRoot: false,
  run: (input) => runTrust(input),
};
