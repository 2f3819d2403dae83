import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors';
import {
  convertResult,
  encodeResult,
  formatResult,
  parseResult,
  vethResult,
  vhostUserResult,
  type CniResult,
} from '../../src/cni/result';
import { SUPPORTED_CNI_VERSIONS } from '../../src/cni/spec';

/** What host-local (1.0.0) returns for a dual-stack range, decoded. */
const IPAM: CniResult = parseResult({
  cniVersion: '1.0.0',
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1' },
    { address: 'fd00::5/64', gateway: 'fd00::1' },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
  dns: { nameservers: ['10.1.0.53'], search: ['svc.local'] },
});

const VHOST = vhostUserResult({
  ifname: 'net1',
  mac: '0A:00:27:00:00:05',
  mtu: 9000,
  socketPath: '/var/run/vhostplug/pods/c0ffee/vhu3f2a1b4c-9d',
  ipam: {
    ...IPAM,
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 9000, advmss: 8960, priority: 100, table: 10, scope: 0 }],
  },
});

// Golden outputs, one per spec version. 1.1.0 carries mtu/socketPath and route extras;
// 1.0.0 drops them; 0.x adds ips[].version.
const GOLDEN_VHOST: Record<string, string> = {
  '1.1.0':
    '{"cniVersion":"1.1.0","interfaces":[{"name":"net1","mac":"0a:00:27:00:00:05","mtu":9000,"socketPath":"/var/run/vhostplug/pods/c0ffee/vhu3f2a1b4c-9d"}],' +
    '"ips":[{"interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"interface":0,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1","mtu":9000,"advmss":8960,"priority":100,"table":10,"scope":0}],' +
    '"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
  '1.0.0':
    '{"cniVersion":"1.0.0","interfaces":[{"name":"net1","mac":"0a:00:27:00:00:05"}],' +
    '"ips":[{"interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"interface":0,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],' +
    '"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
  '0.4.0':
    '{"cniVersion":"0.4.0","interfaces":[{"name":"net1","mac":"0a:00:27:00:00:05"}],' +
    '"ips":[{"version":"4","interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"version":"6","interface":0,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],' +
    '"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
};
GOLDEN_VHOST['0.3.1'] = GOLDEN_VHOST['0.4.0']!.replace('"0.4.0"', '"0.3.1"');
GOLDEN_VHOST['0.3.0'] = GOLDEN_VHOST['0.4.0']!.replace('"0.4.0"', '"0.3.0"');

const VETH = vethResult({
  hostIfname: 'veth3f2a1b4c',
  hostMac: '5e:00:00:00:00:01',
  ifname: 'eth1',
  mac: '0a:00:27:00:00:06',
  mtu: 1450,
  netns: '/var/run/netns/pod1',
  ipam: IPAM,
});

const GOLDEN_VETH: Record<string, string> = {
  '1.1.0':
    '{"cniVersion":"1.1.0","interfaces":[{"name":"veth3f2a1b4c","mac":"5e:00:00:00:00:01","mtu":1450},{"name":"eth1","mac":"0a:00:27:00:00:06","mtu":1450,"sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"interface":1,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"interface":1,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
  '1.0.0':
    '{"cniVersion":"1.0.0","interfaces":[{"name":"veth3f2a1b4c","mac":"5e:00:00:00:00:01"},{"name":"eth1","mac":"0a:00:27:00:00:06","sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"interface":1,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"interface":1,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
  '0.4.0':
    '{"cniVersion":"0.4.0","interfaces":[{"name":"veth3f2a1b4c","mac":"5e:00:00:00:00:01"},{"name":"eth1","mac":"0a:00:27:00:00:06","sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"version":"4","interface":1,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"version":"6","interface":1,"address":"fd00::5/64","gateway":"fd00::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{"nameservers":["10.1.0.53"],"search":["svc.local"]}}',
};
GOLDEN_VETH['0.3.1'] = GOLDEN_VETH['0.4.0']!.replace('"0.4.0"', '"0.3.1"');
GOLDEN_VETH['0.3.0'] = GOLDEN_VETH['0.4.0']!.replace('"0.4.0"', '"0.3.0"');

