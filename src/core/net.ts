/**
 * Network text forms, read and written ONE way for the whole code base: IP addresses and
 * networks, MAC addresses and Linux interface names. Pure functions, no I/O; each parser
 * returns undefined for bad input and callers word their own error (a ValidationError at
 * an edge, ERR_INVALID_ARG_VALUE in the netlink layer, a VIFFormatError in the codec).
 *
 * - IPv4: four decimal octets, no leading zeros (netaddr and glibc would read them as
 *   octal, which nobody means);
 * - IPv6: RFC 4291 text, an embedded IPv4 tail allowed, no zone index (`%eth0`); printed
 *   as glibc's inet_ntop prints it (what `ip` and netaddr show: lower case, the longest run
 *   of two or more zero groups as `::`, IPv4-compatible and -mapped tails dotted);
 * - MAC: six 2-digit hex groups separated by `:` or `-`, any case (os-vif's
 *   MACAddressField), printed lower case with colons;
 * - interface names: the kernel's dev_valid_name() (net/core/dev.c) plus no control
 *   characters, since these names become file names and log fields.
 */

/** An IP address: its family and its bytes (4 or 16, network order). */
export interface IpAddress {
  family: 4 | 6;
  bytes: Buffer;
}

/** An IP network: an address (host bits kept) and a prefix length. */
export interface IpNetwork extends IpAddress {
  prefix: number;
}

function parseIPv4Octets(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseIPv6Groups(s: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = parseIPv4Octets(g);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  if (!head) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  // An embedded IPv4 address may only end the address.
  if (halves[0]!.includes('.')) return undefined;
  const tail = groups(halves[1]!);
  if (!tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** inet_pton for both families; undefined when `text` is not an address. */
export function parseIp(text: unknown): IpAddress | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const g = parseIPv6Groups(text);
    if (!g) return undefined;
    const bytes = Buffer.alloc(16);
    g.forEach((x, i) => bytes.writeUInt16BE(x, i * 2));
    return { family: 6, bytes };
  }
  const v4 = parseIPv4Octets(text);
  return v4 ? { family: 4, bytes: Buffer.from(v4) } : undefined;
}

/** glibc inet_ntop: dotted quad, or IPv6 with the longest zero run (>= 2, first on ties) as `::`. */
export function formatIp(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length === 4) return [...b].join('.');
  const w = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) tails are dotted.
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      return `${out}${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`;
    }
    out += w[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** An address in canonical text (see {@link formatIp}), or undefined. */
export function canonicalIp(text: unknown): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip.bytes);
}

/**
 * `ADDR/PREFIX` (host bits kept). With `defaultPrefix`, a bare address is a /32 or /128
 * network (netaddr's IPNetwork); otherwise the prefix is required.
 */
export function parseCidr(text: unknown, opts: { defaultPrefix?: boolean } = {}): IpNetwork | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return opts.defaultPrefix ? { ...ip, prefix: max } : undefined;
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return undefined;
  return { ...ip, prefix: Number(p) };
}

/** A network as `ADDR/PREFIX` in canonical text. */
export function formatCidr(n: IpNetwork): string {
  return `${formatIp(n.bytes)}/${n.prefix}`;
}

/** A network in canonical text (see {@link parseCidr} for `defaultPrefix`), or undefined. */
export function canonicalCidr(text: unknown, opts: { defaultPrefix?: boolean } = {}): string | undefined {
  const n = parseCidr(text, opts);
  return n && formatCidr(n);
}

/** The network address of `n` (host bits cleared), e.g. 10.1.2.3/12 → 10.0.0.0/12. */
export function networkOf(n: IpNetwork): IpNetwork {
  const bytes = Buffer.from(n.bytes);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, n.prefix - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return { family: n.family, bytes, prefix: n.prefix };
}

/** True when `ip` lies inside `net` (same family, same leading `prefix` bits). */
export function inNetwork(ip: IpAddress, net: IpNetwork): boolean {
  if (ip.family !== net.family) return false;
  return networkOf({ ...ip, prefix: net.prefix }).bytes.equals(networkOf(net).bytes);
}

const MAC_FORM = /^[0-9a-f]{2}([-:][0-9a-f]{2}){5}$/i;

/** A MAC in canonical form (lower case, colons), or undefined; any MAC, multicast included. */
export function canonicalMac(text: unknown): string | undefined {
  if (typeof text !== 'string' || !MAC_FORM.test(text)) return undefined;
  return text.toLowerCase().replace(/-/g, ':');
}

/** A MAC's six bytes, or undefined. */
export function parseMac(text: unknown): Buffer | undefined {
  const mac = canonicalMac(text);
  return mac === undefined ? undefined : Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** Six bytes as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array): string {
  return [...bytes].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Longest interface name in bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;

// dev_valid_name(): '/', ':' and the kernel's isspace() set (\t \n \v \f \r, space, 0xA0);
// control characters are refused as well.
// eslint-disable-next-line no-control-regex
const BAD_DEV_CHAR = /[/:\s\u0000-\u001f\u007f\u00a0]/;

/** Why `name` is not a valid Linux interface name (rule and reason), or undefined when it is. */
export function ifnameProblem(
  name: unknown,
): { rule: 'type' | 'empty' | 'too-long' | 'reserved' | 'charset'; reason: string } | undefined {
  if (typeof name !== 'string') return { rule: 'type', reason: 'must be a string' };
  if (name.length === 0) return { rule: 'empty', reason: 'must not be empty' };
  if (Buffer.byteLength(name, 'utf8') > MAX_IFNAME_BYTES)
    return { rule: 'too-long', reason: `is at most ${MAX_IFNAME_BYTES} bytes (IFNAMSIZ - 1)` };
  if (name === '.' || name === '..') return { rule: 'reserved', reason: 'must not be "." or ".."' };
  // The kernel checks bytes: a UTF-8 sequence holding 0xA0 is refused too.
  if (BAD_DEV_CHAR.test(name) || Buffer.from(name, 'utf8').includes(0xa0))
    return { rule: 'charset', reason: 'must not contain "/", ":", whitespace or control characters' };
  return undefined;
}
