/**
 * The os-vif VIF model, as plain typed data.
 *
 * Field names are os-vif's (`vif_name`, `has_traffic_filtering`, `port_profile`, ...), so a
 * primitive maps onto these objects one to one. A field that is `undefined` (absent) is
 * *unset* in os-vif terms and is not serialised; `null` is a set, nullable field. The
 * `ObjectListBase` wrappers (SubnetList, FixedIPList, RouteList) are plain arrays here;
 * the codec (ovo.ts) adds and removes the wrapping.
 *
 * Classes with subclasses in os-vif (the VIF itself, the port profile, the datapath
 * offload) carry a `kind` discriminant equal to the os-vif class name.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { VHostUserMode } from '../core/validate';
import { vhostUserPortName } from './names';

export type { VHostUserMode } from '../core/validate';

/** os-vif `FixedIP` 1.0: one address of a port. */
export interface FixedIP {
  address: string;
  floating_ips?: string[];
}

/** os-vif `Route` 1.0: a host route of a subnet. */
export interface Route {
  cidr: string;
  gateway?: string;
  /** Never set by Nova or Kuryr; kept for completeness. */
  interface?: string;
}

/** os-vif `Subnet` 1.0. `ips` and `routes` are FixedIPList / RouteList on the wire. */
export interface Subnet {
  cidr: string;
  dns?: string[];
  gateway?: string;
  ips?: FixedIP[];
  routes?: Route[];
  dhcp_server?: string;
}

/** os-vif `Network` 1.1. `bridge` is the OVS bridge os-vif plugs into. `subnets` is a SubnetList on the wire. */
export interface Network {
  id: string;
  bridge?: string;
  label?: string;
  subnets?: Subnet[];
  multi_host?: boolean;
  should_provide_bridge?: boolean;
  should_provide_vlan?: boolean;
  bridge_interface?: string | null;
  vlan?: number | null;
  /** null (os-vif's constructor default) or unset means `[os_vif_ovs] network_device_mtu`. */
  mtu?: number | null;
}

/** os-vif `DatapathOffloadRepresentor` 1.0 (the only datapath offload os-vif defines). */
export interface DatapathOffloadRepresentor {
  kind: 'DatapathOffloadRepresentor';
  representor_name?: string | null;
  representor_address?: string | null;
}

/** os-vif `VIFPortProfileOpenVSwitch` (1.3 in os-vif 3.0): how the VIF attaches to OVS. */
export interface VIFPortProfileOpenVSwitch {
  kind: 'VIFPortProfileOpenVSwitch';
  /** Becomes `external_ids:iface-id` (the Neutron port id). */
  interface_id: string;
  profile_id?: string;
  /** Bridge datapath type; unset or empty means os-vif's default (`netdev` for vhost-user). */
  datapath_type?: string | null;
  create_port?: boolean;
  datapath_offload?: DatapathOffloadRepresentor | null;
}

/** The port profiles vhostplug understands. */
export type VIFPortProfile = VIFPortProfileOpenVSwitch;

/** The fields every os-vif VIF has (`VIFBase` 1.0). */
export interface VIFCommon {
  /** The Neutron port id. Every device name is derived from it. */
  id: string;
  /** Guest MAC, lower-case colon form after decoding; nullable in os-vif. */
  address?: string | null;
  network?: Network | null;
  /** The os-vif plugin name (`ovs`). */
  plugin?: string;
  active?: boolean;
  preserve_on_delete?: boolean;
  has_traffic_filtering?: boolean;
  port_profile?: VIFPortProfile;
}

/** os-vif `VIFVHostUser` 1.1: a vhost-user socket on an OVS DPDK bridge. */
export interface VIFVHostUser extends VIFCommon {
  kind: 'VIFVHostUser';
  /** `vhu` + port id (14 characters). Added in 1.1, so absent in 1.0 primitives; os-vif recomputes it from `id`. */
  vif_name?: string;
  /** The socket path, `<mount_point>/<vif_name>` when Kuryr builds it. */
  path?: string;
  /** `client`: OVS listens (`dpdkvhostuser`); `server`: the pod listens (`dpdkvhostuserclient`). */
  mode: VHostUserMode;
}

