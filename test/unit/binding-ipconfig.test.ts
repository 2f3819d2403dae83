/**
 * L3 planning for veth pods (src/binding/ipconfig.ts): VIF subnets as Kuryr reads them,
 * CNI IPAM results as libcni applies them, and the validation that runs before anything
 * touches a netns. Pure: no root, no kernel.
 */
import { describe, expect, it } from 'vitest';
import { inSubnet, ipConfigFromIpam, ipConfigFromVif, networkOf, normalizeIpConfig } from '../../src/binding/ipconfig';
import { vethMtu } from '../../src/binding/veth';
import { hybridNames, hybridNamesFromPort, hybridQvbName, hybridQvoName } from '../../src/binding/hybrid';
import { ValidationError } from '../../src/binding/validate';
import { parseCidr, parseIp } from '../../src/os/netlink';
import type { Network } from '../../src/vif/model';

const network = (subnets: Network['subnets']): { network: Network } => ({ network: { id: 'n1', subnets } });

describe('ipConfigFromVif (Kuryr _configure_l3)', () => {
  const net = network([
    {
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.1',
      ips: [{ address: '10.0.0.5' }],
      routes: [{ cidr: '192.168.50.0/24', gateway: '10.0.0.254' }],
    },
    { cidr: 'fd00:1::/64', gateway: 'fd00:1::1', ips: [{ address: 'FD00:1:0:0::5' }], routes: [] },
  ]);

  it('adds every fixed IP with its subnet prefix and the subnet host routes', () => {
    expect(ipConfigFromVif(net)).toEqual({
      addresses: ['10.0.0.5/24', 'fd00:1::5/64'],
      routes: [{ dst: '192.168.50.0/24', gateway: '10.0.0.254' }],
    });
  });

  it('adds a default route per subnet gateway only for the default-gateway interface', () => {
    const cfg = ipConfigFromVif(net, { isDefaultGateway: true });
    expect(cfg.routes).toEqual([
      { dst: '192.168.50.0/24', gateway: '10.0.0.254' },
      { dst: 'default', gateway: '10.0.0.1' },
      { dst: 'default', gateway: 'fd00:1::1' },
    ]);
    const n = normalizeIpConfig(cfg);
    expect(n.routes.map((r) => [r.dst, r.family])).toEqual([
      ['192.168.50.0/24', 4],
      ['default', 4],
      ['default', 6],
    ]);
  });

  it('skips the routes of a subnet the port has no address on (their next hop is unreachable)', () => {
    const cfg = ipConfigFromVif(network([{ cidr: '10.1.0.0/24', gateway: '10.1.0.1', ips: [], routes: [{ cidr: '1.2.3.0/24', gateway: '10.1.0.9' }] }]), {
      isDefaultGateway: true,
    });
    expect(cfg).toEqual({ addresses: [], routes: [] });
  });

  it('refuses an address outside its subnet, naming the field', () => {
    const bad = network([{ cidr: '10.0.0.0/24', ips: [{ address: '10.0.1.5' }] }]);
    expect(() => ipConfigFromVif(bad)).toThrow(ValidationError);
    expect(() => ipConfigFromVif(bad)).toThrow(/network\.subnets\[0\]\.ips\[0\]\.address.*not inside the subnet 10\.0\.0\.0\/24/);
  });

  it('a VIF without a network or subnets gives no L3', () => {
    expect(ipConfigFromVif({ network: null })).toEqual({ addresses: [], routes: [] });
    expect(ipConfigFromVif({})).toEqual({ addresses: [], routes: [] });
  });
});

