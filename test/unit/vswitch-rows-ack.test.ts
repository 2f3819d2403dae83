/**
 * src/vswitch/rows.ts and ack.ts over a cache fed by hand (no server): typed rows decoded
 * once per row version, the cache check, the next_cfg operations and the cur_cfg wait.
 * The acknowledgement against a real DPDK ovs-vswitchd: test/integration/vswitch-ack.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { OvsdbCache } from '../../src/ovsdb/cache';
import type { DatabaseSchema } from '../../src/ovsdb/notation';
import {
  VswitchdAck,
  VswitchdError,
  insertedInterfaceUuids,
  nextCfgFromResult,
  nextCfgOps,
} from '../../src/vswitch/ack';
import { VSWITCH_CACHE, VswitchRows, checkCache } from '../../src/vswitch/rows';

const SCHEMA: DatabaseSchema = {
  name: 'Open_vSwitch',
  version: '8.3.1',
  tables: {
    Open_vSwitch: {
      columns: Object.fromEntries(
        VSWITCH_CACHE.tables.Open_vSwitch!.columns!.map((c) => [
          c,
          { type: c.endsWith('cfg') ? 'integer' : { key: 'string', min: 0, max: 'unlimited' } },
        ]),
      ),
    },
    Bridge: {
      columns: {
        name: { type: 'string' },
        datapath_type: { type: 'string' },
        ports: { type: { key: { type: 'uuid', refTable: 'Port' }, min: 0, max: 'unlimited' } },
      },
    },
    Port: {
      columns: {
        name: { type: 'string' },
        interfaces: { type: { key: { type: 'uuid', refTable: 'Interface' }, min: 1, max: 'unlimited' } },
      },
    },
    Interface: {
      columns: {
        name: { type: 'string' },
        type: { type: 'string' },
        options: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
        external_ids: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
        mtu_request: { type: { key: 'integer', min: 0, max: 1 } },
        ofport: { type: { key: 'integer', min: 0, max: 1 } },
        error: { type: { key: 'string', min: 0, max: 1 } },
      },
    },
  },
};
SCHEMA.tables.Open_vSwitch!.columns['other_config'] = {
  type: { key: 'string', value: 'string', min: 0, max: 'unlimited' },
};
SCHEMA.tables.Open_vSwitch!.columns['bridges'] = {
  type: { key: { type: 'uuid', refTable: 'Bridge' }, min: 0, max: 'unlimited' },
};
SCHEMA.tables.Open_vSwitch!.columns['dpdk_initialized'] = { type: 'boolean' };

const O = 'afbafdbb-78c1-4ee0-a372-e0952c628bfd';
const B = '04a61825-6118-4378-b621-b8e94ca7393d';
const P = '94b5d22d-6762-4d51-bd45-3dde9bc3a843';
const I = '5e66ca64-686f-4257-90af-bf78e6f0fb9a';

function seeded(): OvsdbCache {
  const c = new OvsdbCache(VSWITCH_CACHE, SCHEMA);
  c.applyUpdates2(
    {
      Open_vSwitch: {
        [O]: {
          initial: {
            next_cfg: 3,
            cur_cfg: 3,
            other_config: ['map', [['userspace-tso-enable', 'true']]],
            bridges: ['uuid', B],
          },
        },
      },
      Bridge: { [B]: { initial: { name: 'br-int', datapath_type: 'netdev', ports: ['uuid', P] } } },
      Port: { [P]: { initial: { name: 'vhu1', interfaces: ['uuid', I] } } },
      Interface: {
        [I]: {
          initial: {
            name: 'vhu1',
            type: 'dpdkvhostuserclient',
            external_ids: ['map', [['iface-id', 'x']]],
            mtu_request: 1500,
          },
        },
      },
    },
    true,
  );
  return c;
}

describe('typed rows', () => {
  it('decode every column the agent reads, in OVS spelling, with defaults for unset ones', () => {
    const rows = new VswitchRows(seeded());
    expect(rows.openVSwitch()).toMatchObject({
      uuid: O,
      next_cfg: 3,
      cur_cfg: 3,
      bridges: [B],
      other_config: { 'userspace-tso-enable': 'true' },
      dpdk_initialized: false,
    });
    expect(rows.bridge('br-int')).toEqual({ uuid: B, name: 'br-int', datapath_type: 'netdev', ports: [P] });
    expect(rows.port('vhu1')).toEqual({ uuid: P, name: 'vhu1', interfaces: [I] });
    expect(rows.iface('vhu1')).toEqual({
      uuid: I,
      name: 'vhu1',
      type: 'dpdkvhostuserclient',
      options: {},
      external_ids: { 'iface-id': 'x' },
      mtu_request: 1500,
      ofport: undefined,
      error: undefined,
    });
    expect(rows.iface('nope')).toBeUndefined();
  });

  it('decode once per row version: the same object until the row changes', () => {
    const c = seeded();
    const rows = new VswitchRows(c);
    const a = rows.iface('vhu1');
    expect(rows.iface('vhu1')).toBe(a);
    expect([...rows.interfaces()][0]).toBe(a);
    c.applyUpdates2({ Interface: { [I]: { modify: { ofport: 7 } } } });
    const b = rows.iface('vhu1')!;
    expect(b).not.toBe(a);
    expect(b.ofport).toBe(7);
    expect(a!.ofport).toBeUndefined(); // a view held by a caller never changes under it
  });

  it('refuse a cache that does not cover what they read', () => {
    const small = new OvsdbCache({
      database: 'Open_vSwitch',
      tables: { Interface: { columns: ['name'], indexes: ['name'] } },
    });
    expect(() => new VswitchRows(small)).toThrow(
      /missing table Open_vSwitch, table Bridge, table Port, Interface.type/,
    );
    expect(() =>
      checkCache(new OvsdbCache({ database: 'other', tables: VSWITCH_CACHE.tables }), VSWITCH_CACHE),
    ).toThrow(/database Open_vSwitch/);
    expect(() => checkCache(new OvsdbCache(VSWITCH_CACHE), VSWITCH_CACHE)).not.toThrow();
  });
});

describe('the ovs-vswitchd acknowledgement', () => {
  it('bumps next_cfg and selects it back; reads the new value', () => {
    expect(nextCfgOps()).toEqual([
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
    ]);
    expect(nextCfgFromResult({ rows: [{ next_cfg: 12 }] })).toBe(12);
    expect(() => nextCfgFromResult({ rows: [] })).toThrow(/no row/);
    expect(
      insertedInterfaceUuids(
        [
          { op: 'insert', table: 'Port', row: {} },
          { op: 'insert', table: 'Interface', row: {} },
        ],
        [{ uuid: ['uuid', P] }, { uuid: ['uuid', I] }],
      ),
    ).toEqual([I]);
  });

  it('waits for cur_cfg >= next_cfg (a jump past it counts), then judges the inserted Interfaces', async () => {
    const c = seeded();
    const ack = new VswitchdAck(c);
    await expect(ack.waitFor(3, [])).resolves.toBeUndefined();
    const order: string[] = [];
    const w5 = ack.waitFor(5, []).then(() => order.push('5'));
    const w6 = ack.waitFor(6, [I]).catch((e: unknown) => order.push((e as Error).constructor.name));
    const w9 = ack.waitFor(9, [], 30);
    c.applyUpdates2({ Open_vSwitch: { [O]: { modify: { cur_cfg: 4 } } } });
    await Promise.resolve();
    expect(order).toEqual([]);
    c.applyUpdates2({
      Interface: {
        [I]: { modify: { ofport: -1, error: ['set', ['could not open network device vhu1 (No such device)']] } },
      },
    });
    c.applyUpdates2({ Open_vSwitch: { [O]: { modify: { cur_cfg: 7 } } } }); // skips 5 and 6
    await Promise.all([w5, w6]);
    expect(order.sort()).toEqual(['5', 'VswitchdError']);
    await expect(w9).rejects.toMatchObject({ code: 'EOVSDBTIMEOUT', message: expect.stringContaining('cur_cfg >= 9') });
    const e = await ack.waitFor(7, [I]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VswitchdError);
    expect(e).toMatchObject({
      code: 'EOVSDBVSWITCHD',
      nextCfg: 7,
      interfaces: [{ name: 'vhu1', uuid: I, ofport: -1, error: 'could not open network device vhu1 (No such device)' }],
    });
  });

  it('closing the cache rejects the wait with DisconnectedError; a cache without cur_cfg is refused up front', async () => {
    const c = seeded();
    const w = new VswitchdAck(c).waitFor(100, []);
    c.close();
    await expect(w).rejects.toMatchObject({ code: 'EOVSDBDISCONNECTED' });
    const small = new OvsdbCache({ database: 'Open_vSwitch', tables: { Interface: {} } });
    expect(() => new VswitchdAck(small).check()).toThrow(/waitForVswitchd needs the cache/);
  });
});
