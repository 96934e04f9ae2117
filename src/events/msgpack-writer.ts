/**
 * A minimal MessagePack writer that encodes the way Python's msgspec does, so batches built here
 * are byte-for-byte what vLLM sends: integers in their smallest form (unsigned forms for
 * non-negative values, `uint64` above 2^63), floats always as `float64`, strings as UTF-8 `str`.
 * (general msgpack encoders write bigints and integral floats differently: e.g. signed `int64`, or integral floats as
 * integers, which vLLM never does.)
 */

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

/** Appends MessagePack values to a growing buffer. */
export class MsgpackWriter {
  #buf: Buffer;
  #pos = 0;

  constructor(initialBytes = 256) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  /** The bytes written so far (a copy that owns its memory). */
  finish(): Uint8Array {
    return Buffer.from(this.#buf.subarray(0, this.#pos));
  }

  nil(): this {
    this.#ensure(1);
    this.#buf[this.#pos++] = 0xc0;
    return this;
  }

  /** An integer (number or bigint) in its smallest MessagePack form. */
  int(v: number | bigint): this {
    if (typeof v === 'bigint') return this.#bigint(v);
    if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
    if (v >= 0) {
      if (v < 0x80) {
        this.#ensure(1);
        this.#buf[this.#pos++] = v;
      } else if (v < 0x100) {
        this.#ensure(2);
        this.#buf[this.#pos++] = 0xcc;
        this.#buf[this.#pos++] = v;
      } else if (v < 0x10000) {
        this.#ensure(3);
        this.#buf[this.#pos++] = 0xcd;
        this.#buf.writeUInt16BE(v, this.#pos);
        this.#pos += 2;
      } else if (v < 0x100000000) {
        this.#ensure(5);
        this.#buf[this.#pos++] = 0xce;
        this.#buf.writeUInt32BE(v, this.#pos);
        this.#pos += 4;
      } else return this.#bigint(BigInt(v));
      return this;
    }
    if (v >= -32) {
      this.#ensure(1);
      this.#buf[this.#pos++] = v & 0xff;
    } else if (v >= -0x80) {
      this.#ensure(2);
      this.#buf[this.#pos++] = 0xd0;
      this.#buf.writeInt8(v, this.#pos++);
    } else if (v >= -0x8000) {
      this.#ensure(3);
      this.#buf[this.#pos++] = 0xd1;
      this.#buf.writeInt16BE(v, this.#pos);
      this.#pos += 2;
    } else if (v >= -0x80000000) {
      this.#ensure(5);
      this.#buf[this.#pos++] = 0xd2;
      this.#buf.writeInt32BE(v, this.#pos);
      this.#pos += 4;
    } else return this.#bigint(BigInt(v));
    return this;
  }

  /** A float, always as `float64` (like msgspec, even when the value is integral). */
  float64(v: number): this {
    this.#ensure(9);
    this.#buf[this.#pos++] = 0xcb;
    this.#buf.writeDoubleBE(v, this.#pos);
    this.#pos += 8;
    return this;
  }

  str(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    if (n < 32) {
      this.#ensure(1 + n);
      this.#buf[this.#pos++] = 0xa0 | n;
    } else if (n < 0x100) {
      this.#ensure(2 + n);
      this.#buf[this.#pos++] = 0xd9;
      this.#buf[this.#pos++] = n;
    } else if (n < 0x10000) {
      this.#ensure(3 + n);
      this.#buf[this.#pos++] = 0xda;
      this.#buf.writeUInt16BE(n, this.#pos);
      this.#pos += 2;
    } else {
      this.#ensure(5 + n);
      this.#buf[this.#pos++] = 0xdb;
      this.#buf.writeUInt32BE(n, this.#pos);
      this.#pos += 4;
    }
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
    return this;
  }

  arrayHeader(n: number): this {
    return this.#header(n, 0x90, 0xdc, 0xdd);
  }

  mapHeader(n: number): this {
    return this.#header(n, 0x80, 0xde, 0xdf);
  }

  #header(n: number, fix: number, h16: number, h32: number): this {
    this.#ensure(5);
    if (n < 16) this.#buf[this.#pos++] = fix | n;
    else if (n < 0x10000) {
      this.#buf[this.#pos++] = h16;
      this.#buf.writeUInt16BE(n, this.#pos);
      this.#pos += 2;
    } else {
      this.#buf[this.#pos++] = h32;
      this.#buf.writeUInt32BE(n, this.#pos);
      this.#pos += 4;
    }
    return this;
  }

  #bigint(v: bigint): this {
    if (v >= 0n && v < 0x100000000n) return this.int(Number(v));
    if (v < 0n && v >= -0x80000000n) return this.int(Number(v));
    if (v > U64_MAX || v < I64_MIN) throw new RangeError(`integer out of 64-bit range: ${v}`);
    this.#ensure(9);
    if (v >= 0n) {
      this.#buf[this.#pos++] = 0xcf;
      this.#buf.writeBigUInt64BE(v, this.#pos);
    } else {
      this.#buf[this.#pos++] = 0xd3;
      this.#buf.writeBigInt64BE(v, this.#pos);
    }
    this.#pos += 8;
    return this;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }
}
