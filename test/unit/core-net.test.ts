/**
 * src/core/net.ts: the one reading of IP addresses, networks, MACs and interface names
 * that netlink, the VIF codec, the CNI result and the validators share. (The address
 * cases against netaddr and glibc are in vif-ovo.test.ts; the wire forms in netlink.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import {
  canonicalCidr,
  canonicalIp,
  canonicalMac,
  formatIp,
  ifnameProblem,
  inNetwork,
  networkOf,
  formatCidr,
  parseCidr,
  parseIp,
  parseMac,
} from '../../src/core/net';

describe('IP addresses and networks', () => {
  it('parses both families as inet_pton does and prints as inet_ntop does', () => {
    expect(parseIp('10.0.0.1')).toEqual({ family: 4, bytes: Buffer.from([10, 0, 0, 1]) });
    expect(parseIp('::ffff:1.2.3.4')?.bytes.toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(formatIp(parseIp('FD00:0:0:0::1')!.bytes)).toBe('fd00::1');
    for (const bad of ['010.0.0.1', '1.2.3', 'fe80::1%eth0', '1::2::3', '', ' 1.2.3.4', 42, undefined])
      expect(parseIp(bad), String(bad)).toBeUndefined();
    expect(canonicalIp('2001:DB8::1')).toBe('2001:db8::1');
  });

  it('requires a prefix unless told to default it, and keeps host bits', () => {
    expect(parseCidr('10.0.0.5/24')).toMatchObject({ family: 4, prefix: 24 });
    expect(parseCidr('10.0.0.5')).toBeUndefined();
    expect(canonicalCidr('10.0.0.5', { defaultPrefix: true })).toBe('10.0.0.5/32');
    expect(canonicalCidr('2001:db8::1/64')).toBe('2001:db8::1/64');
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/024', '10.0.0.0/', 'x/8'])
      expect(parseCidr(bad), bad).toBeUndefined();
  });

  it('networkOf clears host bits; inNetwork compares the prefix bits of one family', () => {
    expect(formatCidr(networkOf(parseCidr('10.1.2.3/12')!))).toBe('10.0.0.0/12');
    expect(formatCidr(networkOf(parseCidr('2001:db8:ffff::1/33')!))).toBe('2001:db8:8000::/33');
    expect(inNetwork(parseIp('10.0.0.130')!, parseCidr('10.0.0.128/25')!)).toBe(true);
    expect(inNetwork(parseIp('10.0.0.127')!, parseCidr('10.0.0.128/25')!)).toBe(false);
    expect(inNetwork(parseIp('fd00::1')!, parseCidr('0.0.0.0/0')!)).toBe(false);
  });
});

describe('MAC addresses and interface names', () => {
  it('reads a MAC with ":" or "-" in any case, prints lower case with colons', () => {
    expect(canonicalMac('FA-16-3E-01-02-03')).toBe('fa:16:3e:01:02:03');
    expect(parseMac('02:00:00:00:00:01')).toEqual(Buffer.from([2, 0, 0, 0, 0, 1]));
    for (const bad of ['02:00:00:00:00', '02:00:00:00:00:0g', '0200.0000.0001', 7])
      expect(parseMac(bad), String(bad)).toBeUndefined();
  });

  it("names follow the kernel's dev_valid_name(), control characters refused", () => {
    expect(ifnameProblem('eth0')).toBeUndefined();
    expect(ifnameProblem('x'.repeat(15))).toBeUndefined();
    expect(ifnameProblem('x'.repeat(16))?.rule).toBe('too-long');
    expect(ifnameProblem('')?.rule).toBe('empty');
    expect(ifnameProblem('..')?.rule).toBe('reserved');
    for (const bad of ['a/b', 'a:b', 'a b', 'a\tb', 'a\u0001', 'a\u00a0'])
      expect(ifnameProblem(bad)?.rule, JSON.stringify(bad)).toBe('charset');
    expect(ifnameProblem(3)?.rule).toBe('type');
  });
});
