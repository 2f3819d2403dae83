/** src/binding/driver.ts: the one error type, the undo stack and the lookup by kind (no I/O). */
import { describe, expect, it } from 'vitest';
import {
  BindingError,
  DriverRegistry,
  NoDriverError,
  Rollback,
  bindingError,
  disconnectContainer,
  type BindingDriver,
  type UnbindRequest,
} from '../../src/binding/driver';
import { systemError } from '../../src/core/errors';
import type { Logger } from '../../src/core/log';

function fakeDriver(
  kind: 'vhostuser' | 'veth',
  vifKinds: BindingDriver['vifKinds'],
  attached: { containerId: string; ifname: string }[] = [],
) {
  const calls: UnbindRequest[] = [];
  const d: BindingDriver = {
    kind,
    vifKinds,
    podSocket: kind === 'vhostuser',
    connect: () => Promise.reject(new Error('not used')),
    disconnect: async (req) => {
      calls.push(req);
      return { removed: {} };
    },
    check: async () => [],
    health: () => ({ ok: true, problems: [] }),
    attachments: () => attached,
    close: () => {},
  };
  return { d, calls };
}

describe('BindingError', () => {
  it("carries the driver, the step and the cause, with the cause's code (or EBINDING)", () => {
    const e = new BindingError('vhostuser', 'rename', systemError('EXDEV', 'rename', { path: '/a', dest: '/b' }));
    expect(e).toMatchObject({ name: 'BindingError', code: 'EXDEV', driver: 'vhostuser', step: 'rename' });
    expect(e.message).toMatch(/^vhost-user rename failed: EXDEV: /);
    expect((e.cause as Error & { dest: string }).dest).toBe('/b');
    expect(new BindingError('veth', 'address', new Error('odd')).code).toBe('EBINDING');
    expect(bindingError('veth', 'plug', e)).toBe(e); // an inner step's error is not wrapped twice
  });
});

describe('Rollback', () => {
  it('undoes newest first; a failing undo is logged and the rest still runs', async () => {
    const logged: Record<string, unknown>[] = [];
    const log: Logger = { debug() {}, info() {}, warn() {}, error: (_m, f) => void logged.push(f ?? {}) };
    const order: string[] = [];
    const rb = new Rollback(log, { pod: 'p' });
    rb.add('port', () => void order.push('port'));
    rb.add('socket', () => {
      order.push('socket');
      throw new Error('busy');
    });
    rb.add('file', async () => void order.push('file'));
    expect(rb.size).toBe(3);
    const errors = await rb.run();
    expect(order).toEqual(['file', 'socket', 'port']);
    expect(errors.map((e) => e.message)).toEqual(['busy']);
    expect(logged).toEqual([expect.objectContaining({ pod: 'p', step: 'socket' })]);
    expect(rb.size).toBe(0);
    expect(await rb.run()).toEqual([]); // nothing runs twice
  });
});

describe('DriverRegistry', () => {
  it('finds a driver by kind and by VIF class; a class without one is NoDriverError naming what there is', () => {
    const vhu = fakeDriver('vhostuser', ['VIFVHostUser']).d;
    const veth = fakeDriver('veth', ['VIFOpenVSwitch', 'VIFBridge']).d;
    const reg = new DriverRegistry([vhu, veth]);
    expect(reg.forVif('VIFBridge')).toBe(veth);
    expect(reg.get('vhostuser')).toBe(vhu);
    expect(reg.all()).toEqual([vhu, veth]);
    const only = new DriverRegistry([vhu]);
    expect(only.find('VIFOpenVSwitch')).toBeUndefined();
    expect(() => only.forVif('VIFOpenVSwitch')).toThrow(NoDriverError);
    expect(() => only.forVif('VIFOpenVSwitch')).toThrow(
      /no binding driver for VIFOpenVSwitch; this node has drivers for VIFVHostUser/,
    );
    // A later driver of the same kind replaces the earlier one.
    const other = fakeDriver('veth', ['VIFOpenVSwitch']).d;
    expect(new DriverRegistry([vhu, veth, other]).forVif('VIFOpenVSwitch')).toBe(other);
  });

  it('disconnectContainer removes CNI_IFNAME and every other attachment the driver knows of that container', async () => {
    const { d, calls } = fakeDriver(
      'veth',
      ['VIFOpenVSwitch'],
      [
        { containerId: 'c1', ifname: 'net1' },
        { containerId: 'c2', ifname: 'eth0' },
      ],
    );
    await disconnectContainer(d, 'c1', 'eth0', '/run/netns/x');
    expect(calls).toEqual([
      { containerId: 'c1', ifname: 'eth0', netns: '/run/netns/x' },
      { containerId: 'c1', ifname: 'net1', netns: '/run/netns/x' },
    ]);
  });
});
