import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Why a webhook URL is refused; the message names the rule, never the URL's path or query. */
export class UnsafeUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeUrlError';
  }
}

/** Addresses a webhook may not reach outside development: private, loopback, link-local and the like. */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved and broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** An IPv4 address carried inside an IPv6 one (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16). */
function embeddedIpv4(ip: string): string | undefined {
  const lower = ip.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  const sixToFour = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4}):/.exec(lower);
  const m = hex ?? sixToFour;
  if (!m) return undefined;
  const hi = parseInt(m[1] ?? '0', 16);
  const lo = parseInt(m[2] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for an address a webhook may not reach without WEBHOOK_ALLOW_PRIVATE (or an unparsable one). */
export function isPrivateAddress(ip: string): boolean {
  const bare = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return BLOCKED.check(bare, 'ipv4');
  if (family !== 6) return true;
  const v4 = embeddedIpv4(bare);
  if (v4 !== undefined) return isPrivateAddress(v4);
  return BLOCKED.check(bare, 'ipv6');
}

/**
 * The rules of API.md §10 that need no DNS: an absolute http(s) URL without credentials; https unless
 * private addresses are allowed; no literal private address and no `localhost` name unless they are.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UnsafeUrlError('is not an absolute URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UnsafeUrlError('must be https');
  if (u.username || u.password) throw new UnsafeUrlError('must not carry credentials');
  if (allowPrivate) return u;
  if (u.protocol !== 'https:') throw new UnsafeUrlError('must be https');
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(host)) {
    if (isPrivateAddress(host)) throw new UnsafeUrlError('points at a private, loopback or link-local address');
  } else if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    throw new UnsafeUrlError('points at a local host name');
  }
  return u;
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Resolves a host name and refuses it when any of its addresses is private (unless allowed): the one
 * checked address is what the caller then connects to, so a second answer (DNS rebinding) cannot slip in.
 */
export async function resolveWebhookHost(hostname: string, allowPrivate: boolean): Promise<ResolvedAddress> {
  const host = hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  if (literal) {
    if (!allowPrivate && isPrivateAddress(host))
      throw new UnsafeUrlError('points at a private, loopback or link-local address');
    return { address: host, family: literal as 4 | 6 };
  }
  const addresses = await new Promise<{ address: string; family: number }[]>((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs) =>
      err ? reject(new UnsafeUrlError(`host does not resolve (${err.code ?? 'error'})`)) : resolve(addrs),
    ),
  );
  const first = addresses[0];
  if (!first) throw new UnsafeUrlError('host does not resolve');
  if (!allowPrivate && addresses.some((a) => isPrivateAddress(a.address))) {
    throw new UnsafeUrlError('resolves to a private, loopback or link-local address');
  }
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | { address: string; family: number }[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s).request: the connection goes to the address resolveWebhookHost checked.
 * Node asks with `all: true` when it may try several families; it then gets the one checked address.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolveWebhookHost(hostname, allowPrivate).then(
      (r) => (options.all ? callback(null, [r]) : callback(null, r.address, r.family)),
      (err: unknown) => callback(err as NodeJS.ErrnoException, '', 0),
    );
  };
}
