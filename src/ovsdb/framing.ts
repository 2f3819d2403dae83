/**
 * Incremental JSON-RPC framing over raw bytes, the TS twin of native/json_scanner.cc.
 *
 * OVSDB speaks JSON-RPC 1.0 directly on a stream with no length prefix: a message ends
 * where its top-level object closes. The scanner cuts the byte stream into complete
 * top-level JSON texts without parsing them (JSON.parse stays with the client).
 *
 * Invariants (tested in test/unit/framing.test.ts, shared with the native scanner):
 * - Works on bytes: the structural bytes `{ } [ ] " \` are ASCII and UTF-8 continuation
 *   bytes are >= 0x80, so a multibyte character split across reads is never misread.
 * - Every byte is scanned once (O(n) over the stream); the bytes of an incomplete
 *   message are kept as chunks and joined once, when the message completes.
 * - Whitespace between messages is skipped; anything at top level other than `{` or `[`
 *   is EOVSDBFRAME, as is a closing bracket that does not match its opener.
 * - A message longer than maxMessageBytes fails with EOVSDBTOOBIG, nesting deeper than
 *   maxDepth with EOVSDBTOODEEP, as soon as the scan reaches the offending byte.
 * - After an error the framer is dead: every later feed throws the same error.
 */
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_BYTES, FramingError } from './transport';

/** Largest accepted maxMessageBytes: V8's longest string on 64-bit (2^29 - 24). */
export const MAX_MESSAGE_LIMIT = 2 ** 29 - 24;
/** Largest accepted maxDepth (the scanners keep one byte per level). */
export const MAX_DEPTH_LIMIT = 2 ** 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** JSON insignificant whitespace (RFC 8259 section 2): space, tab, LF, CR. */
function isJsonWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Index of byte b in chunk at or after from, or chunk.length. */
function indexOrEnd(chunk: Buffer, b: number, from: number): number {
  const at = chunk.indexOf(b, from);
  return at < 0 ? chunk.length : at;
}

/** Printable description of a byte for error messages. */
export function describeByte(b: number): string {
  const hex = `0x${b.toString(16).padStart(2, '0')}`;
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}' (${hex})` : hex;
}

export interface FramerLimits {
  maxMessageBytes?: number;
  maxDepth?: number;
}

/** Cuts a byte stream into complete top-level JSON texts; see the module comment. */
export class JsonFramer {
  private readonly maxMessageBytes: number;
  private readonly maxDepth: number;
  /** Opening byte of each open level: the stack that lets `]` be checked against `[`. */
  private readonly openers: Uint8Array;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Chunks holding the start of the incomplete message (already scanned). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Stream bytes consumed before the current chunk (for error positions). */
  private streamOffset = 0;
  private failure: FramingError | undefined;
  /** Cached positions of the next quote / backslash in the current chunk (-1: unknown). */
  private nextQuote = -1;
  private nextBackslash = -1;

