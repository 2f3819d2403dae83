/**
 * Names and paths derived from a Neutron port id, as os-vif and kuryr-lib derive them.
 *
 * Every device name is a prefix plus the port id, cut to 14 characters (kuryr-lib
 * `NIC_NAME_LEN`, os-vif `OvsPlugin.gen_port_name`): `vhu` + 8 hex digits, `-`, 2 hex
 * digits, e.g. `vhu9c9cc8f5-88`. The same string is the OVS port name, the OVS interface
 * name and the vhost-user socket's file name.
 *
 * The socket location has ONE definition here, {@link vhostUserSocketPath}: the server-mode
 * `vhost-server-path`, the client-mode rename target, the VIF's `path` and the path
 * disconnect removes are all `<mount_point>/<vif_name>`. (Kuryr joins `vif.path` with the
 * port name again in one place; we don't.)
 */
import {
  ValidationError,
  validateAbsolutePath,
  validateContainerId,
  validateFileName,
  validateIfName,
  validateUnixSocketPath,
  validateVifName,
} from '../core/validate';

/** Device names are cut to this many characters (kuryr-lib NIC_NAME_LEN). */
export const NIC_NAME_LEN = 14;
/** os-vif's prefix for vhost-user ports (`OVS_VHOSTUSER_PREFIX`). */
export const VHOSTUSER_PREFIX = 'vhu';
/** kuryr-lib's prefix for the host end of a veth pair (`VETH_PREFIX`). */
export const VETH_PREFIX = 'tap';
/** os-vif's prefix for the hybrid-plug Linux bridge. */
export const HYBRID_BRIDGE_PREFIX = 'qbr';

/** `prefix + id`, cut to {@link NIC_NAME_LEN} characters, checked as an OVS port name. */
export function deviceName(prefix: string, portId: string): string {
  // Without this a VIF with no id would get the valid-looking name `vhuundefined`.
  if (typeof portId !== 'string' || portId === '') {
    throw new ValidationError(
      'port id',
      portId,
      portId === '' ? 'empty' : 'type',
      'a Neutron port id (the VIF id) is required',
    );
  }
  return validateVifName((prefix + portId).slice(0, NIC_NAME_LEN), 'vif_name');
}

/** The vhost-user port, interface and socket name for a port id: `vhu` + id, 14 characters. */
export function vhostUserPortName(portId: string): string {
  return deviceName(VHOSTUSER_PREFIX, portId);
}

/** The host-side veth name for a port id (`tap` + id, 14 characters). */
export function vethHostName(portId: string): string {
  return deviceName(VETH_PREFIX, portId);
}

/** The hybrid-plug Linux bridge name for a port id (`qbr` + id, 14 characters). */
export function hybridBridgeName(portId: string): string {
  return deviceName(HYBRID_BRIDGE_PREFIX, portId);
}

/**
 * THE vhost-user socket location: `<mountPoint>/<vifName>`. Validates both parts and
 * that the result fits a unix socket address (107 bytes).
 */
export function vhostUserSocketPath(mountPoint: string, vifName: string): string {
  const dir = validateAbsolutePath(mountPoint, '[vhostuser] mount_point');
  const name = validateVifName(vifName);
  return validateUnixSocketPath(dir === '/' ? `/${name}` : `${dir}/${name}`, 'vhost-user socket path');
}

/**
 * The per-interface config file name Kuryr writes into the mount dir:
 * `<container-id>-<ifname>` (the DPDK app in the pod reads it).
 */
export function vhostUserConfigFileName(containerId: string, ifname: string): string {
  return validateFileName(`${validateContainerId(containerId)}-${validateIfName(ifname)}`, 'config file name');
}
