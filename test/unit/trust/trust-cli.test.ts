import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { command, groupFingerprint, runTrust, type TrustEnv } from '../../../src/cli/trust.js';
import type { CommandInput } from '../../../src/cli/command.js';
import { parseFlags } from '../../../src/cli/flags.js';
import { GLOBAL_FLAGS, type GlobalOptions } from '../../../src/cli/globals.js';
import { discoverPubkeys } from '../../../src/image/discovery.js';
import { KeyStore } from '../../../src/trust/keystore.js';
import { Gpg, jsKey, jsRevoke, tempDir, type JsKey } from './pgp-fixtures.js';

let dir: string;
let local: string;
let system: string;
let a: JsKey, b: JsKey;
/** Files served by both servers, by URL path. */
const served = new Map<string, string | Buffer>();
let plain: http.Server, secure: https.Server;
let plainPort: number, securePort: number;

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const body = served.get(req.url ?? '');
  res.writeHead(body === undefined ? 404 : 200).end(body);
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  [a, b] = await Promise.all([jsKey('Alice'), jsKey('Bob')]);
  const tls = tempDir('trust-tls');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${tls}/key.pem`, '-out', `${tls}/cert.pem`,
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
  ], { stdio: 'ignore' });
  plain = http.createServer(handle);
  secure = https.createServer({ key: fs.readFileSync(`${tls}/key.pem`), cert: fs.readFileSync(`${tls}/cert.pem`) }, handle);
  fs.rmSync(tls, { recursive: true, force: true });
  plainPort = await listen(plain);
  securePort = await listen(secure);
});

afterAll(async () => {
  await new Promise((resolve) => plain.close(resolve));
  await new Promise((resolve) => secure.close(resolve));
});

beforeEach(() => {
  dir = tempDir('trust-cli');
  local = path.join(dir, 'etc-rkt');
  system = path.join(dir, 'usr-lib-rkt');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  served.clear();
});

function input(args: string[], globals: Partial<GlobalOptions> = {}): CommandInput {
  return {
    globals: {
      dir: path.join(dir, 'data'), localConfig: local, systemConfig: system, userConfig: undefined,
      insecure: new Set(), debug: false, trustKeysFromHttps: false, ...globals,
    },
    parsed: parseFlags(args, [...GLOBAL_FLAGS, ...command.flags]),
    rawArgs: args,
    commands: {},
  };
}

/** A scripted terminal: `answers` are the replies to successive questions; none means stdin is no TTY. */
function terminal(answers?: boolean[]): TrustEnv & { out: jest.Mock; err: jest.Mock; asked: string[] } {
  const asked: string[] = [];
  return {
    out: jest.fn(),
    err: jest.fn(),
    asked,
    confirm: answers && (async (q: string) => { asked.push(q); return answers.shift()!; }),
    discover: (prefix, opts) => discoverPubkeys(prefix, { ...opts, port: plainPort }),
  };
}

function keyFile(name: string, content: string | Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

const prefixPath = (prefix: string, fp: string): string => path.join(local, 'trustedkeys/prefix.d', prefix, fp);

describe('argument rules', () => {
  it.each([
    [['KEY'], 'aborting due to implicit unbounded trust: use --prefix=PREFIX to restrict trust or --root to trust this key for every image'],
    [['--root', '--prefix=example.com', 'KEY'], /--root and --prefix cannot be used together/],
    [['--root'], /--root needs a key file or URL/],
    [['--prefix=https://example.com/app', 'KEY'], /--prefix=https:\/\/example.com\/app is a URL: give an image name prefix such as example.com\/app/],
    [['--prefix=Example.com', 'KEY'], /invalid image name or prefix "Example.com"/],
  ])('%j fails', async (args, message) => {
    const key = keyFile('a.asc', a.armored);
    const run = command.run(input(args.map((arg) => (arg === 'KEY' ? key : arg))));
    await expect(run).rejects.toThrow(message);
    await expect(run).rejects.toMatchObject({ exitCode: 254 });
    expect(fs.existsSync(local)).toBe(false);
  });

  it('needs no root', () => {
    expect(command.needsRoot).toBe(false);
  });
});

describe('adding keys', () => {
  it('adds a key for a prefix after --skip-fingerprint-review', async () => {
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const code = await command.run(input(['--prefix=example.com/app', '--skip-fingerprint-review', keyFile('a.asc', a.armored)]));
      expect(code).toBe(0);
      expect(write).toHaveBeenCalledWith(`Added key for prefix "example.com/app" at "${prefixPath('example.com/app', a.fingerprint)}"\n`);
    } finally {
      write.mockRestore();
      stderr.mockRestore();
    }
    const keys = await new KeyStore({ systemConfig: system, localConfig: local }).keysForName('example.com/app/sub');
    expect(keys.map((k) => k.fingerprint)).toEqual([a.fingerprint]);
  });

  it('adds a root key', async () => {
    const env = terminal();
    await runTrust(input(['--root', '--skip-fingerprint-review', keyFile('a.asc', a.armored)]), env);
    const file = path.join(local, 'trustedkeys/root.d', a.fingerprint);
    expect(env.out).toHaveBeenCalledWith(`Added root key at "${file}"`);
    expect(fs.existsSync(file)).toBe(true);
  });

  it('shows the key and asks before adding it', async () => {
    const env = terminal([true]);
    await runTrust(input(['--prefix=example.com', keyFile('a.asc', a.armored)]), env);
    expect(env.err.mock.calls.map((c) => c[0])).toEqual([
      'Prefix: "example.com"',
      `Key: "${path.join(dir, 'a.asc')}"`,
      `GPG key fingerprint is: ${groupFingerprint(a.fingerprint)}`,
      '\tAlice <alice@example.com>',
    ]);
    expect(env.asked).toEqual(['Are you sure you want to trust this key (yes/no)?']);
    expect(fs.existsSync(prefixPath('example.com', a.fingerprint))).toBe(true);
  });

  it('adds nothing when the answer is no', async () => {
    const env = terminal([false]);
    expect(await runTrust(input(['--prefix=example.com', keyFile('a.asc', a.armored)]), env)).toBe(0);
    expect(env.err).toHaveBeenCalledWith(`Not trusting key ${a.fingerprint}`);
    expect(env.out).not.toHaveBeenCalled();
    expect(fs.existsSync(prefixPath('example.com', a.fingerprint))).toBe(false);
  });

  it('refuses to add without review when stdin is not a terminal', async () => {
    await expect(runTrust(input(['--prefix=example.com', keyFile('a.asc', a.armored)]), terminal())).rejects.toThrow(
      `cannot ask whether to trust key ${a.fingerprint}: stdin is not a terminal: check the fingerprint and pass --skip-fingerprint-review`,
    );
    expect(fs.existsSync(local)).toBe(false);
  });

  it('asks about each key of a keyring file, and reads binary gpg exports', async () => {
    const gpg = new Gpg();
    try {
      const fp = gpg.genKey('Gpg Signer <gpg@example.com>', 'ed25519');
      const binary = keyFile('gpg.key', gpg.run(['--export', fp]));
      const ring = keyFile('ring.asc', openpgp.armor(openpgp.enums.armor.publicKey, Buffer.concat([a.privateKey.toPublic().write(), b.privateKey.toPublic().write()])));
      const env = terminal([true, false, true]);
      await runTrust(input(['--prefix=example.com', ring, binary]), env);
      expect(env.asked).toHaveLength(3);
      expect(env.out.mock.calls.map((c) => c[0])).toEqual([
        `Added key for prefix "example.com" at "${prefixPath('example.com', a.fingerprint)}"`,
        `Added key for prefix "example.com" at "${prefixPath('example.com', fp)}"`,
      ]);
    } finally {
      gpg.close();
    }
  });

  it('explains unreadable and non-key files', async () => {
    await expect(runTrust(input(['--prefix=example.com', '--skip-fingerprint-review', path.join(dir, 'missing.asc')]), terminal()))
      .rejects.toThrow(/^cannot read key file ".*missing.asc": /);
    await expect(runTrust(input(['--prefix=example.com', '--skip-fingerprint-review', keyFile('junk', 'junk')]), terminal()))
      .rejects.toThrow(/does not hold an OpenPGP public key/);
  });
});

describe('keys from the network', () => {
  it('fetches a key over http only with --insecure-allow-http', async () => {
    served.set('/a.asc', a.armored);
    const url = `http://127.0.0.1:${plainPort}/a.asc`;
    await expect(runTrust(input(['--prefix=example.com', '--skip-fingerprint-review', url]), terminal())).rejects.toThrow(
      `refusing to fetch key "${url}" over plain http: use an https URL or pass --insecure-allow-http`,
    );
    const env = terminal();
    await runTrust(input(['--prefix=example.com', '--skip-fingerprint-review', '--insecure-allow-http', url]), env);
    expect(env.out).toHaveBeenCalledWith(`Added key for prefix "example.com" at "${prefixPath('example.com', a.fingerprint)}"`);
  });

  it('trusts https keys without asking under --trust-keys-from-https', async () => {
    served.set('/b.asc', b.armored);
    const env = terminal(); // no terminal: a prompt would fail
    const url = `https://127.0.0.1:${securePort}/b.asc`;
    await runTrust(input(['--prefix=example.com', url], { trustKeysFromHttps: true, insecure: new Set(['tls']) }), env);
    expect(fs.existsSync(prefixPath('example.com', b.fingerprint))).toBe(true);
  });

  it('discovers the keys of a prefix when none is given', async () => {
    served.set('/app?ac-discovery=1', `<html><head>
      <meta name="ac-discovery-pubkeys" content="127.0.0.1/app http://127.0.0.1:${plainPort}/keys/a.asc">
    </head></html>`);
    served.set('/keys/a.asc', a.armored);
    const env = terminal([true]);
    await runTrust(input(['--prefix=127.0.0.1/app', '--insecure-allow-http']), env);
    expect(env.err).toHaveBeenCalledWith(`Key: "http://127.0.0.1:${plainPort}/keys/a.asc"`);
    expect(fs.existsSync(prefixPath('127.0.0.1/app', a.fingerprint))).toBe(true);
  });
});

