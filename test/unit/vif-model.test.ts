/** The model helpers and the names derived from a port id (the single socket-path definition). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_IFNAME, VIF_KINDS, isVHostUser, networkDefaults, newNetwork, type VIF } from '../../src/vif/model';
import {
  NIC_NAME_LEN,
  deviceName,
  hybridBridgeName,
  vethHostName,
  vhostUserConfigFileName,
  vhostUserPortName,
  vhostUserSocketPath,
} from '../../src/vif/names';
import { ValidationError } from '../../src/core/validate';
import * as vifIndex from '../../src/vif';

const PORT = '9c9cc8f5-88a5-4b8e-8c3e-0f1e2d3c4b5a';

describe('names from a port id', () => {
  it('prefix + id cut to 14 characters', () => {
    expect(vhostUserPortName(PORT)).toBe('vhu9c9cc8f5-88');
    expect(vethHostName(PORT)).toBe('tap9c9cc8f5-88');
    expect(hybridBridgeName(PORT)).toBe('qbr9c9cc8f5-88');
    expect(vhostUserPortName(PORT)).toHaveLength(NIC_NAME_LEN);
    expect(vhostUserPortName('b679325f-ca89-4ee0-a8be-6db1409b69ea')).toBe('vhub679325f-ca'); // os-vif's own test value
  });
  it('short ids are not padded; unsafe ids are refused', () => {
    expect(vhostUserPortName('abc')).toBe('vhuabc');
    expect(() => deviceName('vhu', 'a/b')).toThrow(ValidationError);
    expect(() => vhostUserPortName('a b')).toThrow(/vif_name/);
  });
});

describe('the vhost-user socket path: <mount_point>/<vif_name>', () => {
  it('joins once and normalises the directory', () => {
    expect(vhostUserSocketPath('/var/run/vhostuser', 'vhu9c9cc8f5-88')).toBe('/var/run/vhostuser/vhu9c9cc8f5-88');
    expect(vhostUserSocketPath('/var/run/vhostuser/', 'vhu9c9cc8f5-88')).toBe('/var/run/vhostuser/vhu9c9cc8f5-88');
    expect(vhostUserSocketPath('/', 'vhu1')).toBe('/vhu1');
  });
  it('refuses a relative or climbing mount point, a bad name, and a path over 107 bytes', () => {
    expect(() => vhostUserSocketPath('run/vhu', 'vhu1')).toThrow(/\[vhostuser\] mount_point.*absolute/);
    expect(() => vhostUserSocketPath('/run/../etc', 'vhu1')).toThrow(/\.\./);
    expect(() => vhostUserSocketPath('/run', '../x')).toThrow(ValidationError);
    const dir92 = `/${'d'.repeat(91)}`; // 92 + 1 + 14 = 107: fits exactly
    expect(vhostUserSocketPath(dir92, 'vhu9c9cc8f5-88')).toHaveLength(107);
    expect(() => vhostUserSocketPath(`${dir92}d`, 'vhu9c9cc8f5-88')).toThrow(/107/);
  });
  it('config file name is <container-id>-<ifname>, both validated', () => {
    expect(vhostUserConfigFileName('0123abcd', 'eth0')).toBe('0123abcd-eth0');
    expect(() => vhostUserConfigFileName('../x', 'eth0')).toThrow(/container id/);
    expect(() => vhostUserConfigFileName('abc', 'a/b')).toThrow(/ifname/);
  });
});

describe('model helpers', () => {
  it("newNetwork applies os-vif's constructor defaults, an explicit undefined keeps them", () => {
    expect(newNetwork({ id: 'n', mtu: undefined, label: 'x' })).toStrictEqual({
      id: 'n',
      label: 'x',
      ...networkDefaults(),
    });
    expect(newNetwork({ id: 'n', mtu: 9000 }).mtu).toBe(9000);
    // fresh arrays each time: a shared default would leak subnets between networks
    expect(networkDefaults().subnets).not.toBe(networkDefaults().subnets);
  });
  it('kinds, the default ifname and the vhost-user guard', () => {
    expect(VIF_KINDS).toStrictEqual(['VIFVHostUser', 'VIFOpenVSwitch', 'VIFBridge']);
    expect(DEFAULT_IFNAME).toBe('eth0');
    const vhu: VIF = { kind: 'VIFVHostUser', id: PORT, mode: 'server' };
    const ovs: VIF = { kind: 'VIFOpenVSwitch', id: PORT, vif_name: 'tap1', bridge_name: 'br-int' };
    expect(isVHostUser(vhu)).toBe(true);
    expect(isVHostUser(ovs)).toBe(false);
  });
  it('the vif index exports the public surface', () => {
    for (const name of [
      'decodeVIF',
      'encodeVIF',
      'neutronPortToVIF',
      'decodeKuryrPortVifs',
      'vhostUserSocketPath',
      'VIFFormatError',
      'NeutronTranslationError',
    ]) {
      expect(typeof (vifIndex as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});
