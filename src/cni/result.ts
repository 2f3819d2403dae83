/**
 * CNI results: the internal (1.1.0) model, builders for vhost-user and veth attachments,
 * decoding of results in any supported version (prevResult, IPAM output) and encoding in
 * the version the runtime asked for.
 *
 * Per-version field sets (each output carries only what its spec version defines):
 * | field                                   | 0.3.0/0.3.1/0.4.0 | 1.0.0 | 1.1.0 |
 * |-----------------------------------------|-------------------|-------|-------|
 * | interfaces[].name/mac/sandbox           | yes               | yes   | yes   |
 * | interfaces[].mtu/socketPath/pciID       | -                 | -     | yes   |
 * | ips[].version ("4"/"6")                 | yes (required)    | -     | -     |
 * | ips[].address/gateway/interface         | yes               | yes   | yes   |
 * | routes[].dst/gw                         | yes               | yes   | yes   |
 * | routes[].mtu/advmss/priority/table/scope| -                 | -     | yes   |
 * | dns (always present, `{}` when empty)   | yes               | yes   | yes   |
 *
 * vhost-user: the interface entry is named after CNI_IFNAME, carries `mac`, `mtu` and the
 * host path of the socket in `socketPath`, and has **no `sandbox`**: no kernel interface
 * exists in the pod netns, and a sandbox would make chained plugins and CHECKers look for
 * one. (Multus therefore reports no interface/mac for it in network-status; the
 * device-info file carries the socket instead.)
 */
import { parseCidr, parseIp } from '../core/net';
import { CniError, CniErrorCode } from './errors';
import { compareCniVersions, isSupportedCniVersion, type CniVersion } from './spec';
import { normalizeMac } from './env';

/** One interface of a result (1.1.0 field set). */
export interface CniInterface {
  name: string;
  mac?: string;
  /** 1.1.0 only. */
  mtu?: number;
  /** Netns path for interfaces inside the sandbox; absent for host-side (and vhost-user) entries. */
  sandbox?: string;
  /** 1.1.0 only: absolute host path of the interface's socket (vhost-user). */
  socketPath?: string;
  /** 1.1.0 only: PCI address of the device, if any. */
  pciID?: string;
}

/** One IP configuration (address in CIDR form). */
export interface CniIpConfig {
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

/** One route (1.1.0 field set). */
export interface CniRoute {
  dst: string;
  gw?: string;
  /** 1.1.0 only. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in the internal model (1.1.0 fields; converted on output). */
export interface CniResult {
  interfaces: CniInterface[];
  ips: CniIpConfig[];
  routes: CniRoute[];
  dns: CniDns;
}

/** An empty result (what an attachment without IPAM returns). */
export function emptyResult(): CniResult {
  return { interfaces: [], ips: [], routes: [], dns: {} };
}

// ---------------------------------------------------------------- validation helpers

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Decoder {
  constructor(
    private readonly code: number,
    private readonly what: string,
  ) {}
  fail(detail: string): never {
    throw new CniError(this.code, `invalid ${this.what}`, detail);
  }
  str(o: Obj, k: string, where: string, required = false): string | undefined {
    const v = o[k];
    if (v === undefined || v === null || (v === '' && !required)) {
      if (required) this.fail(`${where}.${k} is required`);
      return undefined;
    }
    if (typeof v !== 'string') this.fail(`${where}.${k} must be a string`);
    return v;
  }
  int(o: Obj, k: string, where: string, min: number, max: number): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(`${where}.${k} must be an integer in [${min}, ${max}]`);
    }
    return v;
  }
  strArray(o: Obj, k: string, where: string): string[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      this.fail(`${where}.${k} must be an array of strings`);
    return v as string[];
  }
  arr(o: Obj, k: string): Obj[] {
    const v = o[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every(isObj)) this.fail(`${k} must be an array of objects`);
    return v as Obj[];
  }
}

/**
 * Decodes a result of any supported version (prevResult, a delegated IPAM plugin's output)
 * into the internal model. `version` fields of 0.x results are checked against the address
 * and dropped. Throws CniError with `code` (7 for prevResult, 6 for plugin output).
 * `ignoreInterfaceIndexes` drops `ips[].interface` (IPAM output: the caller assigns them).
 */
