import { describe, expect, it } from 'vitest';
import { applyMapDiff, applySetDiff, OvsdbCache, type CacheSpec } from '../../src/ovsdb/cache';
import type { DatabaseSchema } from '../../src/ovsdb/notation';

// The column types that matter, as in vswitch.ovsschema (Open vSwitch 3.1).
const SCHEMA: DatabaseSchema = {
  name: 'Open_vSwitch',
  version: '8.3.1',
  tables: {
    Open_vSwitch: {
      columns: {
        next_cfg: { type: 'integer' },
        cur_cfg: { type: 'integer' },
        bridges: { type: { key: { type: 'uuid', refTable: 'Bridge' }, min: 0, max: 'unlimited' } },
        external_ids: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
      },
    },
    Bridge: {
      columns: {
        name: { type: 'string' },
        ports: { type: { key: { type: 'uuid', refTable: 'Port' }, min: 0, max: 'unlimited' } },
        external_ids: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
      },
    },
    Port: {
      columns: {
        name: { type: 'string' },
        interfaces: { type: { key: { type: 'uuid', refTable: 'Interface' }, min: 1, max: 'unlimited' } },
        tag: { type: { key: 'integer', min: 0, max: 1 } },
      },
    },
    Interface: {
      columns: {
        name: { type: 'string' },
        type: { type: 'string' },
        ofport: { type: { key: 'integer', min: 0, max: 1 } },
        error: { type: { key: 'string', min: 0, max: 1 } },
        external_ids: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
      },
    },
  },
};

/** Every column of the four tables, `name` indexed (what the tests below read). */
export const SPEC: CacheSpec = {
  database: 'Open_vSwitch',
  tables: {
    Open_vSwitch: {},
    Bridge: { indexes: ['name'] },
    Port: { indexes: ['name'] },
    Interface: { indexes: ['name'] },
  },
};

const B = '04a61825-6118-4378-b621-b8e94ca7393d';
const P1 = '94b5d22d-6762-4d51-bd45-3dde9bc3a843';
const P2 = 'd605393d-23bc-473c-b3ea-8070572ea37b';
const I1 = '5e66ca64-686f-4257-90af-bf78e6f0fb9a';
const I2 = 'e040a5e5-25ec-4744-898a-c836ed1021bb';
const O = 'afbafdbb-78c1-4ee0-a372-e0952c628bfd';

function seeded(): OvsdbCache {
  const c = new OvsdbCache(SPEC, SCHEMA);
  // Shape captured from ovsdb-server 3.1: default-valued columns are omitted, and a
  // one-element set is sent bare.
  c.applyUpdates2(
    {
      Open_vSwitch: { [O]: { initial: { bridges: ['uuid', B], next_cfg: 3, cur_cfg: 3 } } },
      Bridge: { [B]: { initial: { name: 'br0', ports: ['uuid', P1] } } },
      Port: { [P1]: { initial: { name: 'br0', interfaces: ['uuid', I1] } } },
      Interface: { [I1]: { initial: { name: 'br0', ofport: 1, type: 'internal' } } },
    },
    true,
  );
  return c;
}

