import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { discoverImage, discoverPubkeys, type DiscoveryOptions } from '../../../src/image/discovery.js';
import { closeServer as close, listenLocal as listen, selfSignedCert } from '../../helpers/servers.js';

interface Page { status?: number; body?: string; location?: string }

/** Discovery pages by path (without the query), shared by both servers. */
const pages = new Map<string, Page>();
const seen: Array<{ path: string; secure: boolean }> = [];
let dir: string;
let plain: http.Server;
let secure: https.Server;
let plainPort: number;
let securePort: number;

const NAME = '127.0.0.1/example/app';

function handle(isSecure: boolean): http.RequestListener {
  return (req, res) => {
    const [p, query] = (req.url ?? '/').split('?');
    seen.push({ path: p, secure: isSecure });
    const page = query === 'ac-discovery=1' ? pages.get(p) : undefined;
    if (!page) return void res.writeHead(404).end('not found');
    res.writeHead(page.status ?? 200, page.location ? { Location: page.location } : { 'Content-Type': 'text/html' });
    res.end(page.body ?? '');
  };
}


function html(...metas: string[]): Page {
  return { body: `<!DOCTYPE html>\n<html><head>\n${metas.join('\n')}\n</head><body>hi</body></html>` };
}

function meta(name: string, content: string): string {
  return `<meta name="${name}" content="${content}">`;
}

/** Plain-HTTP discovery against the http server (https is tried first and fails there). */
function overHttp(): DiscoveryOptions {
  return { insecureHttp: true, insecureTls: false, port: plainPort };
}

function overHttps(insecureTls = true): DiscoveryOptions {
  return { insecureHttp: false, insecureTls, port: securePort };
}

const plainPaths = (): string[] => seen.filter((s) => !s.secure).map((s) => s.path);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rkt-discovery-'));
  plain = http.createServer(handle(false));
  secure = https.createServer(selfSignedCert(dir), handle(true));
  plainPort = await listen(plain);
  securePort = await listen(secure);
});

afterAll(async () => {
  await close(plain);
  await close(secure);
  fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  pages.clear();
  seen.length = 0;
});

describe('templates', () => {
  const TEMPLATE = 'https://storage.example/{os}/{arch}/{name}-{version}.{ext}';

  test('renders {name}, {version}, {os}, {arch} and {ext} with defaults', async () => {
    pages.set('/example/app', html(meta('ac-discovery', `127.0.0.1 ${TEMPLATE}`)));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis).toEqual([{
      aci: 'https://storage.example/linux/amd64/127.0.0.1/example/app-latest.aci',
      asc: 'https://storage.example/linux/amd64/127.0.0.1/example/app-latest.aci.asc',
    }]);
    expect(found.pubkeys).toEqual([]);
    expect(seen).toEqual([{ path: '/example/app', secure: true }]);
  });

  test('given labels replace the defaults; an empty version still means latest', async () => {
    pages.set('/example/app', html(meta('ac-discovery', `127.0.0.1 ${TEMPLATE}`)));
    const found = await discoverImage(NAME, { version: '1.2.0', os: 'freebsd', arch: 'arm64' }, overHttps());
    expect(found.acis[0].aci).toBe('https://storage.example/freebsd/arm64/127.0.0.1/example/app-1.2.0.aci');
    const latest = await discoverImage(NAME, { version: '' }, overHttps());
    expect(latest.acis[0].asc).toBe('https://storage.example/linux/amd64/127.0.0.1/example/app-latest.aci.asc');
  });

  test('every template that renders is returned, in page order', async () => {
    pages.set('/example/app', html(
      meta('ac-discovery', `127.0.0.1 ${TEMPLATE}`),
      meta('ac-discovery', '127.0.0.1 https://mirror.example/{name}/{version}.{ext}'),
    ));
    const found = await discoverImage(NAME, { version: '2.0' }, overHttps());
    expect(found.acis.map((a) => a.aci)).toEqual([
      'https://storage.example/linux/amd64/127.0.0.1/example/app-2.0.aci',
      'https://mirror.example/127.0.0.1/example/app/2.0.aci',
    ]);
  });

  test('a template with a placeholder no label fills is skipped', async () => {
    pages.set('/example/app', html(
      meta('ac-discovery', '127.0.0.1 https://a.example/{channel}/{name}.{ext}'),
      meta('ac-discovery', '127.0.0.1 https://b.example/{name}.{ext}'),
    ));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis.map((a) => a.aci)).toEqual(['https://b.example/127.0.0.1/example/app.aci']);

    const withChannel = await discoverImage(NAME, { channel: 'stable' }, overHttps());
    expect(withChannel.acis.map((a) => a.aci)).toEqual([
      'https://a.example/stable/127.0.0.1/example/app.aci',
      'https://b.example/127.0.0.1/example/app.aci',
    ]);
  });

  test('the prefix is a string prefix of the name; others are ignored', async () => {
    pages.set('/example/app', html(
      meta('ac-discovery', 'example.com https://wrong.example/{name}.{ext}'),
      meta('ac-discovery', '127.0.0.1/other https://other.example/{name}.{ext}'),
      meta('ac-discovery', '127.0.0.1/exam https://right.example/{name}.{ext}'),
    ));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis.map((a) => a.aci)).toEqual(['https://right.example/127.0.0.1/example/app.aci']);
  });

  test('meta tags are parsed tolerantly', async () => {
    pages.set('/example/app', {
      body: [
        '<html><head>',
        '<!-- <meta name="ac-discovery" content="127.0.0.1 https://commented.example/{name}.{ext}"> -->',
        `<META CONTENT='127.0.0.1 https://one.example/{name}.{ext}?a=1&amp;b=2' NAME='ac-discovery' />`,
        '<meta name=ac-discovery content="  127.0.0.1   https://two.example/{name}.{ext}  "/>',
        '<meta\n  content="127.0.0.1 https://keys.example/pubkeys.gpg"\n  name="ac-discovery-pubkeys">',
        '<meta name="ac-discovery" content="127.0.0.1">',
        '<meta name="description" content="127.0.0.1 https://not-ac.example/{name}.{ext}">',
        '</head></html>',
      ].join('\n'),
    });
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis.map((a) => a.aci)).toEqual([
      'https://one.example/127.0.0.1/example/app.aci?a=1&b=2',
      'https://two.example/127.0.0.1/example/app.aci',
    ]);
    expect(found.pubkeys).toEqual(['https://keys.example/pubkeys.gpg']);
  });
});

