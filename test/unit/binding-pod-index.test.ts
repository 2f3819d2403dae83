/** interfaces.json: build, format, parse, validate (src/binding/pod-index.ts). */
import { describe, expect, it } from 'vitest';
import {
  buildPodIndex,
  findInterface,
  formatPodIndex,
  parsePodIndex,
  PodIndexError,
  POD_INDEX_VERSION,
  validatePodIndexEntry,
  type PodIndexEntry,
} from '../../src/binding/pod-index';

/** interfaces.json as parsed JSON, before validation: the cases below break it field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type IndexJson = Record<string, any>;

const UID = '0b9c2a64-5d1e-4c1a-9f0e-2f6a1e7b3c4d';

function entry(over: Partial<PodIndexEntry> = {}): PodIndexEntry {
  return {
    ifname: 'net1',
    vhostname: 'vhu1a2b3c4d-5e',
    socket: 'vhu1a2b3c4d-5e',
    socket_path: '/var/run/vhostuser/vhu1a2b3c4d-5e',
    mode: 'client',
    mac: '02:00:00:00:00:01',
    mtu: 1500,
    generation: 1,
    config_file: 'ctr1-net1',
    container_id: 'ctr1',
    ...over,
  };
}

describe('pod index', () => {
  it('builds a sorted index, one entry per ifname (the last given wins), and round-trips', () => {
    const idx = buildPodIndex({ uid: UID, namespace: 'default', name: 'dpdk-app' }, [
      entry({ ifname: 'net2', socket: 'vhu2', vhostname: 'vhu2', config_file: 'ctr1-net2' }),
      entry({ container_id: 'old', config_file: 'old-net1' }),
      entry({ mac: '02:00:00:00:00:AA' }),
    ]);
    expect(idx.version).toBe(POD_INDEX_VERSION);
    expect(idx.interfaces.map((e) => e.ifname)).toEqual(['net1', 'net2']);
    expect(findInterface(idx, 'net1')).toMatchObject({ container_id: 'ctr1', mac: '02:00:00:00:00:aa' });
    const text = formatPodIndex(idx);
    expect(text.endsWith('\n')).toBe(true);
    expect(parsePodIndex(text)).toEqual(idx);
    // Keys in the documented order.
    expect(Object.keys(idx.interfaces[0]!)).toEqual([
      'ifname',
      'vhostname',
      'socket',
      'socket_path',
      'mode',
      'mac',
      'mtu',
      'generation',
      'config_file',
      'container_id',
    ]);
    expect(Object.keys(idx)).toEqual(['version', 'pod_uid', 'pod_namespace', 'pod_name', 'interfaces']);
  });

  it('socket_path is optional', () => {
    const e = entry();
    delete e.socket_path;
    expect(validatePodIndexEntry(e)).not.toHaveProperty('socket_path');
  });

  const bad: [string, (d: IndexJson) => void, RegExp][] = [
    ['wrong version', (d) => (d.version = 2), /version 2 is not 1/],
    ['socket climbing out', (d) => (d.interfaces[0].socket = '../x'), /socket/],
    ['socket with a slash', (d) => (d.interfaces[0].socket = 'a/b'), /socket/],
    ['config file ..', (d) => (d.interfaces[0].config_file = '..'), /config_file/],
    ['bad ifname', (d) => (d.interfaces[0].ifname = 'a b'), /ifname/],
    ['bad mode', (d) => (d.interfaces[0].mode = 'both'), /mode/],
    ['bad MAC', (d) => (d.interfaces[0].mac = 'zz'), /mac/],
    ['bad MTU', (d) => (d.interfaces[0].mtu = 10), /mtu/],
    ['negative generation', (d) => (d.interfaces[0].generation = -1), /generation/],
    ['relative socket_path', (d) => (d.interfaces[0].socket_path = 'x'), /socket_path/],
    ['bad pod UID', (d) => (d.pod_uid = '../../etc'), /pod_uid/],
    ['bad namespace', (d) => (d.pod_namespace = 'A_B'), /pod_namespace/],
    ['duplicate ifname', (d) => d.interfaces.push({ ...d.interfaces[0] }), /twice/],
    ['interfaces not an array', (d) => (d.interfaces = {}), /array/],
  ];
  for (const [what, mutate, msg] of bad) {
    it(`refuses ${what}`, () => {
      const d = JSON.parse(formatPodIndex(buildPodIndex({ uid: UID, namespace: 'default' }, [entry()])));
      mutate(d);
      expect(() => parsePodIndex(JSON.stringify(d))).toThrow(msg);
      expect(() => parsePodIndex(JSON.stringify(d))).toThrow(PodIndexError);
    });
  }

  it('refuses non-JSON, a non-object and an oversized file', () => {
    expect(() => parsePodIndex('{')).toThrow(/not JSON/);
    expect(() => parsePodIndex('[]')).toThrow(/object/);
    expect(() => parsePodIndex(' '.repeat(300 * 1024))).toThrow(/larger than/);
  });
});
