import { describe, expect, it } from 'vitest';
import { prefixUuidNames, Transaction, type Operation } from '../../src/ovsdb/txn';

describe('Transaction builder', () => {
  it('builds the 3-op add-port exactly as sent on the wire', () => {
    const t = new Transaction();
    const iface = t.insert('Interface', { name: 'vhu-a', type: 'dpdkvhostuserclient' }, { uuidName: 'iface' });
    const port = t.insert('Port', { name: 'vhu-a', interfaces: iface }, { uuidName: 'port' });
    const mi = t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', ['set', [port]]]]);
    expect(mi).toBe(2);
    expect(t.length).toBe(3);
    expect(JSON.parse(JSON.stringify(t.ops))).toEqual([
      { op: 'insert', table: 'Interface', row: { name: 'vhu-a', type: 'dpdkvhostuserclient' }, 'uuid-name': 'iface' },
      { op: 'insert', table: 'Port', row: { name: 'vhu-a', interfaces: ['named-uuid', 'iface'] }, 'uuid-name': 'port' },
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['name', '==', 'br-int']],
        mutations: [['ports', 'insert', ['set', [['named-uuid', 'port']]]]],
      },
    ]);
  });

  it('covers every operation', () => {
    const t = new Transaction();
    t.insert('Bridge', { name: 'b' }, { uuid: '5e66ca64-686f-4257-90af-bf78e6f0fb9a' });
    t.select('Bridge', [], ['name']);
    t.update('Bridge', [['name', '==', 'b']], { stp_enable: true });
    t.delete('Port', [['name', '==', 'p']]);
    t.wait('Bridge', [['name', '==', 'b']], ['name'], '==', [{ name: 'b' }], 0);
    t.commit(true);
    t.abort();
    t.comment('vhostplug: test');
    t.assert('lk');
    expect(t.ops.map((o) => o.op)).toEqual([
      'insert',
      'select',
      'update',
      'delete',
      'wait',
      'commit',
      'abort',
      'comment',
      'assert',
    ]);
    expect(t.ops[0]).toMatchObject({ uuid: '5e66ca64-686f-4257-90af-bf78e6f0fb9a', 'uuid-name': 'row1' });
    expect(t.ops[4]).toEqual({
      op: 'wait',
      table: 'Bridge',
      where: [['name', '==', 'b']],
      columns: ['name'],
      until: '==',
      rows: [{ name: 'b' }],
      timeout: 0,
    });
    expect(t.ops[5]).toEqual({ op: 'commit', durable: true });
    expect(t.ops[7]).toEqual({ op: 'comment', comment: 'vhostplug: test' });
    expect(t.ops[8]).toEqual({ op: 'assert', lock: 'lk' });
  });

  it('generates valid unique uuid-names and rejects invalid or duplicate ones', () => {
    const t = new Transaction();
    t.insert('Port', {}, { uuidName: 'row2' });
    const a = t.insert('Port', {});
    const b = t.insert('Port', {});
    expect(a[1]).toBe('row1');
    expect(b[1]).toBe('row3'); // skips the user's row2
    expect(() => t.insert('Port', {}, { uuidName: 'vhu-1' })).toThrow(/invalid uuid-name "vhu-1"/);
    expect(() => t.insert('Port', {}, { uuidName: 'a.b' })).toThrow(TypeError);
    expect(() => t.insert('Port', {}, { uuidName: 'row2' })).toThrow(/already used/);
    expect(() => t.insert('Port', {}, { uuid: 'nope' })).toThrow(/invalid UUID "nope"/);
  });
});

describe('prefixUuidNames (merging writers)', () => {
  it('renames uuid-names and every named-uuid reference, leaving the input untouched', () => {
    const t = new Transaction();
    const i = t.insert('Interface', { name: 'x', external_ids: ['map', [['k', 'v']]] }, { uuidName: 'iface' });
    const p = t.insert('Port', { name: 'x', interfaces: i }, { uuidName: 'port' });
    t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', ['set', [p]]]]);
    t.update('Port', [['_uuid', '==', p]], { interfaces: ['set', [i]] });
    t.wait('Port', [['_uuid', '==', p]], ['name'], '==', [{ interfaces: i }]);
    t.select('Port', [['_uuid', '==', p]]);
    t.delete('Port', [['_uuid', '==', p]]);
    t.insert('X', { m: ['map', [[i, p]]] }, { uuidName: 'other' });
    const before = JSON.stringify(t.ops);
    const out = prefixUuidNames(t.ops, 'w3_');
    expect(JSON.stringify(t.ops)).toBe(before);
    const s = JSON.stringify(out);
    expect(s).not.toMatch(/"named-uuid","(iface|port)"/);
    expect((out[0] as { 'uuid-name': string })['uuid-name']).toBe('w3_iface');
    expect(out[1]).toMatchObject({ row: { interfaces: ['named-uuid', 'w3_iface'] }, 'uuid-name': 'w3_port' });
    expect(out[2]).toMatchObject({ mutations: [['ports', 'insert', ['set', [['named-uuid', 'w3_port']]]]] });
    expect(out[3]).toMatchObject({
      where: [['_uuid', '==', ['named-uuid', 'w3_port']]],
      row: { interfaces: ['set', [['named-uuid', 'w3_iface']]] },
    });
    expect(out[4]).toMatchObject({ rows: [{ interfaces: ['named-uuid', 'w3_iface'] }] });
    expect(out[7]).toMatchObject({
      row: {
        m: [
          'map',
          [
            [
              ['named-uuid', 'w3_iface'],
              ['named-uuid', 'w3_port'],
            ],
          ],
        ],
      },
    });
  });

  it('passes ops without names through', () => {
    const ops: Operation[] = [
      { op: 'comment', comment: 'c' },
      { op: 'commit', durable: false },
      { op: 'select', table: 'Bridge', where: [true] },
    ];
    expect(prefixUuidNames(ops, 'p_')).toEqual(ops);
  });
});