describe('result encoding per version (golden)', () => {
  for (const v of SUPPORTED_CNI_VERSIONS) {
    it(`vhost-user result as ${v}`, () => {
      expect(formatResult(VHOST, v)).toBe(GOLDEN_VHOST[v]);
    });
    it(`veth result as ${v}`, () => {
      expect(formatResult(VETH, v)).toBe(GOLDEN_VETH[v]);
    });
  }

  it('vhost-user claims no kernel interface: no sandbox in any version', () => {
    for (const v of SUPPORTED_CNI_VERSIONS) {
      const out = encodeResult(VHOST, v) as { interfaces: Record<string, unknown>[] };
      expect(out.interfaces).toHaveLength(1);
      expect(out.interfaces[0]).not.toHaveProperty('sandbox');
    }
  });

  it('an empty result still has dns {} (as libcni prints it)', () => {
    expect(formatResult(parseResult({}), '1.1.0')).toBe('{"cniVersion":"1.1.0","dns":{}}');
  });

  it('refuses to encode an unsupported version', () => {
    expect(() => encodeResult(VHOST, '0.2.0' as never)).toThrowError(CniError);
  });
});

describe('result decoding and conversion', () => {
  it('round-trips every golden through parse -> encode for each version', () => {
    for (const from of SUPPORTED_CNI_VERSIONS) {
      for (const to of SUPPORTED_CNI_VERSIONS) {
        const converted = JSON.stringify(convertResult(JSON.parse(GOLDEN_VETH[from]!), to));
        // Information only a newer version carries is lost going down, never invented going up.
        const expected =
          from === '1.1.0' || to !== '1.1.0' ? GOLDEN_VETH[to] : GOLDEN_VETH[to]!.replace(/,"mtu":1450/g, '');
        expect(converted, `${from} -> ${to}`).toBe(expected);
      }
    }
  });

  it('checks ips[].version against the address in 0.x results', () => {
    expect(() => parseResult({ ips: [{ version: '6', address: '10.0.0.1/24' }] })).toThrowError(/does not match/);
  });

  it('rejects bad addresses, gateways, routes and indexes with the given code', () => {
    const bad = [
      { ips: [{ address: '10.0.0.1' }] },
      { ips: [{ address: '10.0.0.1/33' }] },
      { ips: [{ address: 'fd00::1/129' }] },
      { ips: [{ address: '10.0.0.1/24', gateway: 'fd00::1' }] },
      { ips: [{ address: '10.0.0.1/24', interface: 0 }] },
      { routes: [{ dst: 'default' }] },
      { routes: [{ dst: '0.0.0.0/0', gw: 'x' }] },
      { routes: [{ dst: '0.0.0.0/0', mtu: -1 }] },
      { interfaces: [{}] },
      { interfaces: 'x' },
      { dns: { nameservers: '1.1.1.1' } },
      'nope',
    ];
    for (const raw of bad) {
      let code: number | undefined;
      try {
        parseResult(raw, { code: 7, what: 'prevResult' });
      } catch (e) {
        code = (e as CniError).cniCode;
      }
      expect(code, JSON.stringify(raw)).toBe(7);
    }
  });

  it('IPAM output may carry stray interface indexes (ignored); prevResult may not', () => {
    const raw = { ips: [{ address: '10.0.0.2/24', interface: 3 }] };
    expect(parseResult(raw, { ignoreInterfaceIndexes: true }).ips).toEqual([{ address: '10.0.0.2/24' }]);
    expect(() => parseResult(raw)).toThrowError(CniError);
  });

  it('builders refuse a bad MAC (code 7)', () => {
    expect(() => vhostUserResult({ ifname: 'net1', mac: 'ff:ff:ff:ff:ff:ff', socketPath: '/x' })).toThrowError(
      CniError,
    );
    expect(() => vethResult({ hostIfname: 'v', ifname: 'e', mac: 'bogus', netns: '/n' })).toThrowError(CniError);
  });

  it('a vhost-user result without IPAM has only the interface', () => {
    const r = vhostUserResult({ ifname: 'net1', mac: '0a:00:00:00:00:01', socketPath: '/run/s' });
    expect(formatResult(r, '1.1.0')).toBe(
      '{"cniVersion":"1.1.0","interfaces":[{"name":"net1","mac":"0a:00:00:00:00:01","socketPath":"/run/s"}],"dns":{}}',
    );
  });
});