export function parseResult(
  raw: unknown,
  opts: { code?: number; what?: string; ignoreInterfaceIndexes?: boolean } = {},
): CniResult {
  const d: Decoder = new Decoder(opts.code ?? CniErrorCode.DecodeFailure, opts.what ?? 'result');
  if (!isObj(raw)) d.fail('must be a JSON object');
  const res = emptyResult();
  d.arr(raw, 'interfaces').forEach((o, i) => {
    const w = `interfaces[${i}]`;
    const itf: CniInterface = { name: d.str(o, 'name', w, true)! };
    const mac = d.str(o, 'mac', w);
    if (mac !== undefined) itf.mac = mac;
    const mtu = d.int(o, 'mtu', w, 0, 65535);
    if (mtu !== undefined && mtu > 0) itf.mtu = mtu;
    for (const k of ['sandbox', 'socketPath', 'pciID'] as const) {
      const v = d.str(o, k, w);
      if (v !== undefined) itf[k] = v;
    }
    res.interfaces.push(itf);
  });
  d.arr(raw, 'ips').forEach((o, i) => {
    const w = `ips[${i}]`;
    const address = d.str(o, 'address', w, true)!;
    const cidr = parseCidr(address);
    if (!cidr) d.fail(`${w}.address "${address}" is not an address in CIDR form`);
    const version = d.str(o, 'version', w);
    if (version !== undefined && version !== String(cidr.family))
      d.fail(`${w}.version "${version}" does not match ${address}`);
    const ip: CniIpConfig = { address };
    const gw = d.str(o, 'gateway', w);
    if (gw !== undefined) {
      if (parseIp(gw)?.family !== cidr.family) d.fail(`${w}.gateway "${gw}" is not an IPv${cidr.family} address`);
      ip.gateway = gw;
    }
    // IPAM output should carry no indexes (the caller assigns them); tolerate stray ones there.
    const idx = opts.ignoreInterfaceIndexes ? undefined : d.int(o, 'interface', w, 0, 0xffff);
    if (idx !== undefined) {
      if (idx >= res.interfaces.length) d.fail(`${w}.interface ${idx} does not index interfaces`);
      ip.interface = idx;
    }
    res.ips.push(ip);
  });
  d.arr(raw, 'routes').forEach((o, i) => {
    const w = `routes[${i}]`;
    const dst = d.str(o, 'dst', w, true)!;
    if (!parseCidr(dst)) d.fail(`${w}.dst "${dst}" is not a CIDR`);
    const route: CniRoute = { dst };
    const gw = d.str(o, 'gw', w);
    if (gw !== undefined) {
      if (!parseIp(gw)) d.fail(`${w}.gw "${gw}" is not an IP address`);
      route.gw = gw;
    }
    for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
      const v = d.int(o, k, w, 0, 0xffffffff);
      if (v !== undefined) route[k] = v;
    }
    res.routes.push(route);
  });
  if (raw.dns !== undefined && raw.dns !== null) {
    if (!isObj(raw.dns)) d.fail('dns must be an object');
    const dns: CniDns = {};
    const ns = d.strArray(raw.dns, 'nameservers', 'dns');
    if (ns) dns.nameservers = ns;
    const domain = d.str(raw.dns, 'domain', 'dns');
    if (domain !== undefined) dns.domain = domain;
    const search = d.strArray(raw.dns, 'search', 'dns');
    if (search) dns.search = search;
    const options = d.strArray(raw.dns, 'options', 'dns');
    if (options) dns.options = options;
    res.dns = dns;
  }
  return res;
}

// ---------------------------------------------------------------- encoding per version

function ipFamily(address: string): '4' | '6' {
  return address.includes(':') ? '6' : '4';
}

function dnsOut(dns: CniDns): CniDns {
  const out: CniDns = {};
  if (dns.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = [...dns.search];
  if (dns.options?.length) out.options = [...dns.options];
  return out;
}

/**
 * The result as a JSON-ready object in `cniVersion`, carrying only the fields that
 * version defines (see the table at the top of this file). Key order is fixed so outputs
 * are byte-stable: cniVersion, interfaces, ips, routes, dns.
 */
export function encodeResult(result: CniResult, cniVersion: CniVersion): Record<string, unknown> {
  if (!isSupportedCniVersion(cniVersion)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      'incompatible CNI versions',
      `cannot encode a result as ${String(cniVersion)}`,
    );
  }
  const v1 = compareCniVersions(cniVersion, '1.0.0') >= 0;
  const v11 = compareCniVersions(cniVersion, '1.1.0') >= 0;
  const out: Record<string, unknown> = { cniVersion };
  if (result.interfaces.length > 0) {
    out.interfaces = result.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (v11 && i.mtu) o.mtu = i.mtu;
      if (i.sandbox) o.sandbox = i.sandbox;
      if (v11 && i.socketPath) o.socketPath = i.socketPath;
      if (v11 && i.pciID) o.pciID = i.pciID;
      return o;
    });
  }
  if (result.ips.length > 0) {
    out.ips = result.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (!v1) o.version = ipFamily(ip.address);
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }
  if (result.routes.length > 0) {
    out.routes = result.routes.map((r) => {
      const o: Record<string, unknown> = { dst: r.dst };
      if (r.gw) o.gw = r.gw;
      if (v11)
        for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (r[k] !== undefined) o[k] = r[k];
      return o;
    });
  }
  out.dns = dnsOut(result.dns);
  return out;
}