describe('OvsdbCache initial sync', () => {
  it('fills omitted columns with schema defaults and indexes by name', () => {
    const c = seeded();
    expect(c.isSynced).toBe(true);
    const i = c.lookup('Interface', 'name', 'br0')!;
    expect(i._uuid).toEqual(['uuid', I1]);
    expect(i['error']).toEqual(['set', []]);
    expect(i['external_ids']).toEqual(['map', []]);
    expect(i['ofport']).toBe(1);
    expect(c.lookup('Port', 'name', 'br0')!['tag']).toEqual(['set', []]);
    expect(c.lookup('Bridge', 'name', 'br0')!['ports']).toEqual(['uuid', P1]);
    expect(c.first('Open_vSwitch')!['cur_cfg']).toBe(3);
    expect(c.first('Open_vSwitch')!['next_cfg']).toBe(3);
    expect(c.count('Interface')).toBe(1);
    expect(c.row('Port', P1)!['name']).toBe('br0');
  });

  it('with a column subset, only monitored columns get defaults', () => {
    const c = new OvsdbCache(
      { database: 'Open_vSwitch', tables: { Interface: { columns: ['name', 'ofport'], indexes: ['name'] } } },
      SCHEMA,
    );
    c.applyUpdates2({ Interface: { [I1]: { initial: { name: 'x' } } } }, true);
    expect(c.lookup('Interface', 'name', 'x')).toEqual({ name: 'x', ofport: ['set', []], _uuid: ['uuid', I1] });
    expect(() => c.rows('Port')).toThrow(/not cached/);
    expect(() => c.lookup('Interface', 'type', 'x')).toThrow(/not an indexed column/);
    expect(
      () => new OvsdbCache({ database: 'd', tables: { Interface: { columns: ['name'], indexes: ['type'] } } }),
    ).toThrow(/not a monitored column/);
  });

  it('a reset sync replaces everything', () => {
    const c = seeded();
    c.applyUpdates2({ Interface: { [I2]: { initial: { name: 'other' } } } }, true);
    expect(c.lookup('Interface', 'name', 'br0')).toBeUndefined();
    expect(c.lookup('Bridge', 'name', 'br0')).toBeUndefined();
    expect(c.lookup('Interface', 'name', 'other')).toBeDefined();
  });
});

describe('update2 diffs (as ovsdb-server 3.1 sends them)', () => {
  it('insert, set symmetric difference, optional scalar replace, map diff, delete', () => {
    const c = seeded();
    const before = c.lookup('Interface', 'name', 'br0')!;
    // captured: add-port p1 and set Interface br0 ofport=2 external_ids:a=b
    c.applyUpdates2({
      Bridge: { [B]: { modify: { ports: ['uuid', P2] } } },
      Port: { [P2]: { insert: { name: 'p1', interfaces: ['uuid', I2] } } },
      Interface: {
        [I1]: { modify: { external_ids: ['map', [['a', 'b']]], ofport: 2 } },
        [I2]: { insert: { name: 'p1' } },
      },
    });
    expect(
      new Set((c.lookup('Bridge', 'name', 'br0')!['ports'] as ['set', unknown[]])[1].map((u) => (u as string[])[1])),
    ).toEqual(new Set([P1, P2]));
    expect(c.lookup('Interface', 'name', 'br0')!['ofport']).toBe(2);
    expect(c.lookup('Interface', 'name', 'br0')!['external_ids']).toEqual(['map', [['a', 'b']]]);
    expect(c.lookup('Interface', 'name', 'p1')!['ofport']).toEqual(['set', []]);
    // rows are replaced, never mutated under a holder
    expect(before['ofport']).toBe(1);

    // captured: set ofport=3 external_ids:a=c, del-port p1
    c.applyUpdates2({
      Bridge: { [B]: { modify: { ports: ['uuid', P2] } } },
      Interface: { [I1]: { modify: { external_ids: ['map', [['a', 'c']]], ofport: 3 } }, [I2]: { delete: null } },
      Port: { [P2]: { delete: null } },
    });
    expect(c.lookup('Bridge', 'name', 'br0')!['ports']).toEqual(['set', [['uuid', P1]]]);
    expect(c.lookup('Interface', 'name', 'br0')!['external_ids']).toEqual(['map', [['a', 'c']]]);
    expect(c.lookup('Interface', 'name', 'br0')!['ofport']).toBe(3);
    expect(c.lookup('Interface', 'name', 'p1')).toBeUndefined();
    expect(c.lookup('Port', 'name', 'p1')).toBeUndefined();
    expect(c.count('Interface')).toBe(1);
  });

  it('a rename moves the name index', () => {
    const c = seeded();
    c.applyUpdates2({ Interface: { [I1]: { modify: { name: 'renamed' } } } });
    expect(c.lookup('Interface', 'name', 'br0')).toBeUndefined();
    expect(c.lookup('Interface', 'name', 'renamed')!._uuid[1]).toBe(I1);
  });

  it('ignores tables it does not cache and modifies of unknown rows', () => {
    const c = seeded();
    c.applyUpdates2({ Mirror: { x: { insert: {} } }, Interface: { [I2]: { modify: { ofport: 9 } } } });
    expect(c.lookup('Interface', 'name', 'br0')!['ofport']).toBe(1);
    expect(c.count('Interface')).toBe(1);
  });
});