describe('ipConfigFromIpam (libcni ConfigureIface)', () => {
  const result = {
    ips: [
      { address: '10.22.0.7/16', gateway: '10.22.0.1', interface: 0 },
      { address: '2001:db8::7/64', gateway: '2001:db8::1', interface: 0 },
      { address: '172.16.0.2/24', interface: 1 },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.22.0.254' }],
  };

  it('takes the ips of this interface and routes without gw go via the gateway of their family', () => {
    expect(ipConfigFromIpam(result, { interfaceIndex: 0 })).toEqual({
      addresses: ['10.22.0.7/16', '2001:db8::7/64'],
      routes: [
        { dst: '0.0.0.0/0', gateway: '10.22.0.1' },
        { dst: '::/0', gateway: '2001:db8::1' },
        { dst: '192.168.0.0/16', gateway: '10.22.0.254' },
      ],
    });
  });

  it('leaves default routes out of a secondary interface', () => {
    expect(ipConfigFromIpam(result, { interfaceIndex: 0, isDefaultGateway: false }).routes).toEqual([{ dst: '192.168.0.0/16', gateway: '10.22.0.254' }]);
  });

  it('a route with no gateway of its family is on-link', () => {
    expect(ipConfigFromIpam({ ips: [{ address: '172.16.0.2/24' }], routes: [{ dst: '10.9.0.0/16' }] })).toEqual({
      addresses: ['172.16.0.2/24'],
      routes: [{ dst: '10.9.0.0/16' }],
    });
  });

  it('normalises 0.0.0.0/0 and ::/0 to the default route', () => {
    const n = normalizeIpConfig(ipConfigFromIpam(result, { interfaceIndex: 0 }));
    expect(n.routes.filter((r) => r.dst === 'default').map((r) => r.gateway)).toEqual(['10.22.0.1', '2001:db8::1']);
  });

  it('refuses a malformed IPAM address', () => {
    expect(() => ipConfigFromIpam({ ips: [{ address: '10.0.0.300/24' }] })).toThrow(/ips\[0\]\.address/);
  });
});

describe('normalizeIpConfig', () => {
  it('canonicalises (RFC 5952), drops duplicates and orders on-link routes first', () => {
    const n = normalizeIpConfig({
      addresses: ['2001:DB8:0:0:0:0:0:5/64', '2001:db8::5/64', '10.0.0.5/24'],
      routes: [
        { dst: 'default', gateway: '169.254.1.1' },
        { dst: '169.254.1.1/32' },
        { dst: '10.1.2.3/16', gateway: '10.0.0.1' },
        { dst: '10.1.0.0/16', gateway: '10.0.0.1' },
      ],
    });
    expect(n.addresses).toEqual([
      { cidr: '2001:db8::5/64', address: '2001:db8::5', prefix: 64, family: 6 },
      { cidr: '10.0.0.5/24', address: '10.0.0.5', prefix: 24, family: 4 },
    ]);
    expect(n.routes).toEqual([
      { dst: '169.254.1.1/32', family: 4 },
      { dst: 'default', gateway: '169.254.1.1', family: 4 },
      { dst: '10.1.0.0/16', gateway: '10.0.0.1', family: 4 },
    ]);
  });

  it('refuses an unreachable next hop, a family mismatch, a default route without gateway, and junk', () => {
    const cases: [unknown, RegExp][] = [
      [{ addresses: ['10.0.0.5/24'], routes: [{ dst: '1.0.0.0/8', gateway: '10.9.9.9' }] }, /unreachable next hop/],
      [{ addresses: ['10.0.0.5/24'], routes: [{ dst: '1.0.0.0/8', gateway: 'fd00::1' }] }, /is IPv6 but the destination is IPv4/],
      [{ addresses: ['10.0.0.5/24'], routes: [{ dst: 'default' }] }, /default route needs a gateway/],
      [{ addresses: ['10.0.0.5'], routes: [] }, /addresses\[0\]/],
      [{ addresses: ['10.0.0.5/33'], routes: [] }, /addresses\[0\]/],
      [{ addresses: 'x', routes: [] }, /addresses/],
      [null, /ipConfig/],
    ];
    for (const [cfg, re] of cases) {
      expect(() => normalizeIpConfig(cfg as never)).toThrow(ValidationError);
      expect(() => normalizeIpConfig(cfg as never)).toThrow(re);
    }
  });

  it('accepts an IPv6 link-local next hop (reachable on any IPv6 link)', () => {
    const n = normalizeIpConfig({ addresses: ['fd00::5/64'], routes: [{ dst: '::/0', gateway: 'fe80::1' }] });
    expect(n.routes).toEqual([{ dst: 'default', gateway: 'fe80::1', family: 6 }]);
  });
});

describe('subnet arithmetic', () => {
  it('inSubnet compares the leading prefix bits, including non-octet prefixes', () => {
    expect(inSubnet(parseIp('10.0.0.130'), parseCidr('10.0.0.128/25'))).toBe(true);
    expect(inSubnet(parseIp('10.0.0.127'), parseCidr('10.0.0.128/25'))).toBe(false);
    expect(inSubnet(parseIp('fd00::1'), parseCidr('10.0.0.0/8'))).toBe(false);
    expect(inSubnet(parseIp('1.2.3.4'), parseCidr('0.0.0.0/0'))).toBe(true);
  });

  it('networkOf clears host bits', () => {
    expect(networkOf(parseCidr('10.1.2.3/12'))).toBe('10.0.0.0/12');
    expect(networkOf(parseCidr('2001:db8:ffff::1/33'))).toBe('2001:db8:8000::/33');
  });
});

describe('veth MTU and hybrid names', () => {
  it('uses the network MTU, else the default, capped by network_device_mtu when smaller', () => {
    expect(vethMtu(9000)).toBe(9000);
    expect(vethMtu(null)).toBe(1500);
    expect(vethMtu(undefined, 1450)).toBe(1450);
    expect(vethMtu(9000, 1500, 1400)).toBe(1400);
    expect(vethMtu(1300, 1500, 1400)).toBe(1300);
    expect(vethMtu(9000, 1500, 0)).toBe(9000);
    expect(() => vethMtu(70000)).toThrow(ValidationError);
  });

  it('derives qbr/qvb/qvo/tap from the port id (14 characters) and back from the qvo name', () => {
    const id = '3f0f8d0e-1b2c-4d5e-8f90-123456789abc';
    const n = hybridNames({ id, vif_name: 'tap3f0f8d0e-1b', bridge_name: 'qbr3f0f8d0e-1b' });
    expect(n).toEqual({ tap: 'tap3f0f8d0e-1b', bridge: 'qbr3f0f8d0e-1b', qvb: 'qvb3f0f8d0e-1b', qvo: 'qvo3f0f8d0e-1b' });
    expect(hybridQvbName(id)).toBe('qvb3f0f8d0e-1b');
    expect(hybridQvoName(id)).toBe('qvo3f0f8d0e-1b');
    expect(hybridNamesFromPort('qvo3f0f8d0e-1b')).toEqual(n);
    expect(hybridNamesFromPort('tap3f0f8d0e-1b')).toBeUndefined();
  });
});