/** os-vif `VIFOpenVSwitch` 1.0: a veth whose host end (`vif_name`) is an OVS port on `bridge_name`. */
export interface VIFOpenVSwitch extends VIFCommon {
  kind: 'VIFOpenVSwitch';
  vif_name: string;
  bridge_name: string;
}

/** os-vif `VIFBridge` 1.0: hybrid plug, a veth on the Linux bridge `bridge_name` (`qbr…`). */
export interface VIFBridge extends VIFCommon {
  kind: 'VIFBridge';
  vif_name: string;
  bridge_name: string;
}

/** Every VIF class vhostplug can decode, encode and plug. */
export type VIF = VIFVHostUser | VIFOpenVSwitch | VIFBridge;

/** The `kind` values of {@link VIF}. */
export type VIFKind = VIF['kind'];

/** The os-vif class names vhostplug supports as VIFs. */
export const VIF_KINDS: readonly VIFKind[] = ['VIFVHostUser', 'VIFOpenVSwitch', 'VIFBridge'];

/** Kuryr's name for the default (first) interface of a pod (`constants.DEFAULT_IFNAME`). */
export const DEFAULT_IFNAME = 'eth0';

/** One VIF of a pod, by interface name, as a KuryrPort or the legacy annotation lists them. */
export interface PodVIF {
  ifname: string;
  /** True for the interface that carries the default route (KuryrPort `default: true`). */
  default: boolean;
  vif: VIF;
}

/**
 * The values os-vif's `Network.__init__` gives fields that are not passed: an object
 * os-vif constructs or decodes always has them set.
 */
export function networkDefaults(): Pick<
  Network,
  'subnets' | 'multi_host' | 'should_provide_bridge' | 'should_provide_vlan' | 'mtu'
> {
  return { subnets: [], multi_host: false, should_provide_bridge: false, should_provide_vlan: false, mtu: null };
}

/** A Network as os-vif's constructor makes it: `fields` over {@link networkDefaults} (an `undefined` field keeps its default). */
export function newNetwork(fields: Network): Network {
  const net: Network = { id: fields.id, ...networkDefaults() };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) (net as unknown as Record<string, unknown>)[k] = v;
  return net;
}

/** True if the VIF is a vhost-user VIF. */
export function isVHostUser(vif: VIF): vif is VIFVHostUser {
  return vif.kind === 'VIFVHostUser';
}

/** What {@link makeVHostUserVif} may be told instead of its defaults. */
export interface VHostUserVifOptions {
  /** The Neutron port id (default: a random UUID). */
  id?: string;
  /** Guest MAC (default: `fa:16:3e:` + the first 6 hex digits of the id). */
  address?: string;
  /** Network fields over `{ id: random, bridge: 'br-int', mtu: 1500, subnets: [] }`. */
  network?: Partial<Network>;
}

/**
 * A VIFVHostUser as Kuryr's controller builds it for a port (OVS plugin, active, the
 * OpenVSwitch port profile, `vif_name` from the id, `path` = `<mountPoint>/<vif_name>`):
 * the one builder the benchmarks, the demo and the tests share.
 */
export function makeVHostUserVif(
  mode: VHostUserMode,
  mountPoint: string,
  opts: VHostUserVifOptions = {},
): VIFVHostUser {
  const id = opts.id ?? randomUUID();
  const name = vhostUserPortName(id);
  return {
    kind: 'VIFVHostUser',
    id,
    address: opts.address ?? `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
    network: { id: randomUUID(), bridge: 'br-int', mtu: 1500, subnets: [], ...opts.network },
    plugin: 'ovs',
    active: true,
    preserve_on_delete: false,
    has_traffic_filtering: false,
    port_profile: { kind: 'VIFPortProfileOpenVSwitch', interface_id: id },
    vif_name: name,
    path: path.join(mountPoint, name),
    mode,
  };
}
