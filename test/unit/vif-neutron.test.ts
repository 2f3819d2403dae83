/**
 * Neutron port -> VIF. The golden cases (test/fixtures/vif/neutron-*.json) hold the port,
 * the subnet mapping and the config, and the primitive os-vif serialised for the VIF
 * built the way Kuryr's translator builds it (generate.py): our translation must encode
 * to the same primitive.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  NeutronTranslationError,
  makeSubnetMapping,
  neutronNetworkToOsvif,
  neutronPortToVIF,
  neutronSubnetToOsvif,
  type NeutronPort,
  type SubnetMapping,
} from '../../src/vif/neutron';
import { decodeNetwork, encodeVIF, encodeNetwork, type OvoPrimitive } from '../../src/vif/ovo';
import type { VIFVHostUser } from '../../src/vif/model';

const FIXTURES = path.resolve(__dirname, '../fixtures/vif');
const CASES = [
  'neutron-vhu-client',
  'neutron-vhu-server-dualstack',
  'neutron-ovs-native',
  'neutron-ovs-hybrid',
  'neutron-ovs-no-details-other-net',
];

interface Case {
  vif_type: string;
  config: { ovs_bridge: string; mount_point: string };
  port: NeutronPort;
  subnets: Record<string, OvoPrimitive>;
  expected: OvoPrimitive;
}
const load = (name: string): Case => JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
const mappingOf = (c: Case): SubnetMapping =>
  Object.fromEntries(Object.entries(c.subnets).map(([id, p]) => [id, decodeNetwork(p)]));
const sortChanges = (x: unknown): unknown =>
  JSON.parse(JSON.stringify(x, (k, v) => (k === 'versioned_object.changes' ? [...(v as string[])].sort() : v)));

function expectTranslationError(fn: () => unknown, code: string, match?: RegExp): NeutronTranslationError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(NeutronTranslationError);
  const e = caught as NeutronTranslationError;
  expect(e.code).toBe(code);
  if (match) expect(e.message).toMatch(match);
  return e;
}

describe('golden translations (os-vif objects built as Kuryr builds them)', () => {
  for (const name of CASES) {
    it(name, () => {
      const c = load(name);
      const vif = neutronPortToVIF(c.port, mappingOf(c), c.config);
      expect(sortChanges(encodeVIF(vif))).toStrictEqual(sortChanges(c.expected));
    });
  }
});

describe('branch choice and fields', () => {
  const base = (): Case => load('neutron-vhu-client');

  it('vhost-user: names, path, plugin ovs, profile without datapath_type', () => {
    const c = base();
    const vif = neutronPortToVIF(c.port, mappingOf(c), { ovs_bridge: 'br-int', mount_point: '/var/run/vhostuser/' });
    expect(vif.kind).toBe('VIFVHostUser');
    const v = vif as VIFVHostUser;
    expect(v.vif_name).toBe('vhu9c9cc8f5-88');
    expect(v.path).toBe('/var/run/vhostuser/vhu9c9cc8f5-88'); // trailing slash normalised: one definition
    expect(v.plugin).toBe('ovs');
    expect(v.mode).toBe('client');
    expect(v.active).toBe(true);
    expect(v.port_profile).toStrictEqual({ kind: 'VIFPortProfileOpenVSwitch', interface_id: c.port.id });
    expect(v.network?.bridge).toBe('br-int');
  });

  it('vhost-user wins over hybrid plug; bridge_name from vif_details wins over the config', () => {
    const c = load('neutron-vhu-server-dualstack');
    const v = neutronPortToVIF(c.port, mappingOf(c), { ovs_bridge: 'br-int', mount_point: '/run/vhu' }) as VIFVHostUser;
    expect(v.kind).toBe('VIFVHostUser');
    expect(v.mode).toBe('server');
    expect(v.network?.bridge).toBe('br-dpdk');
    expect(v.has_traffic_filtering).toBe(true);
    expect(v.active).toBe(false);
    expect(v.address).toBe('fa:16:3e:b6:79:32'); // Neutron's upper case, normalised
    // Two IPs on the IPv4 subnet, one on the IPv6 subnet, the unrequested subnet skipped.
    expect(v.network?.subnets?.map((s) => [s.cidr, s.ips?.map((i) => i.address)])).toStrictEqual([
      ['10.10.0.0/24', ['10.10.0.6', '10.10.0.7']],
      ['2001:db8:10::/64', ['2001:db8:10::6']],
    ]);
  });

  it('hybrid gives VIFBridge with tap/qbr names; native gives VIFOpenVSwitch on the OVS bridge', () => {
    const h = load('neutron-ovs-hybrid');
    expect(neutronPortToVIF(h.port, mappingOf(h), h.config)).toMatchObject({
      kind: 'VIFBridge',
      vif_name: 'tap3f0f8d0e-1b',
      bridge_name: 'qbr3f0f8d0e-1b',
      plugin: 'ovs',
      network: { bridge: 'br-ex' },
    });
    const n = load('neutron-ovs-native');
    expect(neutronPortToVIF(n.port, mappingOf(n), n.config)).toMatchObject({
      kind: 'VIFOpenVSwitch',
      vif_name: 'tap3f0f8d0e-1b',
      bridge_name: 'br-int',
    });
  });

  it("ignores Neutron's vhostuser_socket, vhostuser_ovs_plug and datapath_type", () => {
    const c = base();
    const details = c.port['binding:vif_details']!;
    details.vhostuser_socket = '/somewhere/else';
    details.datapath_type = 'system';
    const v = neutronPortToVIF(c.port, mappingOf(c), c.config) as VIFVHostUser;
    expect(v.path).toBe('/var/run/vhostuser/vhu9c9cc8f5-88');
    expect(v.port_profile?.datapath_type).toBeUndefined();
  });

  it('accepts the openstacksdk attribute spelling', () => {
    const c = base();
    const port: NeutronPort = {
      ...c.port,
      binding_vif_type: 'vhostuser',
      binding_vif_details: c.port['binding:vif_details'] ?? null,
    };
    delete port['binding:vif_type'];
    delete port['binding:vif_details'];
    expect(sortChanges(encodeVIF(neutronPortToVIF(port, mappingOf(c), c.config)))).toStrictEqual(
      sortChanges(c.expected),
    );
  });
});

describe('errors', () => {
  const base = (): Case => load('neutron-vhu-client');

  it('binding_failed and unknown vif types', () => {
    const c = base();
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, 'binding:vif_type': 'binding_failed' }, mappingOf(c), c.config),
      'EPORTBINDINGFAILED',
      /binding_failed/,
    );
    for (const t of ['unbound', 'macvtap', undefined]) {
      expectTranslationError(
        () => neutronPortToVIF({ ...c.port, 'binding:vif_type': t }, mappingOf(c), c.config),
        'EVIFTYPE',
        /not supported/,
      );
    }
  });

  it('no bridge anywhere names [neutron_defaults] ovs_bridge, before any network processing', () => {
    const c = load('neutron-ovs-native');
    // An empty mapping would be an IntegrityError; the bridge check comes first (Kuryr's order).
    const e = expectTranslationError(
      () => neutronPortToVIF(c.port, {}, { mount_point: '/run/vhu' }),
      'EREQUIREDOPT',
      /\[neutron_defaults\] ovs_bridge/,
    );
    expect([e.section, e.option]).toStrictEqual(['neutron_defaults', 'ovs_bridge']);
  });

  it("no mount point names [vhostuser] mount_point (not Kuryr's wrong option name)", () => {
    const c = base();
    const e = expectTranslationError(
      () => neutronPortToVIF(c.port, mappingOf(c), { ovs_bridge: 'br-int', mount_point: '' }),
      'EREQUIREDOPT',
      /\[vhostuser\] mount_point/,
    );
    expect([e.section, e.option]).toStrictEqual(['vhostuser', 'mount_point']);
    expect(e.message).not.toMatch(/vhostuser_mount_point/);
    // A veth port does not need it.
    const n = load('neutron-ovs-native');
    expect(neutronPortToVIF(n.port, mappingOf(n), { ovs_bridge: 'br-int' }).kind).toBe('VIFOpenVSwitch');
  });

  it('bad vhostuser_mode, and vif_type vhostuser without a mode', () => {
    const c = base();
    const details = c.port['binding:vif_details']!;
    expectTranslationError(
      () =>
        neutronPortToVIF(
          { ...c.port, 'binding:vif_details': { ...details, vhostuser_mode: 'both' } },
          mappingOf(c),
          c.config,
        ),
      'EBADVALUE',
      /client.*server/,
    );
    expectTranslationError(
      () =>
        neutronPortToVIF(
          { ...c.port, 'binding:vif_details': { ...details, vhostuser_mode: false } },
          mappingOf(c),
          c.config,
        ),
      'EBADVALUE',
      /no vhostuser_mode/,
    );
  });

  it('a socket path that does not fit sun_path', () => {
    const c = base();
    expectTranslationError(
      () => neutronPortToVIF(c.port, mappingOf(c), { ovs_bridge: 'br-int', mount_point: `/${'d'.repeat(100)}` }),
      'EBADVALUE',
      /107/,
    );
    expectTranslationError(
      () => neutronPortToVIF(c.port, mappingOf(c), { ovs_bridge: 'br-int', mount_point: 'relative/dir' }),
      'EBADVALUE',
      /absolute/,
    );
  });

  it('bad port data: MAC, id, bridge name, fixed IP', () => {
    const c = base();
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, mac_address: 'fa:16:3e' }, mappingOf(c), c.config),
      'EBADVALUE',
      /mac_address/,
    );
    expectTranslationError(() => neutronPortToVIF({ ...c.port, id: '' }, mappingOf(c), c.config), 'EBADVALUE', /no id/);
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, id: 'a/b' }, mappingOf(c), c.config),
      'EBADVALUE',
      /vif_name/,
    );
    expectTranslationError(
      () => neutronPortToVIF(c.port, mappingOf(c), { ...c.config, ovs_bridge: 'br int' }),
      'EBADVALUE',
      /bridge name/,
    );
    const fixed = [{ subnet_id: c.port.fixed_ips![0]!.subnet_id, ip_address: '10.10.0.999' }];
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, fixed_ips: fixed }, mappingOf(c), c.config),
      'EBADVALUE',
      /fixed_ips\[0\]/,
    );
  });

  it('integrity errors: wrong network, no usable subnet, a mapped network with two subnets', () => {
    const c = base();
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, network_id: 'other' }, mappingOf(c), c.config),
      'EINTEGRITY',
      /belongs to network other/,
    );
    expectTranslationError(
      () => neutronPortToVIF({ ...c.port, fixed_ips: [] }, mappingOf(c), c.config),
      'EINTEGRITY',
      /no valid subnets/,
    );
    const m = mappingOf(c) as Record<string, ReturnType<typeof decodeNetwork>>;
    const sid = c.port.fixed_ips![0]!.subnet_id;
    m[sid] = { ...m[sid]!, subnets: [...m[sid]!.subnets!, ...m[sid]!.subnets!] };
    expectTranslationError(() => neutronPortToVIF(c.port, m, c.config), 'EINTEGRITY', /single subnet, but 2 found/);
  });
});

describe('Neutron network and subnet objects', () => {
  const NET = '1f9e6a5c-2c8a-4b1e-9d6f-0a4c3e2b1d10';

  it("makeSubnetMapping builds what Kuryr's subnets driver gives (golden mapping)", () => {
    const c = load('neutron-vhu-client');
    const mapping = makeSubnetMapping(
      [
        { id: NET, name: 'pod-net', mtu: 1450 },
        { id: '7a1c2d3e-4f50-4617-8829-3a4b5c6d7e8f', name: null, mtu: null },
      ],
      [
        {
          id: 'e1b2c3d4-0001-4000-8000-000000000004',
          network_id: NET,
          cidr: '10.10.0.0/24',
          gateway_ip: '10.10.0.1',
          dns_nameservers: ['10.10.0.2', '8.8.8.8'],
          host_routes: [{ destination: '192.168.100.0/24', nexthop: '10.10.0.254' }],
        },
        {
          id: 'e1b2c3d4-0001-4000-8000-000000000006',
          network_id: NET,
          cidr: '2001:db8:10::/64',
          gateway_ip: null,
          dns_nameservers: [],
          host_routes: [],
        },
        {
          id: 'e1b2c3d4-0001-4000-8000-0000000000ff',
          network_id: '7a1c2d3e-4f50-4617-8829-3a4b5c6d7e8f',
          cidr: '172.16.0.0/16',
          gateway_ip: '172.16.0.1',
          dns_nameservers: [],
          host_routes: [],
        },
      ],
    );
    const encoded = Object.fromEntries(Object.entries(mapping).map(([id, n]) => [id, encodeNetwork(n)]));
    expect(sortChanges(encoded)).toStrictEqual(sortChanges(c.subnets));
  });

  it('label and mtu only when given; VLAN provider networks carry their tag', () => {
    expect(neutronNetworkToOsvif({ id: 'n', name: null, mtu: null })).toStrictEqual({
      id: 'n',
      subnets: [],
      multi_host: false,
      should_provide_bridge: false,
      should_provide_vlan: false,
      mtu: null,
    });
    expect(
      neutronNetworkToOsvif({ id: 'n', 'provider:network_type': 'vlan', 'provider:segmentation_id': 42 }),
    ).toMatchObject({ should_provide_vlan: true, vlan: 42 });
  });

  it('subnet: gateway only when given, addresses checked', () => {
    expect(neutronSubnetToOsvif({ id: 's', network_id: 'n', cidr: '2001:DB8::/64' })).toStrictEqual({
      cidr: '2001:db8::/64',
      dns: [],
      routes: [],
    });
    expect(() => neutronSubnetToOsvif({ id: 's', network_id: 'n', cidr: '10.0.0.0/24', gateway_ip: 'gw' })).toThrow(
      /gateway_ip "gw"/,
    );
    expect(() => makeSubnetMapping([], [{ id: 's', network_id: 'n', cidr: '10.0.0.0/24' }])).toThrow(
      NeutronTranslationError,
    );
  });
});
