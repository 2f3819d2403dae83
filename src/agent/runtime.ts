/**
 * Wires a node agent together from kuryr.conf: one OVSDB connection (with its monitor
 * cache), the vswitch port layer over it, and the binding drivers in a registry that the
 * daemons look drivers up in by kind. The CLI, both daemons and the demo start here.
 */
import * as fs from 'node:fs';
import { OvsdbClient, type TransportChoice } from '../ovsdb/client';
import { Vswitch } from '../vswitch/vswitch';
import { VSWITCH_CACHE } from '../vswitch/rows';
import { silentLogger, type Logger } from '../core/log';
import { ConfigError, type VhostplugConfig } from './config';
import { DriverRegistry } from '../binding/driver';
import { VhostUserDriver, type VhostUserDriverOptions } from '../binding/vhostuser';
import { PoolSet } from '../binding/pool';
import type { PodAccess } from '../binding/pod-dir';
import { validateOwner } from '../core/validate';
import { VethDriver, type VethDriverOptions } from '../binding/veth';

/** uid of a user name or numeric id (from /etc/passwd); undefined for null. */
export function resolveUid(owner: string | null, passwd = '/etc/passwd'): number | undefined {
  return resolveId(owner, passwd, '[vhostplug] config_file_owner');
}

/** gid of a group name or numeric id (from /etc/group); undefined for null. */
export function resolveGid(group: string | null, groupFile = '/etc/group'): number | undefined {
  return resolveId(group, groupFile, '[vhostplug] config_file_group');
}

function resolveId(name: string | null, file: string, option: string): number | undefined {
  if (name === null || name === '') return undefined;
  if (/^\d+$/.test(name)) return Number(name);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  const [section, opt] = option.slice(1).split('] ');
  throw new ConfigError(`no such ${file.endsWith('group') ? 'group' : 'user'} "${name}" in ${file}`, {
    section,
    option: opt,
  });
}

/** `[os_vif_ovs] ovs_vsctl_timeout` in ms; 0 means "wait forever" in os-vif, and a day is forever enough while keeping timers finite. */
export function ackTimeoutMs(config: VhostplugConfig): number {
  const s = config.os_vif_ovs.ovs_vsctl_timeout;
  return s > 0 ? s * 1000 : 86_400_000;
}

/** The vhost-user driver's options as kuryr.conf sets them. */
export function vhostUserOptions(config: VhostplugConfig, log: Logger = silentLogger): VhostUserDriverOptions {
  const opts: VhostUserDriverOptions = {
    mountPoint: config.vhostuser.mount_point,
    ovsVhuPath: config.vhostuser.ovs_vhu_path,
    defaultMtu: config.os_vif_ovs.network_device_mtu,
    socketTimeoutMs: config.vhostplug.socket_wait_timeout * 1000,
    ackTimeoutMs: ackTimeoutMs(config),
    vhostUserPortLimit: config.vhostplug.vhostuser_port_limit,
    configFile: {
      mode: config.vhostplug.config_file_mode,
      uid: resolveUid(config.vhostplug.config_file_owner),
      gid: resolveGid(config.vhostplug.config_file_group),
    },
    log,
  };
  if (config.neutron_defaults.ovs_bridge) opts.defaultBridge = config.neutron_defaults.ovs_bridge;
  const v = config.vhostuser;
  if (v.per_pod_dir) opts.socketLayout = 'per-pod';
  if (v.pod_mount_path) opts.podMountPath = v.pod_mount_path;
  const access: PodAccess = {};
  if (v.owner) Object.assign(access, validateOwner(v.owner, '[vhostuser] owner'));
  if (v.socket_mode !== null) access.socketMode = v.socket_mode;
  if (v.se_label) access.seLabel = v.se_label;
  if (Object.keys(access).length) opts.defaultAccess = access;
  return opts;
}

/** The veth/hybrid driver's options as kuryr.conf sets them. */
export function vethOptions(config: VhostplugConfig, log: Logger = silentLogger): VethDriverOptions {
  const opts: VethDriverOptions = {
    defaultMtu: config.os_vif_ovs.network_device_mtu,
    networkDeviceMtu: config.neutron_defaults.network_device_mtu,
    ackTimeoutMs: ackTimeoutMs(config),
    log,
  };
  if (config.vhostplug.vswitchd_netns) opts.hostNetns = config.vhostplug.vswitchd_netns;
  if (config.neutron_defaults.ovs_bridge) opts.defaultBridge = config.neutron_defaults.ovs_bridge;
  return opts;
}

export interface RuntimeOptions {
  log?: Logger;
  transport?: TransportChoice;
  /** Keep retrying until ovsdb-server answers (the daemon) instead of failing at once (the CLI). */
  waitForServer?: boolean;
  /** Netns file of ovs-vswitchd for veth host ends; overrides `[vhostplug] vswitchd_netns`. */
  vethHostNetns?: string;
}

/** A connected node agent. */
export interface Runtime {
  config: VhostplugConfig;
  client: OvsdbClient;
  vswitch: Vswitch;
  vhostuser: VhostUserDriver;
  veth: VethDriver;
  /** Both drivers, by kind and by VIF class. */
  drivers: DriverRegistry;
  /** The warm port pools (`[vhostplug] pool_size` > 0 starts one per pooled bridge). */
  pools: PoolSet;
  close(): void;
}

/** Connects to OVSDB as `[os_vif_ovs] ovsdb_connection` says and builds the drivers. */
export async function openRuntime(config: VhostplugConfig, opts: RuntimeOptions = {}): Promise<Runtime> {
  const log = opts.log ?? silentLogger;
  const client = await OvsdbClient.connect(config.os_vif_ovs.ovsdb_endpoint, {
    transport: opts.transport ?? 'native',
    waitForServer: opts.waitForServer ?? false,
    cache: VSWITCH_CACHE,
  });
  const vswitch = new Vswitch(client, { allowDatapathChange: config.vhostplug.allow_datapath_change });
  const vhostuser: VhostUserDriver = new VhostUserDriver(vswitch, {
    ...vhostUserOptions(config, log),
    pools: (bridge) => pools.get(bridge),
  });
  // Pool ports take slots of the driver's vhost-user port budget (DPDK's device table).
  const pools: PoolSet = new PoolSet(vswitch, {
    ovsVhuPath: config.vhostuser.ovs_vhu_path,
    mtu: config.os_vif_ovs.network_device_mtu,
    timeoutMs: ackTimeoutMs(config),
    budget: vhostuser.budget,
    log,
  });
  const veth = new VethDriver(vswitch, {
    ...vethOptions(config, log),
    ...(opts.vethHostNetns ? { hostNetns: opts.vethHostNetns } : {}),
  });
  const drivers = new DriverRegistry([vhostuser, veth]);
  return {
    config,
    client,
    vswitch,
    vhostuser,
    veth,
    drivers,
    pools,
    close: () => {
      pools.close();
      drivers.close();
      client.close();
    },
  };
}