  constructor(limits: FramerLimits = {}) {
    this.maxMessageBytes = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
    // A message must fit in one JS string; the native scanner applies the same bounds.
    if (
      !Number.isInteger(this.maxMessageBytes) ||
      this.maxMessageBytes < 2 ||
      this.maxMessageBytes > MAX_MESSAGE_LIMIT
    ) {
      throw new RangeError(`maxMessageBytes must be an integer from 2 to ${MAX_MESSAGE_LIMIT}`);
    }
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1 || this.maxDepth > MAX_DEPTH_LIMIT) {
      throw new RangeError(`maxDepth must be an integer from 1 to ${MAX_DEPTH_LIMIT}`);
    }
    this.openers = new Uint8Array(this.maxDepth + 1);
  }

  /** Bytes held for an incomplete message. */
  pending(): number {
    return this.heldBytes;
  }

  /**
   * Feeds bytes; appends the message texts they complete to `out` and returns it. Throws
   * FramingError; messages completed before the bad byte are already in `out` then, so a
   * transport can deliver them before it reports the error.
   */
  feed(chunk: Buffer, out: string[] = []): string[] {
    if (this.failure) throw this.failure;
    const len = chunk.length;
    this.nextQuote = -1;
    this.nextBackslash = -1;
    let i = 0;
    // Start of the current message inside this chunk (0 when it began in an earlier chunk).
    let start = 0;
    while (i < len) {
      if (this.depth === 0) {
        const b = chunk[i]!;
        if (isJsonWhitespace(b)) {
          i++;
          continue;
        }
        if (b !== OPEN_BRACE && b !== OPEN_BRACKET) {
          this.fail(
            'EOVSDBFRAME',
            `OVSDB framing error: unexpected byte ${describeByte(b)} at top level at stream offset ${this.streamOffset + i}` +
              ' (a JSON-RPC message must start with "{")',
          );
        }
        this.openers[1] = b;
        this.depth = 1;
        start = i;
        i++;
        continue;
      }
      // Inside a message: scan no further than the size cap allows.
      const budgetEnd = start + (this.maxMessageBytes - this.heldBytes);
      const stop = budgetEnd < len ? budgetEnd : len;
      i = this.scanInside(chunk, i, stop);
      if (this.depth === 0) {
        out.push(this.takeMessage(chunk, start, i));
        continue;
      }
      // Only a byte that actually arrived past the cap fails the message.
      if (budgetEnd < len) {
        this.fail(
          'EOVSDBTOOBIG',
          `OVSDB message exceeds maxMessageBytes (${this.maxMessageBytes} bytes) at stream offset ${this.streamOffset + i}`,
        );
      }
    }
    if (this.depth > 0) {
      const tail = start === 0 ? chunk : chunk.subarray(start);
      // Copy: the caller may reuse its buffer (node:net does not, but be safe and cheap).
      this.held.push(Buffer.from(tail));
      this.heldBytes += tail.length;
    }
    this.streamOffset += len;
    return out;
  }

  /**
   * Scans chunk[i, stop) inside a message; returns the index after the byte that closed
   * the top-level value, or stop.
   */
  private scanInside(chunk: Buffer, i: number, stop: number): number {
    while (i < stop) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Fast path: jump to whichever of the next quote or backslash comes first. The
        // positions are cached per chunk so each byte is searched once (O(n)).
        if (this.nextQuote < i) this.nextQuote = indexOrEnd(chunk, QUOTE, i);
        if (this.nextBackslash < i) this.nextBackslash = indexOrEnd(chunk, BACKSLASH, i);
        const q = this.nextQuote;
        const bs = this.nextBackslash;
        if (bs < q && bs < stop) {
          this.escaped = true;
          i = bs + 1;
          continue;
        }
        if (q >= stop) return stop;
        this.inString = false;
        i = q + 1;
        continue;
      }
      const b = chunk[i]!;
      if (b === QUOTE) {
        this.inString = true;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (this.depth >= this.maxDepth) {
          this.fail(
            'EOVSDBTOODEEP',
            `OVSDB message nesting exceeds maxDepth (${this.maxDepth}) at stream offset ${this.streamOffset + i}`,
          );
        }
        this.openers[++this.depth] = b;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        const opener = this.openers[this.depth];
        if ((b === CLOSE_BRACE) !== (opener === OPEN_BRACE)) {
          this.fail(
            'EOVSDBFRAME',
            `OVSDB framing error: ${describeByte(b)} closes ${describeByte(opener!)} at stream offset ${this.streamOffset + i}`,
          );
        }
        if (--this.depth === 0) return i + 1;
      }
      i++;
    }
    return stop;
  }

  private takeMessage(chunk: Buffer, start: number, end: number): string {
    if (this.heldBytes === 0) return chunk.toString('utf8', start, end);
    this.held.push(chunk.subarray(0, end));
    const text = Buffer.concat(this.held, this.heldBytes + end).toString('utf8');
    this.held = [];
    this.heldBytes = 0;
    return text;
  }

  private fail(code: FramingError['code'], message: string): never {
    this.failure = new FramingError(code, message);
    this.held = [];
    this.heldBytes = 0;
    throw this.failure;
  }
}
