/** Routes (`ip route`): adding one, listing the unicast routes of a table. */
import { formatIp } from '../../core/net';
import { AF, NLM_F, RTA, RTM, RTN, RTPROT, RT_SCOPE, RT_TABLE, SIZEOF } from './constants';
import { ifindexOf } from './link';
import type { NetlinkHandle } from './socket';
import {
  attrBytes,
  attrU32,
  checkLink,
  checkU32,
  cidrBytes,
  invalidArg,
  ipBytes,
  parseAttrs,
  rtmsg,
  type IpBytes,
  type LinkRef,
  type NlAttr,
  type NlMessage,
} from './wire';

/** A route to add; dst 'default' means 0.0.0.0/0 or ::/0 (family from the gateway). */
export interface RouteSpec {
  dst: string;
  gateway?: string;
  /** Output link (name or index); needed for link-scope routes and IPv6 link-local gateways. */
  link?: LinkRef;
  metric?: number;
  table?: number;
  /** Family when dst is 'default' and there is no gateway; default 4. */
  family?: 4 | 6;
}

/** The RTM_NEWROUTE body for a route (pure; exported for tests). */
export function routeMessage(r: RouteSpec, oif?: number): { fixed: Buffer; attrs: NlAttr[] } {
  const gw = r.gateway === undefined ? undefined : ipBytes(r.gateway, 'gateway');
  let dst: (IpBytes & { prefix: number }) | undefined;
  let family: number;
  if (r.dst === 'default') {
    family = gw?.family ?? (r.family === 6 ? AF.INET6 : AF.INET);
  } else {
    dst = cidrBytes(r.dst, 'dst');
    family = dst.family;
  }
  if (gw && gw.family !== family) throw invalidArg('gateway', r.gateway, 'must be of the same family as dst');
  if (!gw && oif === undefined) throw invalidArg('route', r, 'needs a gateway or a link');
  const table = r.table ?? RT_TABLE.MAIN;
  const attrs: NlAttr[] = [];
  if (dst && dst.prefix > 0) attrs.push(attrBytes(RTA.DST, dst.bytes));
  if (gw) attrs.push(attrBytes(RTA.GATEWAY, gw.bytes));
  if (oif !== undefined) attrs.push(attrU32(RTA.OIF, oif));
  if (r.metric !== undefined) attrs.push(attrU32(RTA.PRIORITY, checkU32(r.metric, 'metric')));
  if (table >= 256) attrs.push(attrU32(RTA.TABLE, table));
  const fixed = rtmsg({
    family,
    dstLen: dst?.prefix ?? 0,
    table,
    protocol: RTPROT.BOOT,
    // Without a gateway the destination is on the link itself.
    scope: gw ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK,
    type: RTN.UNICAST,
  });
  return { fixed, attrs };
}

/**
 * `ip route add DST [via GW] [dev LINK] [metric M]`. A route that exists already (e.g. the
 * default route) rejects with code 'EEXIST', which callers may ignore as Kuryr does.
 */
export async function addRoute(h: NetlinkHandle, r: RouteSpec): Promise<void> {
  const oif = r.link === undefined ? undefined : await ifindexOf(h, checkLink(r.link));
  const { fixed, attrs } = routeMessage(r, oif);
  await h.request(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, fixed, attrs, { link: r.link });
}

/** One route as `routeList` reports it. */
export interface RouteInfo {
  family: 4 | 6;
  /** 'default' or a CIDR. */
  dst: string;
  gateway?: string;
  oif?: number;
  metric?: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}

export function parseRoute(m: NlMessage): RouteInfo {
  const p = m.payload;
  const a = parseAttrs(p.subarray(SIZEOF.rtmsg));
  const family = p[0] === AF.INET ? 4 : 6;
  const dstLen = p[1];
  const dst = a.get(RTA.DST);
  const r: RouteInfo = {
    family,
    dst: dstLen === 0 ? 'default' : `${formatIp(dst ?? Buffer.alloc(family === 4 ? 4 : 16))}/${dstLen}`,
    table: a.get(RTA.TABLE)?.readUInt32LE(0) ?? p[4],
    protocol: p[5],
    scope: p[6],
    type: p[7],
  };
  const gw = a.get(RTA.GATEWAY);
  if (gw) r.gateway = formatIp(gw);
  const oif = a.get(RTA.OIF);
  if (oif) r.oif = oif.readUInt32LE(0);
  const prio = a.get(RTA.PRIORITY);
  if (prio) r.metric = prio.readUInt32LE(0);
  return r;
}

/** Unicast routes of a netns (`ip route` + `ip -6 route`), of the main table unless told. */
export async function routeList(h: NetlinkHandle, opts: { table?: number } = {}): Promise<RouteInfo[]> {
  const table = opts.table ?? RT_TABLE.MAIN;
  const fixed = rtmsg({ family: AF.UNSPEC, dstLen: 0, table: RT_TABLE.UNSPEC, protocol: 0, scope: 0, type: 0 });
  const replies = await h.dump(RTM.GETROUTE, RTM.NEWROUTE, fixed);
  return replies.map(parseRoute).filter((r) => r.table === table && r.type === RTN.UNICAST);
}
