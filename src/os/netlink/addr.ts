/** Addresses (`ip addr`): adding one to a link, listing them. */
import { formatIp } from '../../core/net';
import { AF, IFA, IFA_F, NLM_F, RTM, SIZEOF } from './constants';
import { ifindexOf } from './link';
import type { NetlinkHandle } from './socket';
import {
  attrBytes,
  attrU32,
  checkLink,
  cidrBytes,
  ifaddrmsg,
  ipv4Broadcast,
  parseAttrs,
  type LinkRef,
  type NlAttr,
  type NlMessage,
} from './wire';

/**
 * `ip addr add CIDR dev LINK`: IPv4 with IFA_LOCAL, IFA_ADDRESS and IFA_BROADCAST; IPv6
 * with IFA_F_NODAD so it is usable at once (no tentative state). EEXIST if present.
 */
export async function addAddress(h: NetlinkHandle, link: LinkRef, cidr: string): Promise<void> {
  link = checkLink(link);
  const c = cidrBytes(cidr);
  const index = await ifindexOf(h, link);
  const attrs: NlAttr[] = [attrBytes(IFA.LOCAL, c.bytes), attrBytes(IFA.ADDRESS, c.bytes)];
  let flags = 0;
  if (c.family === AF.INET) {
    const brd = ipv4Broadcast(c.bytes, c.prefix);
    if (brd) attrs.push(attrBytes(IFA.BROADCAST, brd));
  } else {
    flags = IFA_F.NODAD;
    attrs.push(attrU32(IFA.FLAGS, flags));
  }
  await h.request(
    RTM.NEWADDR,
    NLM_F.CREATE | NLM_F.EXCL,
    ifaddrmsg({ family: c.family, prefixlen: c.prefix, flags, index }),
    attrs,
    { link },
  );
}

/** One address as `addrList` reports it. */
export interface AddressInfo {
  index: number;
  family: 4 | 6;
  /** The local address (IFA_LOCAL, else IFA_ADDRESS). */
  address: string;
  prefix: number;
  /** IFA_F_* flags (the 32-bit IFA_FLAGS when present). */
  flags: number;
  /** Still in duplicate-address detection: not usable yet. */
  tentative: boolean;
  scope: number;
}

export function parseAddress(m: NlMessage): AddressInfo {
  const p = m.payload;
  const a = parseAttrs(p.subarray(SIZEOF.ifaddrmsg));
  const bytes = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS) ?? Buffer.alloc(p[0] === AF.INET ? 4 : 16);
  const flags = a.get(IFA.FLAGS)?.readUInt32LE(0) ?? p[2];
  return {
    index: p.readUInt32LE(4),
    family: p[0] === AF.INET ? 4 : 6,
    address: formatIp(bytes),
    prefix: p[1],
    flags,
    tentative: (flags & IFA_F.TENTATIVE) !== 0,
    scope: p[3],
  };
}

/** Addresses of a netns (`ip addr`), optionally of one link only. */
export async function addrList(h: NetlinkHandle, opts: { link?: LinkRef } = {}): Promise<AddressInfo[]> {
  const index = opts.link === undefined ? undefined : await ifindexOf(h, checkLink(opts.link));
  const replies = await h.dump(RTM.GETADDR, RTM.NEWADDR, ifaddrmsg({ family: AF.UNSPEC, prefixlen: 0, index: 0 }));
  return replies.map(parseAddress).filter((x) => index === undefined || x.index === index);
}
