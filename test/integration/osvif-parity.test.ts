/**
 * Parity with os-vif, the reference: for the same VIF, the Interface, Port and Bridge
 * columns vhostplug writes equal those written by os-vif itself (Debian's python3-os-vif,
 * ovs plugin, native backend) on the same private DPDK OVS. We may add external_ids keys;
 * every column and key os-vif sets must be identical.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { Vswitch } from '../../src/vswitch/vswitch';
import { VhostUserDriver } from '../../src/binding/vhostuser';
import { encodeVIF } from '../../src/vif/ovo';
import { makeVHostUserVif } from '../../src/vif/model';
import { vhostUserPortName } from '../../src/vif/names';
import { OsVif, osVifUnavailable } from '../../src/bench/osvif';
import { useSandbox, type DumpRow } from '../helpers/sandbox';
import { describeIf, firstReason, needsOvs, needsRoot } from '../helpers/skip';

/** Columns ovs-vswitchd (not the client) writes, or that are row identities. */
const RUNTIME_COLUMNS = new Set([
  '_uuid',
  '_version',
  'ofport',
  'ifindex',
  'link_state',
  'link_speed',
  'link_resets',
  'duplex',
  'mac_in_use',
  'mtu',
  'status',
  'statistics',
  'admin_state',
  'error',
  'bfd_status',
  'cfm_fault',
  'cfm_fault_status',
  'cfm_flap_count',
  'cfm_health',
  'cfm_remote_mpids',
  'cfm_remote_opstate',
  'lacp_current',
  'rstp_status',
  'rstp_statistics',
  'interfaces',
  'ports',
  'datapath_id',
  'datapath_version',
  'bond_active_slave',
]);

function rowByName(rows: DumpRow[], name: string): DumpRow {
  const r = rows.find((x) => x['name'] === name);
  if (!r) throw new Error(`no row named ${name}`);
  return r;
}

function clientColumns(row: DumpRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (!RUNTIME_COLUMNS.has(k)) out[k] = v;
  return out;
}

function mapOf(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Array.isArray(v) && v[0] === 'map') for (const [k, x] of v[1] as [string, unknown][]) out[k] = x;
  return out;
}

describeIf(firstReason(needsRoot(), needsOvs({ dpdk: true }), osVifUnavailable()))('parity with os-vif', () => {
  const sandbox = useSandbox();
  let client: OvsdbClient;
  let osvif: OsVif;
  let mount: string;

  beforeAll(async () => {
    client = await OvsdbClient.connect(sandbox().db, { cache: VSWITCH_CACHE });
    osvif = await OsVif.start(sandbox().db);
    mount = path.join(sandbox().dir, 'vhostuser');
    fs.mkdirSync(mount);
  }, 60_000);
  afterAll(async () => {
    await osvif?.close();
    client?.close();
  });

  for (const mode of ['server', 'client'] as const) {
    it(`${mode} mode: Interface, Port and Bridge columns equal os-vif's`, async () => {
      const id = randomUUID();
      const podUid = randomUUID();
      const vifName = vhostUserPortName(id);
      const vif = makeVHostUserVif(mode, mount, { id, address: 'fa:16:3e:12:34:56', network: { label: 'net' } });
      const sb = sandbox();
      const instance = { uuid: podUid, name: 'pod-parity' };

      await osvif.plug(encodeVIF(vif), instance);
      const ref = {
        iface: rowByName(sb.dumpTable('Interface'), vifName),
        port: rowByName(sb.dumpTable('Port'), vifName),
        bridge: rowByName(sb.dumpTable('Bridge'), 'br-int'),
      };
      await osvif.unplug(encodeVIF(vif), instance);
      expect(sb.vsctl('list-ports', 'br-int')).not.toContain(vifName);
      // os-vif leaves a client-mode socket behind only if OVS did; make the dir clean for us.
      fs.rmSync(path.join(sb.runDir, vifName), { force: true });

      const driver = new VhostUserDriver(new Vswitch(client), {
        mountPoint: mount,
        ovsVhuPath: sb.runDir,
        fsync: false,
      });
      await driver.connect({ vif, containerId: 'parity', ifname: 'eth0', podUid });
      const ours = {
        iface: rowByName(sb.dumpTable('Interface'), vifName),
        port: rowByName(sb.dumpTable('Port'), vifName),
        bridge: rowByName(sb.dumpTable('Bridge'), 'br-int'),
      };

      // Every os-vif external_id is identical; ours only adds keys.
      const refIds = mapOf(ref.iface['external_ids']);
      const ourIds = mapOf(ours.iface['external_ids']);
      expect(Object.keys(refIds).sort()).toEqual(['attached-mac', 'iface-id', 'iface-status', 'vm-uuid']);
      for (const [k, v] of Object.entries(refIds)) expect(ourIds[k], `external_ids:${k}`).toEqual(v);

      // Every other client-written column is identical.
      const { external_ids: _a, ...refIface } = clientColumns(ref.iface);
      const { external_ids: _b, ...ourIface } = clientColumns(ours.iface);
      expect(refIface['mtu_request']).toBe(1500);
      expect(mapOf(refIface['options'])).toEqual(
        mode === 'server' ? { 'vhost-server-path': path.join(mount, vifName) } : {},
      );
      expect(ref.bridge['datapath_type']).toBe('netdev');
      expect(ourIface).toEqual(refIface);
      expect(clientColumns(ours.port)).toEqual(clientColumns(ref.port));
      expect(clientColumns(ours.bridge)).toEqual(clientColumns(ref.bridge));
      expect(ours.iface['type']).toBe(mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient');

      await driver.disconnect({ containerId: 'parity', ifname: 'eth0' });
    });
  }
});