describe('walking up the name', () => {
  const TAG = meta('ac-discovery', '127.0.0.1 https://store.example/{name}-{version}.{ext}');

  test('pages without a matching tag lead to the parent paths, down to the host', async () => {
    pages.set('/example/app', html(meta('ac-discovery', 'example.com https://x/{name}.{ext}')));
    pages.set('/example', html());
    pages.set('/', html(TAG));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis[0].aci).toBe('https://store.example/127.0.0.1/example/app-latest.aci');
    expect(seen.map((s) => s.path)).toEqual(['/example/app', '/example', '/']);
  });

  test('a 404 leads to the parent path', async () => {
    pages.set('/example', html(TAG));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis).toHaveLength(1);
    expect(seen.map((s) => s.path)).toEqual(['/example/app', '/example']);
  });

  test('redirects of the discovery page are followed', async () => {
    pages.set('/example/app', { status: 302, location: '/pages/app?ac-discovery=1' });
    pages.set('/pages/app', html(TAG));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.acis).toHaveLength(1);
    expect(seen.map((s) => s.path)).toEqual(['/example/app', '/pages/app']);
  });

  test('nothing found names the name, the URL and every prefix tried', async () => {
    pages.set('/example', html(meta('ac-discovery', '127.0.0.1 https://x/{unknown}.{ext}')));
    await expect(discoverImage(NAME, {}, overHttps())).rejects.toThrow(
      `discovery failed for "${NAME}": no ac-discovery meta tag matched at ` +
        `https://127.0.0.1:${securePort}/example/app?ac-discovery=1 (tried: 127.0.0.1/example/app, 127.0.0.1/example, 127.0.0.1)`,
    );
  });

  test('a server error is reported when no parent has a tag either', async () => {
    pages.set('/example/app', { status: 500 });
    await expect(discoverImage(NAME, {}, overHttps())).rejects.toThrow(
      `discovery failed for "${NAME}": bad HTTP status code: 500 fetching https://127.0.0.1:${securePort}/example/app?ac-discovery=1 (tried: `,
    );
    pages.set('/example', html(TAG));
    expect((await discoverImage(NAME, {}, overHttps())).acis).toHaveLength(1);
  });

  test('names that are not AC identifiers are rejected before any request', async () => {
    await expect(discoverImage('127.0.0.1/App?x=1', {}, overHttps())).rejects.toThrow(/invalid AC name "127\.0\.0\.1\/App\?x=1"/);
    expect(seen).toEqual([]);
  });
});

