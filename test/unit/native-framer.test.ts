/**
 * The native framing scanner (native/json_scanner.cc through native().jsonFramer) against
 * the same suite as the TS one: recorded ovsdb-server stream split at every byte, a >1 MiB
 * monitor reply, caps and garbage, with identical messages, codes and error texts.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native';
import { JsonFramer } from '../../src/ovsdb/framing';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_BYTES } from '../../src/ovsdb/transport';
import {
  bigMonitorReply,
  feedAll,
  framingSuite,
  recordedSession,
  splitAt,
} from '../fixtures/ovsdb-stream/framing-cases';

const makeNative = (limits: { maxMessageBytes?: number; maxDepth?: number } = {}) =>
  native().jsonFramer({
    maxMessageBytes: limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    maxDepth: limits.maxDepth ?? DEFAULT_MAX_DEPTH,
  });

framingSuite('native jsonFramer', makeNative);

describe('native and TS scanners agree', () => {
  it('on the recorded stream split at every byte', () => {
    const session = recordedSession();
    for (let cut = 0; cut <= session.length; cut += 7) {
      const a = feedAll(makeNative(), splitAt(session, [cut]));
      const b = feedAll(new JsonFramer(), splitAt(session, [cut]));
      if (a.length !== b.length || a.some((m, k) => m !== b[k])) expect.fail(`scanners differ at split ${cut}`);
    }
  });

  it('on error texts', () => {
    for (const bad of ['x', '{"a":[}', '[[[[', `{"a":"${'b'.repeat(100)}"}`]) {
      const errOf = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          return `${(e as { code: string }).code} ${(e as Error).message}`;
        }
        return 'no error';
      };
      const limits = { maxDepth: 3, maxMessageBytes: 64 };
      expect(errOf(() => makeNative(limits).feed(Buffer.from(bad)))).toBe(
        errOf(() => new JsonFramer(limits).feed(Buffer.from(bad))),
      );
    }
  });

  it('on a big monitor reply', () => {
    const bytes = Buffer.from(bigMonitorReply(), 'utf8');
    expect(feedAll(makeNative(), splitAt(bytes, [1, 65536, 999999]))).toEqual(feedAll(new JsonFramer(), [bytes]));
  });
});

describe('native jsonFramer arguments', () => {
  it('accepts only Uint8Array chunks', () => {
    const f = makeNative();
    expect(() => f.feed('{}' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => f.feed(new Uint16Array(2) as unknown as Uint8Array)).toThrow(TypeError);
    expect(f.feed(new Uint8Array([0x7b, 0x7d]))).toEqual(['{}']);
  });

  it('rejects nonsensical limits', () => {
    expect(() => native().jsonFramer({ maxMessageBytes: 1, maxDepth: 10 })).toThrow(RangeError);
    expect(() => native().jsonFramer({ maxMessageBytes: 100, maxDepth: 0 })).toThrow(RangeError);
    expect(() => native().jsonFramer({ maxMessageBytes: 1.5, maxDepth: 10 })).toThrow(RangeError);
    expect(() => native().jsonFramer({ maxMessageBytes: 2 ** 29, maxDepth: 10 })).toThrow(RangeError);
    expect(() => native().jsonFramer({ maxMessageBytes: 100, maxDepth: 2 ** 20 + 1 })).toThrow(RangeError);
    expect(
      native()
        .jsonFramer({ maxMessageBytes: 2 ** 29 - 24, maxDepth: 2 ** 20 })
        .pending(),
    ).toBe(0);
    expect(() => native().jsonFramer(null as unknown as { maxMessageBytes: number; maxDepth: number })).toThrow(
      TypeError,
    );
  });
});
