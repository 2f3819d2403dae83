/**
 * Neutron port -> os-vif VIF, as kuryr-kubernetes' `neutron_to_osvif_vif_ovs` does it
 * (shared/reference/kuryr-behaviour.md section 2.4), with its bugs fixed:
 *
 * 1. `binding:vif_type` must be `ovs` or `vhostuser`; `binding_failed` and anything else
 *    are refused with a clear error (Kuryr: ResourceNotReady / stevedore NoMatches).
 * 2. Bridge = `vif_details.bridge_name`, else `[neutron_defaults] ovs_bridge`; neither ->
 *    an error naming that option, BEFORE any network processing (as Kuryr).
 * 3. A truthy `vif_details.vhostuser_mode` alone picks vhost-user, over `ovs_hybrid_plug`
 *    (as Kuryr); it must be `client` or `server`. A missing `[vhostuser] mount_point` is an
 *    error naming THAT option (Kuryr names `[neutron_defaults] vhostuser_mount_point`).
 *    `vif_type: vhostuser` without a mode is refused (Kuryr would build a VIFOpenVSwitch
 *    with plugin `vhostuser`, which nothing can plug).
 * 4. Names: `vhu`/`tap`/`qbr` + port id, 14 characters (names.ts); the socket path is
 *    names.ts's single definition, `<mount_point>/<vif_name>`.
 * 5. The network is the requested Network whose id is the port's `network_id`, with one
 *    subnet per requested subnet the port has fixed IPs on (IntegrityError cases kept).
 *
 * Neutron's `vhostuser_socket`, `vhostuser_ovs_plug` and `datapath_type` are ignored, as
 * Kuryr ignores them: the CNI node's own config decides where sockets live.
 */
import { VhostplugError } from '../core/errors';
import { isValidationError, validateMode, validateVifName } from '../core/validate';
import { canonicalMac } from '../core/net';
import type {
  FixedIP,
  Network,
  Route,
  Subnet,
  VIF,
  VIFBridge,
  VIFOpenVSwitch,
  VIFPortProfileOpenVSwitch,
  VIFVHostUser,
} from './model';
import { newNetwork } from './model';
import { hybridBridgeName, vethHostName, vhostUserPortName, vhostUserSocketPath } from './names';
import { canonicalIPAddress, canonicalIPNetwork } from './ovo';

/** The `binding:vif_details` keys Kuryr reads (Neutron sends more; they are ignored). */
export interface NeutronVifDetails {
  vhostuser_mode?: string | boolean | null;
  bridge_name?: string | null;
  port_filter?: boolean;
  ovs_hybrid_plug?: boolean;
  [key: string]: unknown;
}

/** The Neutron port fields the translation reads. Both the API (`binding:vif_type`) and the openstacksdk (`binding_vif_type`) spellings are accepted. */
export interface NeutronPort {
  id: string;
  mac_address: string;
  status?: string;
  network_id: string;
  fixed_ips?: ReadonlyArray<{ subnet_id: string; ip_address: string }>;
  'binding:vif_type'?: string;
  'binding:vif_details'?: NeutronVifDetails | null;
  binding_vif_type?: string;
  binding_vif_details?: NeutronVifDetails | null;
}

/** A Neutron network as `show_network` returns it (the fields used). */
export interface NeutronNetwork {
  id: string;
  name?: string | null;
  mtu?: number | null;
  'provider:network_type'?: string | null;
  'provider:segmentation_id'?: number | null;
}

/** A Neutron subnet as `show_subnet` returns it (the fields used). */
export interface NeutronSubnet {
  id: string;
  network_id: string;
  cidr: string;
  gateway_ip?: string | null;
  dns_nameservers?: readonly string[];
  host_routes?: ReadonlyArray<{ destination: string; nexthop: string }>;
}

/**
 * Kuryr's subnet mapping (`PodSubnetsDriver.get_subnets`): subnet id -> an os-vif Network
 * holding exactly that one subnet.
 */
export type SubnetMapping = Readonly<Record<string, Network>>;

/** The two kuryr.conf options the translation needs. */
export interface TranslationConfig {
  /** `[neutron_defaults] ovs_bridge`: the bridge when the port names none. */
  ovs_bridge?: string | null;
  /** `[vhostuser] mount_point`: the directory the socket is exposed in. */
  mount_point?: string | null;
}

export type NeutronTranslationErrorCode =
  'EPORTBINDINGFAILED' | 'EVIFTYPE' | 'EREQUIREDOPT' | 'EINTEGRITY' | 'EBADVALUE';

/** The port cannot become a VIF. `section`/`option` name the kuryr.conf option to set for EREQUIREDOPT. */
export class NeutronTranslationError extends VhostplugError {
  declare readonly code: NeutronTranslationErrorCode;
  readonly portId: string | undefined;
  readonly section: string | undefined;
  readonly option: string | undefined;

