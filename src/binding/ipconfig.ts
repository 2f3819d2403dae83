/**
 * L3 configuration of a pod interface: which addresses and routes the veth and hybrid
 * drivers put on the container end, from either source a plug can have:
 *
 * - a VIF's `network.subnets` (Kuryr's `_configure_l3`): every fixed IP with its subnet's
 *   prefix length, every subnet host route, and a default route via the subnet gateway
 *   when the interface is the pod's default gateway;
 * - a CNI IPAM result (standalone mode, e.g. host-local): `ips[]` of this interface and
 *   `routes[]`, a route without `gw` going via the gateway of the same family, as libcni's
 *   `ipam.ConfigureIface` does.
 *
 * Pure functions, no I/O. Addresses and gateways come out in canonical text (the form
 * the kernel reports back: dotted quad, RFC 5952), so CHECK can compare them as strings.
 * Bad input is a {@link ValidationError} naming the field, before anything is configured.
 */
import {
  formatCidr,
  formatIp,
  inNetwork,
  networkOf as networkAddress,
  parseCidr,
  parseIp,
  type IpAddress,
  type IpNetwork,
} from '../core/net';
import type { Subnet, VIF } from '../vif/model';
import { ValidationError } from '../core/validate';

/** One route for the pod interface. `dst` is a CIDR or `default`; no gateway = on-link. */
export interface IpRoute {
  dst: string;
  gateway?: string;
}

/** What to configure on a pod interface: addresses in CIDR form (`10.0.0.5/24`) and routes. */
export interface IpConfig {
  addresses: string[];
  routes: IpRoute[];
}

/** A validated {@link IpConfig}: canonical text, families resolved, duplicates dropped. */
export interface NormalizedIpConfig {
  addresses: { cidr: string; address: string; prefix: number; family: 4 | 6 }[];
  routes: { dst: string; gateway?: string; family: 4 | 6 }[];
}

/** The CNI result fields the IPAM path reads (structurally a `CniResult`). */
export interface IpamResultLike {
  ips?: ReadonlyArray<{ address: string; gateway?: string; interface?: number }>;
  routes?: ReadonlyArray<{ dst: string; gw?: string }>;
}

function cidrOrThrow(value: unknown, field: string): IpNetwork {
  const n = parseCidr(value);
  if (!n)
    throw new ValidationError(
      field,
      value,
      'charset',
      'expected an IP address with a prefix length, e.g. 10.0.0.5/24 or fd00::5/64',
    );
  return n;
}

function ipOrThrow(value: unknown, field: string): IpAddress {
  const ip = parseIp(value);
  if (!ip) throw new ValidationError(field, value, 'charset', 'expected an IPv4 or IPv6 address');
  return ip;
}

/** True when `ip` lies inside `net` (same family, same leading `prefix` bits). */
export const inSubnet = inNetwork;

/** The network address of a CIDR in canonical text (`10.0.0.5/24` → `10.0.0.0/24`). */
export function networkOf(cidr: IpNetwork): string {
  return formatCidr(networkAddress(cidr));
}

/**
 * Validates and canonicalises an {@link IpConfig}: addresses are `ip/prefix`, a route's
 * gateway has the family of its destination, and a gateway is reachable (inside an address's
 * subnet, behind an on-link route, or IPv6 link-local): the kernel would refuse it later
 * with a less clear ENETUNREACH. Routes are ordered on-link first, so their next hops exist
 * when the routes through them are added.
 */
export function normalizeIpConfig(c: IpConfig, field = 'ipConfig'): NormalizedIpConfig {
  if (!c || typeof c !== 'object')
    throw new ValidationError(field, c, 'type', 'must be an object with addresses and routes');
  const addresses = c.addresses ?? [];
  const routes = c.routes ?? [];
  if (!Array.isArray(addresses))
    throw new ValidationError(`${field}.addresses`, addresses, 'type', 'must be an array of CIDR strings');
  if (!Array.isArray(routes))
    throw new ValidationError(`${field}.routes`, routes, 'type', 'must be an array of {dst, gateway?}');
  const out: NormalizedIpConfig = { addresses: [], routes: [] };
  const seen = new Set<string>();
  const nets: IpNetwork[] = [];
  addresses.forEach((a, i) => {
    const p = cidrOrThrow(a, `${field}.addresses[${i}]`);
    const address = formatIp(p.bytes);
    const cidr = `${address}/${p.prefix}`;
    if (seen.has(address)) return;
    seen.add(address);
    nets.push(p);
    out.addresses.push({ cidr, address, prefix: p.prefix, family: p.family });
  });
  // A next hop is reachable through an address's subnet or an on-link route (e.g. the
  // 169.254.1.1/32 + default-via-169.254.1.1 pattern of /32 addressing).
  for (const r of routes) {
    if (r && typeof r === 'object' && !r.gateway && typeof r.dst === 'string' && r.dst !== 'default') {
      const n = parseCidr(r.dst);
      if (n) nets.push(n); // a bad one is reported with its index below
    }
  }
  const seenRoutes = new Set<string>();
  routes.forEach((r, i) => {
    const f = `${field}.routes[${i}]`;
    if (!r || typeof r !== 'object') throw new ValidationError(f, r, 'type', 'must be an object {dst, gateway?}');
    let gw: IpAddress | undefined;
    if (r.gateway !== undefined && r.gateway !== '') gw = ipOrThrow(r.gateway, `${f}.gateway`);
    let dst: string;
    let family: 4 | 6;
    if (r.dst === 'default') {
      if (!gw) throw new ValidationError(`${f}.gateway`, r.gateway, 'empty', 'a default route needs a gateway');
      family = gw.family;
      dst = 'default';
    } else {
      const d = cidrOrThrow(r.dst, `${f}.dst`);
      family = d.family;
      // 0.0.0.0/0 and ::/0 are the default route; the kernel stores them as such.
      dst = d.prefix === 0 ? 'default' : networkOf(d);
    }
    if (gw && gw.family !== family) {
      throw new ValidationError(
        `${f}.gateway`,
        r.gateway,
        'reserved',
        `is IPv${gw.family} but the destination is IPv${family}`,
      );
    }
    if (gw && !nets.some((n) => inSubnet(gw!, n)) && !isIpv6LinkLocal(gw)) {
      throw new ValidationError(
        `${f}.gateway`,
        r.gateway,
        'reserved',
        'is neither on a subnet of the interface addresses nor behind an on-link route (unreachable next hop)',
      );
    }
    const gateway = gw ? formatIp(gw.bytes) : undefined;
    const key = `${family} ${dst} ${gateway ?? ''}`;
    if (seenRoutes.has(key)) return;
    seenRoutes.add(key);
    out.routes.push(gateway === undefined ? { dst, family } : { dst, gateway, family });
  });
  out.routes.sort((a, b) => Number(a.gateway !== undefined) - Number(b.gateway !== undefined));
  return out;
}

