import { lookup, type LookupAddress } from 'node:dns';
import { lookup as lookupAll } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Config } from '../config.ts';

/** Which URLs a webhook may have: WEBHOOK_ALLOWED_HOSTS and WEBHOOK_ALLOW_PRIVATE_ADDRESSES. */
export interface WebhookUrlPolicy {
  /** Lower-case host names and IP addresses (IPv6 without brackets); null: any host. */
  readonly allowedHosts: readonly string[] | null;
  readonly allowPrivateAddresses: boolean;
}

export function webhookUrlPolicy(
  config: Pick<Config, 'WEBHOOK_ALLOWED_HOSTS' | 'WEBHOOK_ALLOW_PRIVATE_ADDRESSES'>,
): WebhookUrlPolicy {
  return {
    allowedHosts: config.WEBHOOK_ALLOWED_HOSTS ?? null,
    allowPrivateAddresses: config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
  };
}

/**
 * Every range that is not the public internet (IANA's special-purpose registries): a webhook that
 * could name these would let any client make the server call its own loopback services, the
 * cloud's metadata endpoint (169.254.169.254) or the machines of its private network. An
 * IPv4-mapped IPv6 address (::ffff:10.0.0.1) is checked by BlockList against the IPv4 ranges (a
 * rule for ::ffff:0:0/96 would match every IPv4 address too); NAT64 addresses are refused whole,
 * since they reach IPv4 addresses by another name.
 */
const nonPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
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
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv6');
}

/** Why a webhook may not connect to `address` (an IP address), or null when it may. */
export function addressRefusal(address: string, policy: WebhookUrlPolicy): string | null {
  if (policy.allowPrivateAddresses) return null;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return nonPublic.check(address, family)
    ? `${address} is a loopback, private, link-local or otherwise non-public address, which this server does not call`
    : null;
}

/** Every address `host` resolves to, IPv4 and IPv6, as the connection would look them up. */
export type Resolver = (host: string) => Promise<readonly string[]>;

const resolveAll: Resolver = async (host) =>
  (await lookupAll(host, { all: true, verbatim: true })).map((entry) => entry.address);

/**
 * Why `url` may not be a webhook's, or null when it may: http(s) only, its host on the allow-list
 * when there is one, and every address it resolves to public unless private ones are allowed
 * (checking only one of them would let a name that resolves to a public and a private address
 * through). Checked when a job is submitted, for a clear 400, and again at each delivery, since
 * the settings and the name's addresses may have changed since.
 */
export async function urlRefusal(
  url: string,
  policy: WebhookUrlPolicy,
  resolve: Resolver = resolveAll,
): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'it is not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `its scheme is ${parsed.protocol.slice(0, -1)}; only http and https are allowed`;
  if (parsed.username !== '' || parsed.password !== '')
    return 'it carries a user name or password; sign with the secret instead';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (policy.allowedHosts && !policy.allowedHosts.includes(host))
    return `its host ${host} is not on this server's list of allowed webhook hosts (WEBHOOK_ALLOWED_HOSTS)`;
  if (isIP(host) !== 0) return addressRefusal(host, policy);
  let addresses: readonly string[];
  try {
    addresses = await resolve(host);
  } catch (error) {
    return `its host ${host} can't be resolved (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (addresses.length === 0) return `its host ${host} has no address`;
  for (const address of addresses) {
    const refusal = addressRefusal(address, policy);
    if (refusal) return `its host ${host} resolves to ${refusal}`;
  }
  return null;
}

/** The error code with which guardedLookup refuses an address: a refusal that no retry will change. */
export const refusedAddressCode = 'EWEBHOOKREFUSED';

/**
 * A DNS lookup for http.request that refuses the addresses the policy refuses: the check is then
 * made on the very addresses the connection goes to, so a name whose answer changes between the
 * check and the connection (DNS rebinding) can't reach a private address.
 */
export function guardedLookup(policy: WebhookUrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, []);
      const refusal = addresses.map((entry) => addressRefusal(entry.address, policy)).find((reason) => reason !== null);
      if (refusal)
        return callback(
          Object.assign(new Error(`${hostname} resolves to ${refusal}`), { code: refusedAddressCode }),
          [],
        );
      if (options.all) return callback(null, addresses);
      const [first] = addresses;
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
