/**
 * Stable names of the CNI plugin: a UUIDv5 port id per (container id, ifname), the OVS
 * port names derived from it, a locally administered MAC; error mapping to CNI codes.
 */
import { describe, expect, it } from 'vitest';
import { cniErrorOf, isDerivedPort, stableMac, stablePortId, stablePortName } from '../../src/daemon/cni-plugin';
import { CniError } from '../../src/cni/errors';
import { BindingError } from '../../src/binding/driver';
import { systemError } from '../../src/core/errors';
import { ValidationError } from '../../src/core/validate';
import { ConnectTimeoutError, DisconnectedError, TimeoutError } from '../../src/ovsdb/errors';
import { PortConflictError } from '../../src/vswitch/vswitch';
import { normalizeMac } from '../../src/cni/env';

describe('stable names', () => {
  it('port ids are RFC 4122 version-5 UUIDs, deterministic and distinct per attachment', () => {
    const id = stablePortId('c0ffee', 'net1');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stablePortId('c0ffee', 'net1')).toBe(id);
    expect(stablePortId('c0ffee', 'net2')).not.toBe(id);
    expect(stablePortId('c0ffe', 'enet1')).not.toBe(id);
  });

  it('port names follow os-vif (vhu/tap + 11 characters of the id) and are recognised as ours', () => {
    const id = stablePortId('pod-1', 'eth0');
    expect(stablePortName('pod-1', 'eth0', 'vhostuser')).toBe(`vhu${id.slice(0, 11)}`);
    expect(stablePortName('pod-1', 'eth0', 'veth')).toBe(`tap${id.slice(0, 11)}`);
    expect(isDerivedPort(stablePortName('pod-1', 'eth0', 'veth'), 'pod-1', 'eth0')).toBe(true);
    expect(isDerivedPort('vhu12345678-9a', 'pod-1', 'eth0')).toBe(false);
  });

  it('no collisions among 20000 attachments', () => {
    const names = new Set<string>();
    for (let i = 0; i < 10000; i++)
      for (const ifn of ['eth0', 'net1']) names.add(stablePortName(`container${i}`, ifn, 'vhostuser'));
    expect(names.size).toBe(20000);
  });

  it('MACs are unicast, locally administered and stable', () => {
    for (let i = 0; i < 200; i++) {
      const mac = stableMac(`c${i}`, 'net1');
      expect(normalizeMac(mac)).toBe(mac);
      expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
    }
    expect(stableMac('a', 'b')).toBe(stableMac('a', 'b'));
  });
});

describe('cniErrorOf', () => {
  it('maps driver and OVSDB errors to CNI codes', () => {
    expect(cniErrorOf(new CniError(4, 'x')).cniCode).toBe(4);
    expect(
      cniErrorOf(new BindingError('vhostuser', 'validate', new ValidationError('mac', 'x', 'charset', 'bad'))).cniCode,
    ).toBe(7);
    expect(cniErrorOf(new BindingError('vhostuser', 'plug', new DisconnectedError())).cniCode).toBe(11);
    expect(cniErrorOf(new BindingError('veth', 'cleanup', new PortConflictError('vhu1', undefined))).cniCode).toBe(102);
    expect(
      cniErrorOf(new BindingError('vhostuser', 'socket', systemError('ETIMEDOUT', 'inotify', { path: '/x' }))).cniCode,
    ).toBe(5);
    expect(cniErrorOf(new BindingError('vhostuser', 'socket', new Error('odd'))).cniCode).toBe(5);
    // Type decides, never text: a TimeoutError saying "connect" is not "unreachable", a ConnectTimeoutError is.
    expect(cniErrorOf(new TimeoutError('connect to the peer took long')).cniCode).toBe(5);
    expect(cniErrorOf(new ConnectTimeoutError('no answer')).cniCode).toBe(11);
    expect(cniErrorOf(new Error('bug')).cniCode).toBe(100);
  });

  it('a failed step is the msg and its cause the details, each said once (the shim prints "msg: details")', () => {
    const cause = systemError('ENOSPC', 'write');
    const e = cniErrorOf(new BindingError('vhostuser', 'index', cause));
    expect(e.cniCode).toBe(5);
    expect(e.toJSON('1.1.0')).toMatchObject({ code: 5, msg: 'vhost-user index failed', details: cause.message });
    expect(e.message.split('ENOSPC').length - 1).toBe(1);
  });
});
