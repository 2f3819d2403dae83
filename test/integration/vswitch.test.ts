/**
 * src/vswitch against a real ovsdb-server + DPDK ovs-vswitchd: what we write reads back
 * with ovs-vsctl, repeated plugs are idempotent, conflicts and datapath mismatches are
 * refused before anything is written, deletes are idempotent.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../../src/ovsdb/client';
import { VSWITCH_CACHE } from '../../src/vswitch/rows';
import { DatapathMismatchError } from '../../src/vswitch/ports';
import { osVifExternalIds, ownerExternalIds, type Attachment } from '../../src/vswitch/ownership';
import { PortConflictError, Vswitch } from '../../src/vswitch/vswitch';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, needsOvs } from '../helpers/skip';

function get(sb: { vsctl(...a: string[]): string }, ...args: string[]): string {
  return sb
    .vsctl('get', ...args)
    .trim()
    .replace(/^"(.*)"$/, '$1');
}

describeIf(needsOvs({ dpdk: true }))('Vswitch on a private DPDK OVS', () => {
  const sandbox = useSandbox();
  let client: OvsdbClient;
  let vs: Vswitch;
  const owner: Attachment = { containerId: 'c0ffee', ifname: 'eth0', podNamespace: 'ns1', podName: 'pod1' };

  beforeAll(async () => {
    client = await OvsdbClient.connect(sandbox().db, {
      transport: process.env.VHP_TRANSPORT === 'net' ? 'net' : 'native',
      cache: VSWITCH_CACHE,
    });
    vs = new Vswitch(client);
  });
  afterAll(() => client?.close());

  function spec(name: string, extra: Record<string, string> = {}) {
    return {
      bridge: 'br-int',
      name,
      type: 'dpdkvhostuserclient' as const,
      options: { 'vhost-server-path': `${sandbox().dir}/${name}.sock` },
      external_ids: {
        ...osVifExternalIds({ ifaceId: `id-${name}`, mac: 'fa:16:3e:00:00:01', vmUuid: 'pod-uid-1' }),
        ...ownerExternalIds(owner),
        ...extra,
      },
      mtu_request: 1500,
      datapath_type: 'netdev' as const,
    };
  }

  it('adds a vhost-user port in one acknowledged transaction; ovs-vsctl reads back every column', async () => {
    const r = await vs.addPort(spec('vhu-a'), owner);
    expect(r).toMatchObject({ name: 'vhu-a', created: true });
    expect(r.timings.ackMs).toBeGreaterThan(0);
    const sb = sandbox();
    expect(sb.vsctl('list-ports', 'br-int').split('\n')).toContain('vhu-a');
    expect(get(sb, 'Interface', 'vhu-a', 'type')).toBe('dpdkvhostuserclient');
    expect(get(sb, 'Interface', 'vhu-a', 'options:vhost-server-path')).toBe(`${sb.dir}/vhu-a.sock`);
    expect(get(sb, 'Interface', 'vhu-a', 'external_ids:iface-id')).toBe('id-vhu-a');
    expect(get(sb, 'Interface', 'vhu-a', 'external_ids:vhostplug-container-id')).toBe('c0ffee');
    expect(get(sb, 'Interface', 'vhu-a', 'mtu_request')).toBe('1500');
    // Acknowledged: vswitchd applied it and gave it an ofport.
    expect(Number(get(sb, 'Interface', 'vhu-a', 'ofport'))).toBeGreaterThan(0);
    expect(get(sb, 'Open_vSwitch', '.', 'cur_cfg')).toBe(get(sb, 'Open_vSwitch', '.', 'next_cfg'));
    const info = vs.portInfo('vhu-a');
    expect(info?.bridge).toBe('br-int');
    expect(info?.attachment).toMatchObject({ containerId: 'c0ffee', ifname: 'eth0' });
  });

  it('a repeated plug of the same attachment updates in place; another attachment conflicts', async () => {
    const again = await vs.addPort(spec('vhu-a', { 'iface-status': 'active' }), owner);
    expect(again.created).toBe(false);
    expect(
      sandbox()
        .vsctl('list-ports', 'br-int')
        .split('\n')
        .filter((n) => n === 'vhu-a'),
    ).toHaveLength(1);
    await expect(vs.addPort(spec('vhu-a'), { containerId: 'other', ifname: 'eth0' })).rejects.toBeInstanceOf(
      PortConflictError,
    );
  });

  it('refuses a bridge of another datapath and writes nothing', async () => {
    const sb = sandbox();
    sb.vsctl('--no-wait', 'add-br', 'br-sys');
    await client.ready();
    await expect.poll(() => client.cache.lookup('Bridge', 'name', 'br-sys') !== undefined).toBe(true);
    const before = sb.vsctl('list-ports', 'br-sys');
    await expect(vs.addPort({ ...spec('vhu-b'), bridge: 'br-sys' }, owner)).rejects.toBeInstanceOf(
      DatapathMismatchError,
    );
    expect(sb.vsctl('list-ports', 'br-sys')).toBe(before);
    expect(() => sb.vsctl('get', 'Interface', 'vhu-b', 'name')).toThrow();
    sb.vsctl('--no-wait', 'del-br', 'br-sys');
  });

  it('creates a missing bridge with datapath netdev in the same transaction', async () => {
    await vs.addPort({ ...spec('vhu-c'), bridge: 'br-new' }, owner);
    const sb = sandbox();
    expect(get(sb, 'Bridge', 'br-new', 'datapath_type')).toBe('netdev');
    expect(sb.vsctl('list-ports', 'br-new').trim()).toBe('vhu-c');
    await vs.delPort('vhu-c');
    sb.vsctl('del-br', 'br-new');
  });

  it('adds many ports in ONE transaction (one vswitchd reconfigure) and deletes them idempotently', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `vhu-m${i}`);
    const cfgBefore = Number(get(sandbox(), 'Open_vSwitch', '.', 'next_cfg'));
    const res = await vs.addPorts(
      names.map((n) => spec(n)),
      names.map((_, i) => ({ ...owner, ifname: `net${i}` })),
    );
    expect(res.ports.every((r) => r.created)).toBe(true);
    expect(Number(get(sandbox(), 'Open_vSwitch', '.', 'next_cfg'))).toBe(cfgBefore + 1);
    const listed = new Set(sandbox().vsctl('list-ports', 'br-int').split('\n'));
    for (const n of names) expect(listed.has(n)).toBe(true);
    expect(vs.ownedPorts().length).toBeGreaterThanOrEqual(41);
    expect(await vs.delPorts([...names, 'vhu-a', 'does-not-exist'])).toHaveLength(41);
    expect(await vs.delPorts(names)).toEqual([]);
    expect(sandbox().vsctl('list-ports', 'br-int').trim()).toBe('');
  });
});
