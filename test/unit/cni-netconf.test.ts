import { describe, expect, it } from 'vitest';
import { CniError, CniErrorCode } from '../../src/cni/errors';
import { delegateConfig, MAX_NETCONF_BYTES, parseNetConf, peekCniVersion } from '../../src/cni/netconf';

const BASE = {
  cniVersion: '1.1.0',
  name: 'dpdk-net',
  type: 'vhostplug',
  mode: 'client',
  bridge: 'br-int',
  mtu: 1500,
  ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.0.0/24' }]] },
};

function withConf(over: Record<string, unknown>): string {
  return JSON.stringify({ ...BASE, ...over });
}

function errOf(input: string | Uint8Array): CniError {
  try {
    parseNetConf(input);
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error(`expected a CniError for ${String(input).slice(0, 80)}`);
}

describe('parseNetConf', () => {
  it('reads a warm pool request: size and optional low-water mark', () => {
    expect(parseNetConf(withConf({ pool: { size: 4, lowWater: 1 } })).pool).toEqual({ size: 4, lowWater: 1 });
    expect(parseNetConf(withConf({ pool: { size: 0 } })).pool).toEqual({ size: 0 });
    expect(parseNetConf(withConf({})).pool).toBeUndefined();
  });

  it('decodes the standalone netconf', () => {
    const c = parseNetConf(JSON.stringify(BASE));
    expect(c.cniVersion).toBe('1.1.0');
    expect(c.name).toBe('dpdk-net');
    expect(c.mode).toBe('client');
    expect(c.bridge).toBe('br-int');
    expect(c.mtu).toBe(1500);
    expect(c.ipam?.type).toBe('host-local');
    expect(c.disableCheck).toBe(false);
    expect(c.disableGC).toBe(false);
  });

  it('applies defaults: mode server (OVS dpdkvhostuserclient), bridge br-int, no mtu, no ipam', () => {
    const c = parseNetConf('{"cniVersion":"0.4.0","name":"n","type":"vhostplug"}');
    expect(c.mode).toBe('server');
    expect(c.bridge).toBe('br-int');
    expect(c.mtu).toBeUndefined();
    expect(c.ipam).toBeUndefined();
    // An empty ipam object means no IPAM.
    expect(parseNetConf(withConf({ ipam: {} })).ipam).toBeUndefined();
    // vhost-user on the primary interface: warned about unless refused.
    expect(c.vhostUserPrimary).toBe('warn');
    expect(parseNetConf(withConf({ vhostUserPrimary: 'refuse' })).vhostUserPrimary).toBe('refuse');
  });

  it('accepts bytes as well as text', () => {
    expect(parseNetConf(Buffer.from(JSON.stringify(BASE))).name).toBe('dpdk-net');
  });

  it('passes unknown keys through untouched', () => {
    const c = parseNetConf(
      withConf({ vendorKnob: { deep: [1, 2] }, 'cni.dev/attachment-x': 'y', args: { cni: { foo: 1 } } }),
    );
    expect(c.raw.vendorKnob).toEqual({ deep: [1, 2] });
    expect(c.raw['cni.dev/attachment-x']).toBe('y');
    expect(c.raw.args).toEqual({ cni: { foo: 1 } });
  });

  it('reads daemonSocket, kuryrConf, capabilities, runtimeConfig, disable flags', () => {
    const c = parseNetConf(
      withConf({
        daemonSocket: '/run/vhostplug/daemon.sock',
        kuryrConf: '/etc/kuryr/kuryr.conf',
        capabilities: { CNIDeviceInfoFile: true, mac: true },
        runtimeConfig: {
          CNIDeviceInfoFile: '/var/run/k8s.cni.cncf.io/devinfo/cni/x-net1',
          mac: '0A:00:00:00:00:01',
          ips: ['10.1.0.9/24'],
          other: 1,
        },
        disableCheck: true,
        disableGC: true,
      }),
    );
    expect(c.daemonSocket).toBe('/run/vhostplug/daemon.sock');
    expect(c.kuryrConf).toBe('/etc/kuryr/kuryr.conf');
    expect(c.capabilities).toEqual({ CNIDeviceInfoFile: true, mac: true });
    expect(c.runtimeConfig.CNIDeviceInfoFile).toBe('/var/run/k8s.cni.cncf.io/devinfo/cni/x-net1');
    expect(c.runtimeConfig.mac).toBe('0a:00:00:00:00:01');
    expect(c.runtimeConfig.ips).toEqual(['10.1.0.9/24']);
    expect(c.runtimeConfig.raw.other).toBe(1);
    expect(c.disableCheck).toBe(true);
    expect(c.disableGC).toBe(true);
  });

  it('decodes prevResult of an older version and cni.dev/valid-attachments', () => {
    const c = parseNetConf(
      withConf({
        prevResult: {
          cniVersion: '0.4.0',
          ips: [{ version: '4', address: '10.1.0.2/24', gateway: '10.1.0.1' }],
          dns: {},
        },
        'cni.dev/valid-attachments': [{ containerID: 'abc', ifname: 'net1' }],
      }),
    );
    expect(c.prevResult?.ips).toEqual([{ address: '10.1.0.2/24', gateway: '10.1.0.1' }]);
    expect(c.validAttachments).toEqual([{ containerID: 'abc', ifname: 'net1' }]);
  });

  it('negotiates from cniVersions when cniVersion is absent', () => {
    const doc: Record<string, unknown> = { ...BASE, cniVersions: ['0.4.0', '1.0.0'] };
    delete doc.cniVersion;
    expect(parseNetConf(JSON.stringify(doc)).cniVersion).toBe('1.0.0');
  });

  describe('bad input', () => {
    it('malformed JSON -> 6', () => {
      for (const bad of ['', '{', '{"cniVersion":"1.1.0",}', 'not json', '{"a":1}{"b":2}', '\u0000']) {
        const e = errOf(bad);
        expect(e.cniCode).toBe(CniErrorCode.DecodeFailure);
      }
    });

    it('JSON that is not an object -> 6', () => {
      for (const bad of ['[]', '"x"', '42', 'null']) expect(errOf(bad).cniCode).toBe(6);
    });

    it('oversize input -> 6 with a clear message, before parsing', () => {
      const big = JSON.stringify({ ...BASE, pad: 'x'.repeat(MAX_NETCONF_BYTES) });
      const e = errOf(big);
      expect(e.cniCode).toBe(CniErrorCode.DecodeFailure);
      expect(e.msg).toBe('network configuration too large');
      expect(e.details).toContain(String(MAX_NETCONF_BYTES));
    });

    it('unknown or missing cniVersion -> 1', () => {
      expect(errOf(withConf({ cniVersion: '2.0.0' })).cniCode).toBe(CniErrorCode.IncompatibleVersion);
      expect(errOf(withConf({ cniVersion: '0.2.0' })).cniCode).toBe(1);
      expect(errOf(withConf({ cniVersion: undefined })).cniCode).toBe(1);
    });

    const wrongTypes: Record<string, unknown>[] = [
      { cniVersion: 110 },
      { name: 7 },
      { name: '' },
      { name: '../evil' },
      { type: 'bridge' },
      { type: ['vhostplug'] },
      { mode: 'hybrid' },
      { mode: 'SERVER' },
      { mode: 1 },
      { bridge: 'br int' },
      { bridge: '../br' },
      { bridge: 'x'.repeat(16) },
      { mtu: '1500' },
      { pool: 4 },
      { pool: [] },
      { pool: { size: -1 } },
      { pool: { size: 513 } },
      { pool: { size: 2, lowWater: 'x' } },
      { mtu: 15.5 },
      { mtu: 67 },
      { mtu: 65536 },
      { ipam: 'host-local' },
      { ipam: { type: '../../bin/sh' } },
      { ipam: { type: 5 } },
      { ipam: { subnet: '10.0.0.0/24' } },
      { daemonSocket: 'relative.sock' },
      { daemonSocket: `/run/${'x'.repeat(120)}.sock` },
      { daemonSocket: 5 },
      { kuryrConf: '/etc/../etc/kuryr.conf' },
      { capabilities: { mac: 'yes' } },
      { capabilities: [] },
      { runtimeConfig: 'x' },
      { runtimeConfig: { CNIDeviceInfoFile: 'relative/file' } },
      { runtimeConfig: { CNIDeviceInfoFile: 42 } },
      { runtimeConfig: { mac: 'ff:ff:ff:ff:ff:ff' } },
      { runtimeConfig: { mac: 'not-a-mac' } },
      { runtimeConfig: { ips: '10.0.0.1/24' } },
      { prevResult: 'x' },
      { prevResult: { ips: [{ address: '10.0.0.300/24' }] } },
      { prevResult: { ips: [{ address: '10.0.0.3' }] } },
      { prevResult: { interfaces: [{ mac: 'x' }] } },
      { 'cni.dev/valid-attachments': {} },
      { 'cni.dev/valid-attachments': [{ containerID: 'a' }] },
      { 'cni.dev/valid-attachments': [{ containerID: '../a', ifname: 'eth0' }] },
      { disableCheck: 'true' },
      { disableGC: 1 },
      { args: [] },
      { cniVersions: '1.1.0' },
      { vhostUserPrimary: 'allow' },
      { vhostUserPrimary: true },
    ];
    for (const over of wrongTypes) {
      it(`${JSON.stringify(over).slice(0, 70)} -> 7`, () => {
        const e = errOf(withConf(over));
        expect(e.cniCode).toBe(CniErrorCode.InvalidConfig);
        expect(e.details).toBeTruthy();
      });
    }
  });
});

describe('peekCniVersion / delegateConfig', () => {
  it('peeks the version of text, bytes or objects, undefined when unreadable', () => {
    expect(peekCniVersion('{"cniVersion":"0.3.1"}')).toBe('0.3.1');
    expect(peekCniVersion(Buffer.from('{"cniVersion":"1.0.0"}'))).toBe('1.0.0');
    expect(peekCniVersion('{oops')).toBeUndefined();
    expect(peekCniVersion('{"cniVersion":1}')).toBeUndefined();
  });

  it('builds the delegate config with the chosen version and no cniVersions', () => {
    const raw = { ...BASE, cniVersions: ['1.1.0'], prevResult: { x: 1 }, extra: true };
    const d = delegateConfig(raw, '1.0.0');
    expect(d.cniVersion).toBe('1.0.0');
    expect(d).not.toHaveProperty('cniVersions');
    expect(d).not.toHaveProperty('prevResult');
    expect(d.extra).toBe(true);
    expect(delegateConfig(raw, '1.0.0', { cniVersion: '1.0.0' }).prevResult).toEqual({ cniVersion: '1.0.0' });
    // The original is not modified.
    expect(raw.cniVersion).toBe('1.1.0');
  });
});