/** The result serialised as printed on stdout, in the requested version. */
export function formatResult(result: CniResult, cniVersion: CniVersion): string {
  return JSON.stringify(encodeResult(result, cniVersion));
}

/** Re-encodes a result given in any supported version (e.g. prevResult) into `toVersion`. */
export function convertResult(raw: unknown, toVersion: CniVersion): Record<string, unknown> {
  return encodeResult(parseResult(raw), toVersion);
}

// ---------------------------------------------------------------- builders

/** IPAM output attached to an interface: every IP gets `interface: index`. */
function withIpam(res: CniResult, ipam: CniResult | undefined, index: number): CniResult {
  if (!ipam) return res;
  res.ips = ipam.ips.map((ip) => ({ ...ip, interface: index }));
  res.routes = ipam.routes.map((r) => ({ ...r }));
  res.dns = dnsOut(ipam.dns);
  return res;
}

function checkedMac(mac: string): string {
  const m = normalizeMac(mac);
  if (!m)
    throw new CniError(CniErrorCode.InvalidConfig, 'invalid MAC address', `"${mac}" is not a unicast Ethernet address`);
  return m;
}

/** What a vhost-user ADD returns. */
export interface VhostUserResultInput {
  /** CNI_IFNAME: the name the runtime asked for. */
  ifname: string;
  mac: string;
  mtu?: number;
  /** Absolute host path of the vhost-user socket (in the pod's mount dir). */
  socketPath: string;
  /** The delegated IPAM plugin's result, if any. */
  ipam?: CniResult;
}

/** Builds the ADD result for a vhost-user port: one interface with socketPath, no sandbox. */
export function vhostUserResult(input: VhostUserResultInput): CniResult {
  const itf: CniInterface = { name: input.ifname, mac: checkedMac(input.mac), socketPath: input.socketPath };
  if (input.mtu) itf.mtu = input.mtu;
  return withIpam({ ...emptyResult(), interfaces: [itf] }, input.ipam, 0);
}

/** What a veth ADD returns. */
export interface VethResultInput {
  /** Host end (on the OVS bridge). */
  hostIfname: string;
  hostMac?: string;
  /** Container end: CNI_IFNAME, in CNI_NETNS. */
  ifname: string;
  mac: string;
  mtu?: number;
  netns: string;
  ipam?: CniResult;
}

/**
 * Builds the ADD result for a veth attachment: the host end first (no sandbox), then the
 * container end with `sandbox: CNI_NETNS`; IPs point at the container end (index 1), as
 * the reference bridge plugin reports them.
 */
export function vethResult(input: VethResultInput): CniResult {
  const host: CniInterface = { name: input.hostIfname };
  if (input.hostMac) host.mac = checkedMac(input.hostMac);
  if (input.mtu) host.mtu = input.mtu;
  const cont: CniInterface = { name: input.ifname, mac: checkedMac(input.mac), sandbox: input.netns };
  if (input.mtu) cont.mtu = input.mtu;
  return withIpam({ ...emptyResult(), interfaces: [host, cont] }, input.ipam, 1);
}

/** What any ADD returns, from the binding driver's result: a socket (vhost-user) or a host veth end plus the pod's. */
export interface AttachmentResultInput {
  ifname: string;
  mac: string;
  mtu?: number;
  /** vhost-user: the socket handed to the pod. */
  socketPath?: string;
  /** veth: the host end; the container end is `ifname` in `netns`. */
  hostIfname?: string;
  /** veth: the host end's MAC. */
  hostMac?: string;
  netns?: string;
  ipam?: CniResult;
}

/** The ADD result of an attachment: {@link vethResult} when there is a host end, else {@link vhostUserResult}. */
export function attachmentResult(input: AttachmentResultInput): CniResult {
  const { ifname, mac, mtu, ipam } = input;
  if (input.hostIfname !== undefined) {
    if (input.netns === undefined)
      throw new CniError(CniErrorCode.Internal, 'internal error', 'a veth result needs the pod netns');
    return vethResult({
      hostIfname: input.hostIfname,
      hostMac: input.hostMac,
      ifname,
      mac,
      mtu,
      netns: input.netns,
      ipam,
    });
  }
  if (input.socketPath === undefined)
    throw new CniError(
      CniErrorCode.Internal,
      'internal error',
      'an attachment result needs a socket or a host interface',
    );
  return vhostUserResult({ ifname, mac, mtu, socketPath: input.socketPath, ipam });
}
