import assert from 'node:assert/strict'

// Hot records (cursors, settled ranges, deliveries, dedup ids) are small fixed-layout binary
// values: an ack touches several of them and JSON would triple their size and cost a parse
// each. Every binary value starts with a u8 layout version so a later release can add
// fields and still read old values. Definitions change rarely and are read by people, so
// they are JSON. Layouts are listed byte by byte in docs/metadata.md.

export interface ValueCodec<V> {
  readonly name: string
  encode(value: V): Buffer
  /** Throws on bytes that are not a value of this codec; the store reports that as corruption. */
  decode(bytes: Buffer): V
}

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue }

export const jsonCodec = <V extends JsonValue = JsonValue>(): ValueCodec<V> => ({
  name: 'json',
  encode: (value) => Buffer.from(JSON.stringify(value), 'utf8'),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')) as V,
})

/** For index keyspaces whose key is the whole record. */
export const emptyCodec: ValueCodec<null> = {
  name: 'empty',
  encode: () => Buffer.alloc(0),
  decode: (bytes) => {
    if (bytes.length !== 0) throw new Error(`expected an empty value, got ${bytes.length} bytes`)
    return null
  },
}

const twoTo32 = 0x1_0000_0000

function writeU64(buf: Buffer, value: number, at: number): void {
  assert.ok(Number.isSafeInteger(value) && value >= 0, `${value} is not a u64 below 2^53`)
  buf.writeUInt32BE(Math.floor(value / twoTo32), at)
  buf.writeUInt32BE(value % twoTo32, at + 4)
}

function readU64(buf: Buffer, at: number): number {
  const value = buf.readUInt32BE(at) * twoTo32 + buf.readUInt32BE(at + 4)
  if (!Number.isSafeInteger(value)) throw new Error(`u64 at byte ${at} is above 2^53`)
  return value
}

function checkLayout(name: string, bytes: Buffer, version: number, length: number): void {
  if (bytes.length < 1 || bytes[0] !== version) throw new Error(`${name}: unknown layout version ${String(bytes[0])}`)
  if (bytes.length !== length) throw new Error(`${name}: ${bytes.length} bytes, layout ${version} has ${length}`)
}

/** A settled range above the cursor: offsets [key offset, end) are settled. */
export interface SettledRange {
  readonly end: number
}

// u8 version=1 | u64 end (exclusive)
export const settledRangeCodec: ValueCodec<SettledRange> = {
  name: 'settledRange',
  encode: (r) => {
    const b = Buffer.allocUnsafe(9)
    b[0] = 1
    writeU64(b, r.end, 1)
    return b
  },
  decode: (b) => {
    checkLayout('settledRange', b, 1, 9)
    return { end: readU64(b, 1) }
  },
}

/** Per-event delivery state that must survive a restart (counts feed maxDeliveries). */
export interface DeliveryState {
  readonly count: number
  /** When a nacked event becomes due again; null when it is due now. */
  readonly dueAtMs: number | null
  /** Held back from dispatch (e.g. waiting for dead-lettering), not counted as in flight. */
  readonly parked: boolean
}

const flagParked = 0b01
const flagHasDue = 0b10

// u8 version=1 | u32 count | u64 dueAtMs (0 when none) | u8 flags (bit0 parked, bit1 hasDue)
export const deliveryStateCodec: ValueCodec<DeliveryState> = {
  name: 'deliveryState',
  encode: (d) => {
    const b = Buffer.allocUnsafe(14)
    b[0] = 1
    b.writeUInt32BE(d.count, 1)
    writeU64(b, d.dueAtMs ?? 0, 5)
    b[13] = (d.parked ? flagParked : 0) | (d.dueAtMs === null ? 0 : flagHasDue)
    return b
  },
  decode: (b) => {
    checkLayout('deliveryState', b, 1, 14)
    const flags = b[13] as number
    return { count: b.readUInt32BE(1), dueAtMs: flags & flagHasDue ? readU64(b, 5) : null, parked: (flags & flagParked) !== 0 }
  },
}

export const u32Codec: ValueCodec<number> = {
  name: 'u32',
  encode: (n) => {
    const b = Buffer.allocUnsafe(4)
    b.writeUInt32BE(n, 0)
    return b
  },
  decode: (b) => {
    if (b.length !== 4) throw new Error(`u32: ${b.length} bytes`)
    return b.readUInt32BE(0)
  },
}
