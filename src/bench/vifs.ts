/** The VIFs the benchmarks plug, and the ovs-vsctl command line os-vif's vsctl driver runs for one. */
import { makeVHostUserVif, type VIFVHostUser } from '../vif/model';

/** A fresh VIFVHostUser on br-int whose socket lives in `mount` (random port id and MAC). */
export function makeVif(mode: 'server' | 'client', mount: string): VIFVHostUser {
  return makeVHostUserVif(mode, mount, { network: { id: '7d8b8c9a-7b47-4f4c-9b8a-3a1f4f6e9c10', label: 'bench' } });
}

/** os-vif's vsctl driver command line for one plug (osvif-baseline.md). */
export function vsctlPlugArgs(db: string, vif: VIFVHostUser, podUid: string): string[] {
  const name = vif.vif_name!;
  const args = [
    '--timeout=120',
    '--oneline',
    '--format=json',
    `--db=${db}`,
    '--',
    '--may-exist',
    'add-br',
    'br-int',
    '--',
    'set',
    'Bridge',
    'br-int',
    'datapath_type=netdev',
    '--',
    '--may-exist',
    'add-port',
    'br-int',
    name,
    '--',
    'set',
    'Interface',
    name,
    `external_ids:iface-id=${vif.id}`,
    'external_ids:iface-status=active',
    `external_ids:attached-mac=${vif.address}`,
    `external_ids:vm-uuid=${podUid}`,
    `type=${vif.mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient'}`,
  ];
  if (vif.mode === 'server') args.push(`options:vhost-server-path=${vif.path}`);
  args.push('--', 'set', 'Interface', name, 'mtu_request=1500');
  return args;
}

/** os-vif's vsctl driver command line for one unplug. */
export function vsctlUnplugArgs(db: string, vif: VIFVHostUser): string[] {
  return ['--timeout=120', `--db=${db}`, '--', '--if-exists', 'del-port', 'br-int', vif.vif_name!];
}