  constructor(
    code: NeutronTranslationErrorCode,
    portId: string | undefined,
    message: string,
    extra: { section?: string; option?: string; cause?: unknown } = {},
  ) {
    super(
      code,
      portId ? `port ${portId}: ${message}` : message,
      extra.cause === undefined ? undefined : { cause: extra.cause },
    );
    this.portId = portId;
    this.section = extra.section;
    this.option = extra.option;
  }
}

function requiredOpt(portId: string, section: string, option: string, why: string): NeutronTranslationError {
  return new NeutronTranslationError('EREQUIREDOPT', portId, `${why}: set [${section}] ${option} in kuryr.conf`, {
    section,
    option,
  });
}

/** Runs a validator, turning its ValidationError into an EBADVALUE translation error. */
function checked<T>(portId: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isValidationError(err)) throw new NeutronTranslationError('EBADVALUE', portId, err.message, { cause: err });
    throw err;
  }
}

/** os-vif Network for a Neutron network (`neutron_to_osvif_network`): label and mtu only when given; VLAN provider networks get their tag. */
export function neutronNetworkToOsvif(net: NeutronNetwork): Network {
  const obj = newNetwork({ id: net.id });
  if (net.name != null) obj.label = net.name;
  if (net.mtu != null) obj.mtu = net.mtu;
  if (net['provider:network_type'] === 'vlan' && net['provider:segmentation_id'] != null) {
    obj.should_provide_vlan = true;
    obj.vlan = net['provider:segmentation_id'];
  }
  return obj;
}

/** os-vif Subnet for a Neutron subnet (`neutron_to_osvif_subnet`): gateway only when given. */
export function neutronSubnetToOsvif(sn: NeutronSubnet): Subnet {
  const canon = (fn: (t: string) => string | undefined, v: string, what: string): string => {
    const out = fn(v);
    if (out === undefined)
      throw new NeutronTranslationError(
        'EBADVALUE',
        undefined,
        `subnet ${sn.id}: ${what} ${JSON.stringify(v)} is not valid`,
      );
    return out;
  };
  const routes: Route[] = (sn.host_routes ?? []).map((r) => ({
    cidr: canon(canonicalIPNetwork, r.destination, 'host route destination'),
    gateway: canon(canonicalIPAddress, r.nexthop, 'host route nexthop'),
  }));
  const subnet: Subnet = {
    cidr: canon(canonicalIPNetwork, sn.cidr, 'cidr'),
    dns: (sn.dns_nameservers ?? []).map((d) => canon(canonicalIPAddress, d, 'DNS server')),
    routes,
  };
  if (sn.gateway_ip != null) subnet.gateway = canon(canonicalIPAddress, sn.gateway_ip, 'gateway_ip');
  return subnet;
}

/** Builds Kuryr's subnet mapping from Neutron networks and subnets (one Network per subnet). */
export function makeSubnetMapping(
  networks: readonly NeutronNetwork[],
  subnets: readonly NeutronSubnet[],
): Record<string, Network> {
  const byId = new Map(networks.map((n) => [n.id, n]));
  const out: Record<string, Network> = {};
  for (const sn of subnets) {
    const net = byId.get(sn.network_id);
    if (!net)
      throw new NeutronTranslationError(
        'EINTEGRITY',
        undefined,
        `subnet ${sn.id} belongs to network ${sn.network_id}, which was not given`,
      );
    out[sn.id] = { ...neutronNetworkToOsvif(net), subnets: [neutronSubnetToOsvif(sn)] };
  }
  return out;
}

/** The port's Network: a copy of the requested one with the port's network id, subnets rebuilt from its fixed IPs (`_make_vif_network`). */
export function makeVifNetwork(port: NeutronPort, subnets: SubnetMapping): Network {
  const requested = Object.values(subnets);
  const match = requested.find((n) => n.id === port.network_id);
  if (!match) {
    throw new NeutronTranslationError(
      'EINTEGRITY',
      port.id,
      `belongs to network ${port.network_id}, but the requested networks are [${[...new Set(requested.map((n) => n.id))].join(', ')}]`,
    );
  }
  const network: Network = structuredClone(match);
  const vifSubnets = new Map<string, Subnet & { ips: FixedIP[] }>();
  (port.fixed_ips ?? []).forEach((fip, i) => {
    const mapped = Object.prototype.hasOwnProperty.call(subnets, fip.subnet_id) ? subnets[fip.subnet_id] : undefined;
    if (!mapped) return; // a subnet that was not requested: Kuryr skips it
    let subnet = vifSubnets.get(fip.subnet_id);
    if (!subnet) {
      const n = mapped.subnets?.length ?? 0;
      if (n !== 1) {
        throw new NeutronTranslationError(
          'EINTEGRITY',
          port.id,
          `the network object for subnet ${fip.subnet_id} must contain a single subnet, but ${n} found`,
        );
      }
      subnet = { ...structuredClone(mapped.subnets![0]!), ips: [] };
      vifSubnets.set(fip.subnet_id, subnet);
    }
    const address = canonicalIPAddress(fip.ip_address);
    if (address === undefined) {
      throw new NeutronTranslationError(
        'EBADVALUE',
        port.id,
        `fixed_ips[${i}].ip_address ${JSON.stringify(fip.ip_address)} is not an IP address`,
      );
    }
    subnet.ips.push({ address });
  });
  if (vifSubnets.size === 0)
    throw new NeutronTranslationError(
      'EINTEGRITY',
      port.id,
      'no valid subnets found (no fixed IP is on a requested subnet)',
    );
  network.subnets = [...vifSubnets.values()];
  return network;
}

