/**
 * appc meta discovery: turn an image name and labels into ACI/signature URLs and
 * public key URLs, read from <meta name="ac-discovery..."> tags on
 * https://{name}?ac-discovery=1, walking up the name's path until one matches.
 */
import { HttpStatusError, httpGetBuffer, type Timeouts } from './http.js';
import { RktError, errorMessage, fail } from '../util/errors.js';
import { debug } from '../util/log.js';

export interface DiscoveryOptions {
  insecureHttp: boolean;
  insecureTls: boolean;
  /** tests: non-default port for the discovery host */
  port?: number;
  timeouts?: Timeouts;
}

export interface DiscoveredImage {
  acis: Array<{ aci: string; asc: string }>;
  pubkeys: string[];
}

interface AcMeta {
  name: string;
  prefix: string;
  uri: string;
}

const DEFAULT_LABELS: Record<string, string> = { os: 'linux', arch: 'amd64', version: 'latest' };

// appc AC identifier; the name becomes part of a URL, so nothing else may pass.
const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (whole, ref: string) => {
    if (ref[0] !== '#') return ENTITIES[ref.toLowerCase()] ?? whole;
    const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/** The ac-* meta tags of a page; tolerant of attribute order, quoting, case and self-closing. */
function parseAcMeta(html: string): AcMeta[] {
  const metas: AcMeta[] = [];
  const text = html.replace(/<!--[\s\S]*?-->/g, '');
  for (const tag of text.matchAll(/<meta\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi)) {
    const attrs = new Map<string, string>();
    for (const a of tag[1].matchAll(/([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
      const key = a[1].toLowerCase();
      // As in HTML, the first of duplicate attributes wins.
      if (!attrs.has(key)) attrs.set(key, decodeEntities(a[2] ?? a[3] ?? a[4] ?? ''));
    }
    const name = attrs.get('name') ?? '';
    const content = /^(\S+)\s+(.+)$/s.exec((attrs.get('content') ?? '').trim());
    if (name.startsWith('ac-') && content) metas.push({ name, prefix: content[1], uri: content[2].trim() });
  }
  return metas;
}

/** Substitute {key} for each var; undefined when a placeholder is left over. */
function render(template: string, vars: Record<string, string>): string | undefined {
  let out = template;
  for (const [key, value] of Object.entries(vars)) out = out.split(`{${key}}`).join(value);
  return /\{[^}]*\}/.test(out) ? undefined : out;
}

function discoveryUrl(scheme: 'https' | 'http', prefix: string, port: number | undefined): string {
  const slash = prefix.indexOf('/');
  const host = slash < 0 ? prefix : prefix.slice(0, slash);
  const path = slash < 0 ? '' : prefix.slice(slash + 1);
  return `${scheme}://${host}${port ? `:${port}` : ''}/${path}?ac-discovery=1`;
}

/** The discovery page for one prefix: https, then plain http if allowed (as appc does). */
async function fetchPage(prefix: string, opts: DiscoveryOptions): Promise<string> {
  const httpOpts = { insecureHttp: opts.insecureHttp, insecureTls: opts.insecureTls, timeouts: opts.timeouts };
  let secureError: unknown;
  try {
    return (await httpGetBuffer(discoveryUrl('https', prefix, opts.port), httpOpts)).toString('utf8');
  } catch (err) {
    if (!opts.insecureHttp) throw err;
    secureError = err;
    debug(`discovery: ${errorMessage(err)}; trying plain HTTP`);
  }
  try {
    return (await httpGetBuffer(discoveryUrl('http', prefix, opts.port), httpOpts)).toString('utf8');
  } catch (err) {
    // No HTTP answer at all: the https failure (e.g. an untrusted certificate) says more.
    throw err instanceof HttpStatusError ? err : secureError;
  }
}

/**
 * Try `name`, then each parent path, until `pick` accepts the matching meta tags of a page.
 * `what` names the meta tag in the error when no page had what was needed.
 */
async function walk<T>(name: string, what: string, opts: DiscoveryOptions, pick: (metas: AcMeta[]) => T | undefined): Promise<T> {
  if (!AC_IDENTIFIER.test(name)) {
    fail(`invalid AC name "${name}": use lowercase letters, digits and -._~/ (like example.com/app)`);
  }
  const parts = name.split('/');
  const tried: string[] = [];
  let failure: unknown;
  for (let end = parts.length; end > 0; end--) {
    const prefix = parts.slice(0, end).join('/');
    tried.push(prefix);
    try {
      const metas = parseAcMeta(await fetchPage(prefix, opts)).filter((m) => name.startsWith(m.prefix));
      const found = pick(metas);
      if (found !== undefined) return found;
      debug(`discovery: no usable ${what} meta tag for "${name}" at ${prefix}`);
    } catch (err) {
      debug(`discovery: ${errorMessage(err)}`);
      // A 4xx only means "not here"; other failures (TLS, connection) explain a miss better.
      const notHere = err instanceof HttpStatusError && err.status >= 400 && err.status < 500;
      if (!notHere && failure === undefined) failure = err;
    }
  }
  const reason = failure !== undefined
    ? errorMessage(failure)
    : `no ${what} meta tag matched at ${discoveryUrl('https', name, opts.port)}`;
  throw new RktError(`discovery failed for "${name}": ${reason} (tried: ${tried.join(', ')})`);
}

/** ACI and signature URLs for `name` with `labels`, plus the public keys offered on the same page. */
export async function discoverImage(
  name: string,
  labels: Record<string, string>,
  opts: DiscoveryOptions,
): Promise<DiscoveredImage> {
  // An empty label counts as absent (so version falls back to "latest"); {name} and {ext} win over labels.
  const given = Object.entries(labels).filter(([, value]) => value !== '');
  const vars = { ...DEFAULT_LABELS, ...Object.fromEntries(given), name };
  return walk(name, 'ac-discovery', opts, (metas) => {
    const acis: DiscoveredImage['acis'] = [];
    for (const m of metas) {
      if (m.name !== 'ac-discovery') continue;
      const aci = render(m.uri, { ...vars, ext: 'aci' });
      const asc = render(m.uri, { ...vars, ext: 'aci.asc' });
      if (aci !== undefined && asc !== undefined) acis.push({ aci, asc });
    }
    if (acis.length === 0) return undefined;
    const pubkeys = metas.filter((m) => m.name === 'ac-discovery-pubkeys').map((m) => m.uri);
    return { acis, pubkeys };
  });
}

/** Public key URLs for `prefix` (rkt trust without a key file). */
export async function discoverPubkeys(prefix: string, opts: DiscoveryOptions): Promise<string[]> {
  return walk(prefix, 'ac-discovery-pubkeys', opts, (metas) => {
    const keys = metas.filter((m) => m.name === 'ac-discovery-pubkeys').map((m) => m.uri);
    return keys.length > 0 ? keys : undefined;
  });
}