describe('public keys', () => {
  test('discoverImage returns the pubkeys of the page that matched', async () => {
    pages.set('/example/app', html(
      meta('ac-discovery', '127.0.0.1 https://s.example/{name}.{ext}'),
      meta('ac-discovery-pubkeys', '127.0.0.1/example https://s.example/keys.gpg'),
      meta('ac-discovery-pubkeys', 'example.com https://wrong.example/keys.gpg'),
    ));
    const found = await discoverImage(NAME, {}, overHttps());
    expect(found.pubkeys).toEqual(['https://s.example/keys.gpg']);
  });

  test('discoverPubkeys walks up until a page offers keys for the prefix', async () => {
    pages.set('/example/app', html(meta('ac-discovery', '127.0.0.1 https://s.example/{name}.{ext}')));
    pages.set('/example', html(meta('ac-discovery-pubkeys', '127.0.0.1/other https://other.example/keys.gpg')));
    pages.set('/', html(
      meta('ac-discovery-pubkeys', '127.0.0.1 https://k1.example/keys.gpg'),
      meta('ac-discovery-pubkeys', '127.0.0.1/example https://k2.example/keys.gpg'),
    ));
    expect(await discoverPubkeys(NAME, overHttps())).toEqual(['https://k1.example/keys.gpg', 'https://k2.example/keys.gpg']);
    expect(seen.map((s) => s.path)).toEqual(['/example/app', '/example', '/']);
  });

  test('discoverPubkeys fails with the prefixes tried', async () => {
    await expect(discoverPubkeys('127.0.0.1/example', overHttps())).rejects.toThrow(
      `discovery failed for "127.0.0.1/example": no ac-discovery-pubkeys meta tag matched at ` +
        `https://127.0.0.1:${securePort}/example?ac-discovery=1 (tried: 127.0.0.1/example, 127.0.0.1)`,
    );
  });
});

describe('transport policy', () => {
  const TAG = meta('ac-discovery', '127.0.0.1 http://store.example/{name}.{ext}');

  test('a self-signed certificate fails without insecureTls, with the hint', async () => {
    pages.set('/example/app', html(TAG));
    const err = await discoverImage(NAME, {}, overHttps(false)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      new RegExp(`^discovery failed for "127\\.0\\.0\\.1/example/app": TLS certificate of 127\\.0\\.0\\.1:${securePort} is not trusted .*--insecure-options=tls.* \\(tried: 127\\.0\\.0\\.1/example/app, 127\\.0\\.0\\.1/example, 127\\.0\\.0\\.1\\)$`),
    );
    expect(seen).toEqual([]);
  });

  test('plain HTTP is never used without insecureHttp', async () => {
    pages.set('/example/app', html(TAG));
    await expect(discoverImage(NAME, {}, { ...overHttp(), insecureHttp: false })).rejects.toThrow(
      `discovery failed for "${NAME}": TLS handshake with 127.0.0.1:${plainPort} failed (wrong version number): ` +
        'if the server speaks plain HTTP only, use --insecure-options=http (tried: 127.0.0.1/example/app, 127.0.0.1/example, 127.0.0.1)',
    );
    expect(seen).toEqual([]);
  });

  test('with insecureHttp, https is tried first and plain HTTP is the fallback', async () => {
    pages.set('/example', html(TAG));
    const found = await discoverImage(NAME, {}, overHttp());
    expect(found.acis[0].aci).toBe('http://store.example/127.0.0.1/example/app.aci');
    expect(plainPaths()).toEqual(['/example/app', '/example']);
  });

  test('with insecureHttp, an untrusted https server is reported as such, not as a failed plain HTTP try', async () => {
    pages.set('/example/app', html(TAG));
    await expect(discoverImage(NAME, {}, { insecureHttp: true, insecureTls: false, port: securePort })).rejects.toThrow(
      `discovery failed for "${NAME}": TLS certificate of 127.0.0.1:${securePort} is not trusted (self-signed certificate): ` +
        'use --insecure-options=tls to accept it (tried: 127.0.0.1/example/app, 127.0.0.1/example, 127.0.0.1)',
    );
  });

  test('with insecureHttp, an https server still answers over https', async () => {
    pages.set('/example/app', html(TAG));
    await discoverImage(NAME, {}, { insecureHttp: true, insecureTls: true, port: securePort });
    expect(seen).toEqual([{ path: '/example/app', secure: true }]);
  });
});