/** The port's `binding:vif_type`, either spelling. */
export function portVifType(port: NeutronPort): string | undefined {
  return port['binding:vif_type'] ?? port.binding_vif_type;
}

/**
 * Translates a bound Neutron port into the os-vif VIF Kuryr would build for it:
 * VIFVHostUser (vhost-user), VIFBridge (hybrid plug) or VIFOpenVSwitch. Throws
 * {@link NeutronTranslationError}.
 */
export function neutronPortToVIF(port: NeutronPort, subnets: SubnetMapping, config: TranslationConfig): VIF {
  const portId = typeof port?.id === 'string' && port.id !== '' ? port.id : undefined;
  if (!portId) throw new NeutronTranslationError('EBADVALUE', undefined, 'the port has no id');
  const vifType = portVifType(port);
  if (vifType === 'binding_failed') {
    throw new NeutronTranslationError(
      'EPORTBINDINGFAILED',
      portId,
      'Neutron failed to bind the port (binding:vif_type binding_failed); check the OVS agent on this host',
    );
  }
  if (vifType !== 'ovs' && vifType !== 'vhostuser') {
    throw new NeutronTranslationError(
      'EVIFTYPE',
      portId,
      `binding:vif_type ${JSON.stringify(vifType ?? null)} is not supported (expected "ovs" or "vhostuser")`,
    );
  }
  const address = canonicalMac(String(port.mac_address));
  if (address === undefined)
    throw new NeutronTranslationError(
      'EBADVALUE',
      portId,
      `mac_address ${JSON.stringify(port.mac_address)} is not a MAC address`,
    );

  const details: NeutronVifDetails = port['binding:vif_details'] ?? port.binding_vif_details ?? {};
  const bridge = details.bridge_name || config.ovs_bridge;
  if (!bridge)
    throw requiredOpt(
      portId,
      'neutron_defaults',
      'ovs_bridge',
      'the port names no bridge (binding:vif_details.bridge_name) and no default bridge is configured',
    );
  checked(portId, () => validateVifName(bridge, 'bridge name'));

  const rawMode = details.vhostuser_mode;
  if (!rawMode && vifType === 'vhostuser') {
    throw new NeutronTranslationError(
      'EBADVALUE',
      portId,
      'binding:vif_type is vhostuser but binding:vif_details has no vhostuser_mode',
    );
  }
  const mode = rawMode ? checked(portId, () => validateMode(rawMode, 'binding:vif_details.vhostuser_mode')) : undefined;
  if (mode && !config.mount_point)
    throw requiredOpt(
      portId,
      'vhostuser',
      'mount_point',
      'a vhost-user port needs the directory its socket is exposed in',
    );

  const network = makeVifNetwork(port, subnets);
  network.bridge = bridge;
  const profile: VIFPortProfileOpenVSwitch = { kind: 'VIFPortProfileOpenVSwitch', interface_id: portId };
  const common = {
    id: portId,
    address,
    network,
    has_traffic_filtering: Boolean(details.port_filter ?? false),
    preserve_on_delete: false,
    active: port.status === 'ACTIVE',
    port_profile: profile,
  };
  if (mode) {
    const vif_name = checked(portId, () => vhostUserPortName(portId));
    const path = checked(portId, () => vhostUserSocketPath(config.mount_point!, vif_name));
    const vif: VIFVHostUser = { kind: 'VIFVHostUser', ...common, plugin: 'ovs', path, mode, vif_name };
    return vif;
  }
  if (details.ovs_hybrid_plug) {
    const vif: VIFBridge = {
      kind: 'VIFBridge',
      ...common,
      plugin: vifType,
      vif_name: checked(portId, () => vethHostName(portId)),
      bridge_name: checked(portId, () => hybridBridgeName(portId)),
    };
    return vif;
  }
  const vif: VIFOpenVSwitch = {
    kind: 'VIFOpenVSwitch',
    ...common,
    plugin: vifType,
    vif_name: checked(portId, () => vethHostName(portId)),
    bridge_name: bridge,
  };
  return vif;
}
