/**
 * The TS framing scanner (src/ovsdb/framing.ts) against the shared framing suite:
 * a recorded ovsdb-server stream split at every byte, a >1 MiB monitor reply, caps and
 * garbage. The same suite runs against the native scanner in native-framer.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { JsonFramer } from '../../src/ovsdb/framing';
import { FramingError } from '../../src/ovsdb/transport';
import { framingSuite } from '../fixtures/ovsdb-stream/framing-cases';

framingSuite('TS JsonFramer', (limits) => {
  const f = new JsonFramer(limits);
  return { feed: (c) => f.feed(Buffer.from(c.buffer, c.byteOffset, c.byteLength)), pending: () => f.pending() };
});

describe('TS JsonFramer specifics', () => {
  it('throws FramingError instances', () => {
    expect(() => new JsonFramer().feed(Buffer.from(']'))).toThrow(FramingError);
  });

  it('rejects nonsensical limits', () => {
    expect(() => new JsonFramer({ maxDepth: 0 })).toThrow(RangeError);
    expect(() => new JsonFramer({ maxMessageBytes: 1 })).toThrow(RangeError);
    expect(() => new JsonFramer({ maxMessageBytes: 2 ** 29 })).toThrow(RangeError);
    expect(() => new JsonFramer({ maxDepth: 2.5 })).toThrow(RangeError);
  });

  it('does not keep references into the caller buffer for partial messages', () => {
    const f = new JsonFramer();
    const chunk = Buffer.from('{"a":"bc');
    f.feed(chunk);
    chunk.fill(0x20);
    expect(f.feed(Buffer.from('"}'))).toEqual(['{"a":"bc"}']);
  });
});
