import { describe, expect, it } from 'vitest';
import {
  atomKey,
  columnKind,
  cond,
  decodeMap,
  decodeOptional,
  decodeSet,
  decodeStringMap,
  decodeUuid,
  decodeUuidSet,
  defaultValue,
  isValidUuidName,
  map,
  mutation,
  namedUuid,
  set,
  uuid,
  uuidNameFromUuid,
  valuesEqual,
} from '../../src/ovsdb/notation';

const U1 = '5e66ca64-686f-4257-90af-bf78e6f0fb9a';
const U2 = 'd605393d-23bc-473c-b3ea-8070572ea37b';

describe('encoders', () => {
  it('emit the tagged RFC 7047 forms', () => {
    expect(uuid(U1)).toEqual(['uuid', U1]);
    expect(namedUuid('iface_1')).toEqual(['named-uuid', 'iface_1']);
    expect(set()).toEqual(['set', []]);
    expect(set(1, 'a', uuid(U1))).toEqual(['set', [1, 'a', ['uuid', U1]]]);
    expect(map({ 'iface-id': 'x', owner: 'vhostplug' })).toEqual([
      'map',
      [
        ['iface-id', 'x'],
        ['owner', 'vhostplug'],
      ],
    ]);
    expect(map(new Map([['k', 1]]))).toEqual(['map', [['k', 1]]]);
    expect(map([[1, 'a']])).toEqual(['map', [[1, 'a']]]);
    expect(cond('name', '==', 'br-int')).toEqual(['name', '==', 'br-int']);
    expect(mutation('next_cfg', '+=', 1)).toEqual(['next_cfg', '+=', 1]);
  });

  it('encoded values survive a JSON round trip unchanged', () => {
    const v = [
      'set',
      [
        ['uuid', U1],
        ['named-uuid', 'p'],
      ],
    ];
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
  });

  it('reject a malformed UUID and invalid uuid-names', () => {
    expect(() => uuid('not-a-uuid')).toThrow(TypeError);
    expect(() => namedUuid('vhu-1')).toThrow(/\[A-Za-z_\]/);
    expect(() => namedUuid('a.b')).toThrow(TypeError);
    expect(() => namedUuid('1abc')).toThrow(TypeError);
  });
});

describe('uuid-name syntax [A-Za-z_][A-Za-z0-9_]*', () => {
  it.each([
    ['row1', true],
    ['_x', true],
    ['A_9', true],
    ['', false],
    ['9a', false],
    ['tap-1', false],
    ['a.b', false],
    ['ä', false],
  ])('%s -> %s', (name, ok) => {
    expect(isValidUuidName(name)).toBe(ok);
  });

  it('a name derived from a UUID is always valid', () => {
    expect(uuidNameFromUuid(U1)).toBe(`row${U1.replace(/-/g, '_')}`);
    expect(isValidUuidName(uuidNameFromUuid(U1))).toBe(true);
  });
});

describe('decoders accept both set forms', () => {
  it('decodeSet: bare atom, tagged set, undefined', () => {
    expect(decodeSet(['uuid', U1])).toEqual([['uuid', U1]]);
    expect(
      decodeSet([
        'set',
        [
          ['uuid', U1],
          ['uuid', U2],
        ],
      ]),
    ).toEqual([
      ['uuid', U1],
      ['uuid', U2],
    ]);
    expect(decodeSet(5)).toEqual([5]);
    expect(decodeSet(['set', []])).toEqual([]);
    expect(decodeSet(undefined)).toEqual([]);
    expect(() => decodeSet(['map', []])).toThrow(TypeError);
  });

  it('decodeOptional for set-of-0-or-1 columns (ofport)', () => {
    expect(decodeOptional(3)).toBe(3);
    expect(decodeOptional(['set', [3]])).toBe(3);
    expect(decodeOptional(['set', []])).toBeUndefined();
    expect(() => decodeOptional(['set', [1, 2]])).toThrow(TypeError);
  });

  it('decodeUuid / decodeUuidSet', () => {
    expect(decodeUuid(['uuid', U1])).toBe(U1);
    expect(() => decodeUuid('x')).toThrow(TypeError);
    expect(decodeUuidSet(['uuid', U1])).toEqual([U1]);
    expect(
      decodeUuidSet([
        'set',
        [
          ['uuid', U1],
          ['uuid', U2],
        ],
      ]),
    ).toEqual([U1, U2]);
  });

  it('decodeMap / decodeStringMap', () => {
    const m = decodeMap([
      'map',
      [
        ['a', 'b'],
        [['uuid', U1], 2],
      ],
    ]);
    expect(m.get('a')).toBe('b');
    expect(m.get(U1)).toBe(2);
    expect(
      decodeStringMap([
        'map',
        [
          ['iface-id', 'x'],
          ['n', 1],
        ],
      ]),
    ).toEqual({ 'iface-id': 'x', n: '1' });
    expect(decodeStringMap(undefined)).toEqual({});
    expect(() => decodeMap(['set', []])).toThrow(TypeError);
  });
});

describe('valuesEqual and atomKey', () => {
  it('treats a bare atom as a one-element set and ignores order', () => {
    expect(valuesEqual(3, ['set', [3]])).toBe(true);
    expect(valuesEqual(['set', [1, 2]], ['set', [2, 1]])).toBe(true);
    expect(valuesEqual(['set', [1, 2]], ['set', [1]])).toBe(false);
    expect(
      valuesEqual(
        [
          'map',
          [
            ['a', '1'],
            ['b', '2'],
          ],
        ],
        [
          'map',
          [
            ['b', '2'],
            ['a', '1'],
          ],
        ],
      ),
    ).toBe(true);
    expect(valuesEqual(['map', [['a', '1']]], ['map', [['a', '2']]])).toBe(false);
    expect(valuesEqual(['map', []], ['set', []])).toBe(false);
  });

  it('keeps strings, numbers, booleans and uuids apart', () => {
    const keys = [
      atomKey('1'),
      atomKey(1),
      atomKey(true),
      atomKey(['uuid', U1]),
      atomKey(U1),
      atomKey(['named-uuid', 'x']),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('schema column kinds and defaults', () => {
  it('classifies columns as the update2 diff rules need', () => {
    expect(columnKind('integer')).toBe('scalar');
    expect(columnKind({ key: 'string' })).toBe('scalar');
    expect(columnKind({ key: 'integer', min: 0, max: 1 })).toBe('optional');
    expect(columnKind({ key: { type: 'uuid', refTable: 'Port' }, min: 0, max: 'unlimited' })).toBe('set');
    expect(columnKind({ key: 'string', value: 'string', min: 0, max: 'unlimited' })).toBe('map');
  });

  it('defaults match what the server omits from initial rows', () => {
    expect(defaultValue('integer')).toBe(0);
    expect(defaultValue({ key: 'boolean' })).toBe(false);
    expect(defaultValue({ key: { type: 'string', enum: ['set', ['a', 'b']] } })).toBe('');
    expect(defaultValue({ key: 'integer', min: 0, max: 1 })).toEqual(['set', []]);
    expect(defaultValue({ key: 'string', value: 'string', min: 0, max: 'unlimited' })).toEqual(['map', []]);
  });
});