describe('set and map diff rules', () => {
  it('set: symmetric difference, bare or tagged diff', () => {
    expect(applySetDiff(['set', [1, 2, 3]], ['set', [2, 4]])).toEqual(['set', [1, 3, 4]]);
    expect(applySetDiff(['set', []], 5)).toEqual(['set', [5]]);
    expect(applySetDiff(5, 5)).toEqual(['set', []]);
    expect(applySetDiff(undefined, ['set', [['uuid', I1]]])).toEqual(['set', [['uuid', I1]]]);
  });

  it('map: new key added, same pair removed, changed value replaced', () => {
    const old: ['map', [string, string][]] = [
      'map',
      [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ],
    ];
    expect(
      applyMapDiff(old, [
        'map',
        [
          ['a', '1'],
          ['b', '9'],
          ['d', '4'],
        ],
      ]),
    ).toEqual([
      'map',
      [
        ['b', '9'],
        ['c', '3'],
        ['d', '4'],
      ],
    ]);
  });
});

describe('condition waiters', () => {
  const curCfgAtLeast = (c: OvsdbCache, n: number) => () => (c.first('Open_vSwitch')!['cur_cfg'] as number) >= n;

  it('resolve once the condition holds after a batch touching their tables, and time out otherwise', async () => {
    const c = seeded();
    await expect(c.waitFor(['Open_vSwitch'], curCfgAtLeast(c, 3))).resolves.toBeUndefined();
    const order: string[] = [];
    const w5 = c.waitFor(['Open_vSwitch'], curCfgAtLeast(c, 5)).then(() => order.push('5'));
    const w6 = c.waitFor(['Open_vSwitch'], curCfgAtLeast(c, 6)).then(() => order.push('6'));
    const w9 = c.waitFor(['Open_vSwitch'], curCfgAtLeast(c, 9), { timeoutMs: 30 });
    c.applyUpdates2({ Open_vSwitch: { [O]: { modify: { cur_cfg: 4 } } } });
    await Promise.resolve();
    expect(order).toEqual([]);
    c.applyUpdates2({ Open_vSwitch: { [O]: { modify: { cur_cfg: 7 } } } }); // skips 5 and 6
    await Promise.all([w5, w6]);
    expect(order.sort()).toEqual(['5', '6']);
    await expect(w9).rejects.toMatchObject({ code: 'EOVSDBTIMEOUT' });
  });

  it('close() rejects waiters with DisconnectedError', async () => {
    const c = seeded();
    const w = c.waitFor(['Open_vSwitch'], curCfgAtLeast(c, 100));
    c.close();
    await expect(w).rejects.toMatchObject({ code: 'EOVSDBDISCONNECTED' });
  });

  it('onChange reports touched tables and resets', () => {
    const c = new OvsdbCache(SPEC, SCHEMA);
    const seen: string[] = [];
    const off = c.onChange((ch) => seen.push(`${[...ch.tables].sort().join(',')}:${ch.reset}`));
    c.applyUpdates2({ Bridge: {}, Interface: { [I1]: { initial: { name: 'x' } } } }, true);
    c.applyUpdates2({ Interface: { [I1]: { modify: { ofport: 1 } } } });
    off();
    c.applyUpdates2({ Interface: { [I1]: { delete: null } } });
    expect(seen).toEqual(['Bridge,Interface:true', 'Interface:false']);
  });
});