it('groups fingerprints as gpg does', () => {
  expect(groupFingerprint('8b86de38890ddb7291867b025210bd8888182190')).toBe('8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190');
});

describe('expired and revoked keys', () => {
  const lines = (env: ReturnType<typeof terminal>): string[] => env.err.mock.calls.map((c) => String(c[0]));

  it('a revoked key is refused after its details are shown, and nothing is written', async () => {
    const k = await jsKey('Gone', { signingSubkey: true });
    const file = keyFile('gone.asc', await jsRevoke(k, 'keyCompromised', 'private key\nleaked'));
    const env = terminal([true]);
    const run = runTrust(input(['--prefix=example.com/app', file]), env);
    await expect(run).rejects.toThrow(
      `key ${k.fingerprint} from "${file}" was revoked by its owner (reason: private key leaked): it cannot be trusted; get the publisher's current key`,
    );
    await expect(run).rejects.toMatchObject({ exitCode: 254 });
    expect(env.asked).toEqual([]);
    expect(lines(env)).toEqual([
      'Prefix: "example.com/app"',
      `Key: "${file}"`,
      `GPG key fingerprint is: ${groupFingerprint(k.fingerprint)}`,
      '\tGone <gone@example.com>',
      expect.stringMatching(/^\tCreated: \d{4}-\d\d-\d\d$/),
      `\tSubkey fingerprint: ${groupFingerprint(k.privateKey.getSubkeys()[0].getFingerprint())}`,
    ]);
    expect(fs.existsSync(local)).toBe(false);
  });

  it('an expired key is shown with its dates and a warning, then asked about as usual', async () => {
    const k = await jsKey('Lapsed', { date: new Date('2020-01-01T00:00:00Z'), expiresInSeconds: 9 * 24 * 3600 });
    const file = keyFile('lapsed.asc', k.armored);
    const env = terminal([true]);
    expect(await runTrust(input(['--prefix=example.com/app', file]), env)).toBe(0);
    expect(lines(env).slice(3)).toEqual([
      '\tLapsed <lapsed@example.com>',
      '\tCreated: 2020-01-01',
      `\tSubkey fingerprint: ${groupFingerprint(k.privateKey.getSubkeys()[0].getFingerprint())}`,
      `warning: key ${k.fingerprint} expired on 2020-01-10: images it signed before then are accepted with a warning, later ones are refused; ask the publisher for a current key`,
    ]);
    expect(env.asked).toEqual(['Are you sure you want to trust this key (yes/no)?']);
    expect(fs.existsSync(prefixPath('example.com/app', k.fingerprint))).toBe(true);
  });

  it('a current key shows no dates and no warning', async () => {
    const env = terminal();
    await runTrust(input(['--prefix=example.com/app', '--skip-fingerprint-review', keyFile('a.asc', a.armored)]), env);
    expect(lines(env)).toHaveLength(4);
  });
});
