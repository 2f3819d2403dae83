/**
 * L3 planning for veth pods (src/binding/ipconfig.ts): VIF subnets as Kuryr reads them,
 * CNI IPAM results as libcni applies them, and the validation that runs before anything
 * touches a netns. Pure: no root, no kernel.
 */
import { describe, expect, it } from 'vitest';
import { inSubnet, ipConfigFromIpam, ipConfigFromVif, networkOf, normalizeIpConfig } from '../../src/binding/ipconfig';
import { VETH_KEYS, VethDriver, vethMtu } from '../../src/binding/veth';
import type { Vswitch } from '../../src/vswitch/vswitch';
import { hybridNames, hybridNamesFromPort, hybridQvbName, hybridQvoName } from '../../src/binding/hybrid';
import { ValidationError } from '../../src/core/validate';
import { parseCidr, parseIp } from '../../src/core/net';
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
    const cfg = ipConfigFromVif(
      network([
        { cidr: '10.1.0.0/24', gateway: '10.1.0.1', ips: [], routes: [{ cidr: '1.2.3.0/24', gateway: '10.1.0.9' }] },
      ]),
      {
        isDefaultGateway: true,
      },
    );
    expect(cfg).toEqual({ addresses: [], routes: [] });
  });

  it('refuses an address outside its subnet, naming the field', () => {
    const bad = network([{ cidr: '10.0.0.0/24', ips: [{ address: '10.0.1.5' }] }]);
    expect(() => ipConfigFromVif(bad)).toThrow(ValidationError);
    expect(() => ipConfigFromVif(bad)).toThrow(
      /network\.subnets\[0\]\.ips\[0\]\.address.*not inside the subnet 10\.0\.0\.0\/24/,
    );
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
    expect(ipConfigFromIpam(result, { interfaceIndex: 0, isDefaultGateway: false }).routes).toEqual([
      { dst: '192.168.0.0/16', gateway: '10.22.0.254' },
    ]);
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
      [
        { addresses: ['10.0.0.5/24'], routes: [{ dst: '1.0.0.0/8', gateway: 'fd00::1' }] },
        /is IPv6 but the destination is IPv4/,
      ],
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
    expect(inSubnet(parseIp('10.0.0.130')!, parseCidr('10.0.0.128/25')!)).toBe(true);
    expect(inSubnet(parseIp('10.0.0.127')!, parseCidr('10.0.0.128/25')!)).toBe(false);
    expect(inSubnet(parseIp('fd00::1')!, parseCidr('10.0.0.0/8')!)).toBe(false);
    expect(inSubnet(parseIp('1.2.3.4')!, parseCidr('0.0.0.0/0')!)).toBe(true);
  });

  it('networkOf clears host bits', () => {
    expect(networkOf(parseCidr('10.1.2.3/12')!)).toBe('10.0.0.0/12');
    expect(networkOf(parseCidr('2001:db8:ffff::1/33')!)).toBe('2001:db8:8000::/33');
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
    expect(n).toEqual({
      tap: 'tap3f0f8d0e-1b',
      bridge: 'qbr3f0f8d0e-1b',
      qvb: 'qvb3f0f8d0e-1b',
      qvo: 'qvo3f0f8d0e-1b',
    });
    expect(hybridQvbName(id)).toBe('qvb3f0f8d0e-1b');
    expect(hybridQvoName(id)).toBe('qvo3f0f8d0e-1b');
    expect(hybridNamesFromPort('qvo3f0f8d0e-1b')).toEqual(n);
    expect(hybridNamesFromPort('tap3f0f8d0e-1b')).toBeUndefined();
  });
});