function isIpv6LinkLocal(ip: IpAddress): boolean {
  return ip.bytes.length === 16 && ip.bytes[0] === 0xfe && (ip.bytes[1]! & 0xc0) === 0x80;
}

/**
 * Kuryr's L3 for a VIF: per subnet, every fixed IP with the subnet's prefix length, every
 * host route of the subnet, and (when `isDefaultGateway`) a default route via the subnet's
 * gateway. Routes of a subnet the interface has no address on are skipped: their next hop
 * would be unreachable (Kuryr fails the ADD with ENETUNREACH there).
 */
export function ipConfigFromVif(vif: Pick<VIF, 'network'>, opts: { isDefaultGateway?: boolean } = {}): IpConfig {
  const cfg: IpConfig = { addresses: [], routes: [] };
  const subnets: Subnet[] = vif.network?.subnets ?? [];
  subnets.forEach((s, i) => {
    const f = `network.subnets[${i}]`;
    const net = cidrOrThrow(s.cidr, `${f}.cidr`);
    const ips = s.ips ?? [];
    ips.forEach((ip, j) => {
      const a = ipOrThrow(ip.address, `${f}.ips[${j}].address`);
      if (!inSubnet(a, net)) {
        throw new ValidationError(
          `${f}.ips[${j}].address`,
          ip.address,
          'reserved',
          `is not inside the subnet ${s.cidr}`,
        );
      }
      cfg.addresses.push(`${formatIp(a.bytes)}/${net.prefix}`);
    });
    if (ips.length === 0) return;
    for (const r of s.routes ?? []) cfg.routes.push(r.gateway ? { dst: r.cidr, gateway: r.gateway } : { dst: r.cidr });
    if (opts.isDefaultGateway && s.gateway) cfg.routes.push({ dst: 'default', gateway: s.gateway });
  });
  return cfg;
}

/**
 * The L3 of interface `interfaceIndex` from a CNI IPAM result: its `ips` (entries whose
 * `interface` is unset or equal to the index) and every route; a route without `gw` goes
 * via the first gateway of its family among those ips, else on-link (libcni's
 * ConfigureIface). With `isDefaultGateway: false`, default routes are left out, so a
 * secondary (Multus) interface does not steal the pod's default route.
 */
export function ipConfigFromIpam(
  result: IpamResultLike,
  opts: { interfaceIndex?: number; isDefaultGateway?: boolean } = {},
): IpConfig {
  const cfg: IpConfig = { addresses: [], routes: [] };
  const gateways = new Map<4 | 6, string>();
  (result.ips ?? []).forEach((ip, i) => {
    if (ip.interface !== undefined && opts.interfaceIndex !== undefined && ip.interface !== opts.interfaceIndex) return;
    const c = cidrOrThrow(ip.address, `ips[${i}].address`);
    cfg.addresses.push(`${formatIp(c.bytes)}/${c.prefix}`);
    if (ip.gateway) {
      const gw = ipOrThrow(ip.gateway, `ips[${i}].gateway`);
      if (!gateways.has(gw.family)) gateways.set(gw.family, formatIp(gw.bytes));
    }
  });
  (result.routes ?? []).forEach((r, i) => {
    const d = cidrOrThrow(r.dst, `routes[${i}].dst`);
    if (d.prefix === 0 && opts.isDefaultGateway === false) return;
    const gw = r.gw || gateways.get(d.family);
    cfg.routes.push(gw ? { dst: r.dst, gateway: gw } : { dst: r.dst });
  });
  return cfg;
}
