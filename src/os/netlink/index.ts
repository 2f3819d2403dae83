/**
 * rtnetlink for the veth and hybrid (linux-bridge) drivers, without spawning `ip`: veth
 * pairs born in the pod netns, links, addresses, routes and per-netns sysctls. Split as
 * the kernel splits it: the wire format (wire.ts, constants.ts), the socket and its
 * per-netns handle (socket.ts), then one file per object (link, addr, route, sysctl).
 * See docs/namespaces-and-threads.md.
 *
 * ```ts
 * const pod = await NetlinkHandle.open('/var/run/netns/pod1');
 * try {
 *   await createVethPair(await hostNetlink(), { name: 'tap1', peerName: 'eth0', peer: pod, up: true });
 *   await addAddress(pod, 'eth0', '10.0.0.5/24');
 * } finally {
 *   pod.close(); // a handle pins its netns
 * }
 * ```
 */
export { NetlinkHandle, hostNetlink, closeHostNetlink, blocksInKernel } from './socket';
export {
  NetlinkError,
  ipv4Broadcast,
  encodeAttrs,
  parseAttrs,
  parseMessages,
  parseError,
  type LinkRef,
  type NlAttr,
  type NlMessage,
  type NlError,
} from './wire';
export {
  linkGet,
  linkList,
  linkSetUp,
  linkSetDown,
  linkSetMtu,
  linkSetAddress,
  linkSetMaster,
  setPromisc,
  linkDel,
  createVethPair,
  createBridge,
  vethPairMessage,
  parseLink,
  type LinkInfo,
  type VethPairOptions,
  type BridgeOptions,
} from './link';
export { addAddress, addrList, parseAddress, type AddressInfo } from './addr';
export { addRoute, routeList, routeMessage, parseRoute, type RouteSpec, type RouteInfo } from './route';
export { setSysctl } from './sysctl';