describe('VethDriver.plan (names, port spec and validation, before any I/O)', () => {
  // plan() reads nothing from OVSDB; the Vswitch is never touched here.
  const driver = new VethDriver({} as Vswitch, { defaultBridge: 'br-default', networkDeviceMtu: 1400 });
  const id = '89eccd45-43e9-43d8-b4cc-4c13db13f782';
  const base = {
    id,
    address: '3E:94:B7:31:A0:83',
    network: {
      id: 'n',
      bridge: 'br-int',
      mtu: 9000,
      subnets: [{ cidr: '192.168.0.0/24', gateway: '192.168.0.1', ips: [{ address: '192.168.0.2' }] }],
    },
    port_profile: { kind: 'VIFPortProfileOpenVSwitch' as const, interface_id: 'iface-1' },
    vif_name: 'tap89eccd45-43',
  };
  const req = {
    containerId: 'abc123',
    ifname: 'eth0',
    netns: '/var/run/netns/pod',
    podUid: 'b6c0a1d2-0000-4000-8000-000000000001',
    isDefaultGateway: true,
  };

  it('VIFOpenVSwitch: the tap is the OVS port with the os-vif keys, vm-uuid = pod UID, ownership and device keys', () => {
    const { att, spec, ip } = driver.plan({ ...req, vif: { kind: 'VIFOpenVSwitch', ...base, bridge_name: 'br-int' } });
    expect(att.hostIfname).toBe('tap89eccd45-43');
    expect(att.portName).toBe('tap89eccd45-43');
    expect(att.mac).toBe('3e:94:b7:31:a0:83');
    expect(att.mtu).toBe(1400); // 9000 capped by network_device_mtu
    expect(spec).toEqual({
      bridge: 'br-int',
      name: 'tap89eccd45-43',
      type: '',
      external_ids: {
        'iface-id': 'iface-1',
        'iface-status': 'active',
        'attached-mac': '3e:94:b7:31:a0:83',
        'vm-uuid': req.podUid,
        'vhostplug-owner': 'vhostplug',
        'vhostplug-container-id': 'abc123',
        'vhostplug-ifname': 'eth0',
        [VETH_KEYS.hostIfname]: 'tap89eccd45-43',
        [VETH_KEYS.netns]: '/var/run/netns/pod',
      },
    });
    expect(spec.datapath_type).toBeUndefined(); // the bridge's datapath is left alone
    expect(ip.routes).toEqual([{ dst: 'default', gateway: '192.168.0.1', family: 4 }]);
  });

  it('VIFBridge: qvo is the OVS port, the tap goes on qbr, and the profile datapath is passed through', () => {
    const vif = {
      kind: 'VIFBridge' as const,
      ...base,
      bridge_name: 'qbr89eccd45-43',
      network: { ...base.network, bridge: undefined },
      port_profile: { ...base.port_profile, datapath_type: 'netdev' },
    };
    const { att, spec } = driver.plan({ ...req, vif });
    expect(att.hybrid).toEqual({
      tap: 'tap89eccd45-43',
      bridge: 'qbr89eccd45-43',
      qvb: 'qvb89eccd45-43',
      qvo: 'qvo89eccd45-43',
    });
    expect(spec.name).toBe('qvo89eccd45-43');
    expect(spec.bridge).toBe('br-default'); // no network bridge: [neutron_defaults] ovs_bridge
    expect(spec.datapath_type).toBe('netdev');
    expect(spec.external_ids[VETH_KEYS.linuxBridge]).toBe('qbr89eccd45-43');
  });

  it('refuses bad input with the field named', () => {
    const vif = { kind: 'VIFOpenVSwitch' as const, ...base, bridge_name: 'br-int' };
    const cases: [object, RegExp][] = [
      [{ ...req, vif: { ...vif, kind: 'VIFVHostUser' } }, /expected a VIFOpenVSwitch or VIFBridge/],
      [{ ...req, vif, containerId: '../x' }, /container id/],
      [{ ...req, vif, ifname: 'eth0/../x' }, /ifname/],
      [{ ...req, vif, netns: 'relative/ns' }, /netns/],
      [{ ...req, vif: { ...vif, address: '01:00:5e:00:00:01' } }, /vif\.address.*multicast/],
      [{ ...req, vif: { ...vif, vif_name: 'tap-name-way-too-long' } }, /vif_name/],
      [{ ...req, vif: { ...vif, port_profile: { ...base.port_profile, datapath_type: 'dpdk' } } }, /datapath_type/],
      [{ ...req, vif, ipConfig: { addresses: ['nope'], routes: [] } }, /ipConfig\.addresses\[0\]/],
    ];
    for (const [r, re] of cases) expect(() => driver.plan(r as never)).toThrow(re);
    const noBridge = new VethDriver({} as Vswitch);
    expect(() =>
      noBridge.plan({ ...req, vif: { ...vif, bridge_name: '', network: { ...base.network, bridge: undefined } } }),
    ).toThrow(/ovs_bridge/);
  });
});
