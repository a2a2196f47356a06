import { FRAME_END, FRAME_METHOD, FRAME_OVERHEAD } from './constants.js'
import { type FieldTable, fieldTableSize, isFieldTable, readFieldTable, writeFieldTable } from './field-table.js'
import { AmqpProtocolError, protocolErrors } from './protocol-error.js'
import { type ArgType, methodSpecs, type ReservedArg, reservedArgs } from './spec.js'
import { checkUint, Reader, notUtf8, shortstrLength, U16_MAX, U32_MAX, U64_MAX_NUMBER, U8_MAX, writeShortstr, writeU16, writeU32, writeU64 } from './wire.js'

// Method frame payload:
//   u16 class-id | u16 method-id | arguments in spec order
// Arguments: octet u8, short u16, long u32, longlong u64, shortstr, longstr, table (see wire.ts and
// field-table.ts). Consecutive `bit` arguments share octets, first bit in the least significant
// position, up to 8 per octet; any other argument type ends the run.

type Specs = typeof methodSpecs
export type MethodName = keyof Specs

interface ArgTypes {
  octet: number
  short: number
  long: number
  longlong: number
  shortstr: string
  longstr: Buffer
  bit: boolean
  table: FieldTable
}

type ArgList<N extends MethodName> = Specs[N][2][number]
type Simplify<T> = { [K in keyof T]: T[K] } & {}
type Args<N extends MethodName> = {
  [A in ArgList<N> as A[0] extends ReservedArg ? never : A[0]]: ArgTypes[A[1]]
} & {
  [A in ArgList<N> as A[0] extends ReservedArg ? A[0] : never]?: ArgTypes[A[1]]
}

/** One decoded method, e.g. `{ name: 'basic.publish', classId: 60, methodId: 40, exchange, routingKey, mandatory, immediate, ticket }`. */
export type MethodOf<N extends MethodName> = Simplify<{ name: N; classId: Specs[N][0]; methodId: Specs[N][1] } & Args<N>>
export type Method = { [N in MethodName]: MethodOf<N> }[MethodName]
/** What `encodeMethod*` accepts: the ids are looked up from `name`, reserved arguments default to zero/empty. */
export type MethodInit = { [N in MethodName]: Simplify<{ name: N; classId?: Specs[N][0]; methodId?: Specs[N][1] } & Args<N>> }[MethodName]

/** The methods followed by a content header and body frames. */
export type ContentMethod = MethodOf<'basic.publish'> | MethodOf<'basic.return'> | MethodOf<'basic.deliver'> | MethodOf<'basic.get-ok'>

// ---------------------------------------------------------------------------------------------
// The runtime table, built once from spec.ts

const T_OCTET = 0
const T_SHORT = 1
const T_LONG = 2
const T_LONGLONG = 3
const T_SHORTSTR = 4
const T_LONGSTR = 5
const T_BIT = 6
const T_TABLE = 7
const typeCodes: Record<ArgType, number> = { octet: T_OCTET, short: T_SHORT, long: T_LONG, longlong: T_LONGLONG, shortstr: T_SHORTSTR, longstr: T_LONGSTR, bit: T_BIT, table: T_TABLE }

interface ArgDef {
  readonly name: string
  readonly type: number
  /** For bits: the position in its octet; 0 starts a new octet. */
  readonly bit: number
  /** The default for a reserved argument, else undefined (the argument is required). */
  readonly reserved: unknown
}

export interface MethodDef {
  readonly name: MethodName
  readonly classId: number
  readonly methodId: number
  readonly args: readonly ArgDef[]
  readonly content: boolean
}

const defsById: (MethodDef | undefined)[] = []
const defsByName = new Map<string, MethodDef>()
const methodKey = (classId: number, methodId: number): number => (classId << 8) | methodId

for (const [name, [classId, methodId, argSpecs, content]] of Object.entries(methodSpecs) as [MethodName, Specs[MethodName]][]) {
  const args: ArgDef[] = []
  let bit = 0
  for (const [argName, type] of argSpecs as readonly (readonly [string, ArgType])[]) {
    const reserved: unknown = Object.hasOwn(reservedArgs, argName) ? reservedArgs[argName as ReservedArg] : undefined
    if (type === 'bit') {
      if (bit === 8) bit = 0
      args.push({ name: argName, type: T_BIT, bit: bit++, reserved })
    } else {
      bit = 0
      args.push({ name: argName, type: typeCodes[type], bit: 0, reserved })
    }
  }
  const def: MethodDef = { name, classId, methodId, args, content }
  defsById[methodKey(classId, methodId)] = def
  defsByName.set(name, def)
}

/** The table row for a class/method id pair, or undefined when this codec does not know it. */
export function methodDef(classId: number, methodId: number): MethodDef | undefined {
  return classId > 0xff || methodId > 0xff ? undefined : defsById[methodKey(classId, methodId)]
}

export function methodDefByName(name: MethodName): MethodDef {
  const def = defsByName.get(name)
  if (!def) throw new TypeError(`unknown AMQP method ${JSON.stringify(name)}`)
  return def
}

/** Every method this codec knows, in spec order. */
export const methodNames = Object.keys(methodSpecs) as MethodName[]

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes a method frame payload (class id, method id, arguments). Throws AmqpProtocolError: 540
 * NOT_IMPLEMENTED for an unknown class or method, 502 SYNTAX_ERROR for truncated or surplus
 * argument bytes or a bad field table.
 */
export function decodeMethod(payload: Buffer, channel = 0, start = 0, end = payload.length): Method {
  if (end - start < 4) throw protocolErrors.shortMethodFrame(channel, end - start)
  const classId = (payload[start]! << 8) | payload[start + 1]!
  const methodId = (payload[start + 2]! << 8) | payload[start + 3]!
  // basic.publish is most of what a busy connection receives: hand-written, it decodes ~3x faster
  // than the table path (about 4M/s against 1.2M/s, 2M decodes of a 13-byte routing key).
  if (classId === 60 && methodId === 40) return decodePublish(payload, channel, start + 4, end)
  const def = methodDef(classId, methodId)
  if (!def) throw protocolErrors.unknownMethod(channel, classId, methodId)
  const r = new Reader(payload, start + 4, end)
  try {
    const m = readArgs(r, def)
    if (r.pos !== end) throw protocolErrors.syntax(`${end - r.pos} bytes after the last argument`)
    return m
  } catch (err) {
    throw located(err, def, channel)
  }
}

function located(err: unknown, def: MethodDef, channel: number): AmqpProtocolError {
  const why = err instanceof AmqpProtocolError ? err.message : String(err)
  return protocolErrors.syntax(`${def.name}: ${why}`, { channel, classId: def.classId, methodId: def.methodId })
}

function readArgs(r: Reader, def: MethodDef): Method {
  const m: Record<string, unknown> = { name: def.name, classId: def.classId, methodId: def.methodId }
  let bits = 0
  for (const arg of def.args) {
    switch (arg.type) {
      case T_OCTET:
        m[arg.name] = r.u8(arg.name)
        break
      case T_SHORT:
        m[arg.name] = r.u16(arg.name)
        break
      case T_LONG:
        m[arg.name] = r.u32(arg.name)
        break
      case T_LONGLONG:
        m[arg.name] = r.u64(arg.name)
        break
      case T_SHORTSTR:
        m[arg.name] = r.shortstr(arg.name)
        break
      case T_LONGSTR:
        m[arg.name] = r.longstr(arg.name)
        break
      case T_BIT:
        if (arg.bit === 0) bits = r.u8(arg.name)
        m[arg.name] = (bits & (1 << arg.bit)) !== 0
        break
      default:
        m[arg.name] = readFieldTable(r)
    }
  }
  return m as Method
}

// basic.publish arguments: u16 ticket | shortstr exchange | shortstr routing-key | octet bits
// (bit 0 mandatory, bit 1 immediate).
function decodePublish(b: Buffer, channel: number, p: number, end: number): MethodOf<'basic.publish'> {
  const fail = (why: string) => protocolErrors.syntax(`basic.publish: ${why}`, { channel, classId: 60, methodId: 40 })
  if (end - p < 5) throw fail('truncated arguments')
  const ticket = (b[p]! << 8) | b[p + 1]!
  const exLen = b[p + 2]!
  p += 3
  if (end - p < exLen + 2) throw fail('truncated exchange')
  const exchange = exLen === 0 ? '' : b.toString('utf8', p, p + exLen)
  if (notUtf8(exchange, b, p, p + exLen)) throw fail('exchange is not valid UTF-8')
  p += exLen
  const rkLen = b[p]!
  p += 1
  if (end - p < rkLen + 1) throw fail('truncated routing-key')
  const routingKey = rkLen === 0 ? '' : b.toString('utf8', p, p + rkLen)
  if (notUtf8(routingKey, b, p, p + rkLen)) throw fail('routing-key is not valid UTF-8')
  p += rkLen
  const bits = b[p]!
  p += 1
  if (p !== end) throw fail(`${end - p} bytes after the last argument`)
  return { name: 'basic.publish', classId: 60, methodId: 40, ticket, exchange, routingKey, mandatory: (bits & 1) !== 0, immediate: (bits & 2) !== 0 }
}

// ---------------------------------------------------------------------------------------------
// Encoding

function argValue(m: Record<string, unknown>, arg: ArgDef, def: MethodDef): unknown {
  const v = m[arg.name]
  if (v !== undefined) return v
  if (arg.reserved !== undefined) return arg.reserved
  throw new TypeError(`${def.name}: missing argument ${arg.name}`)
}

/** Bytes the method's payload (ids and arguments) takes. Validates every argument; throws TypeError/RangeError. */
export function methodPayloadSize(def: MethodDef, method: MethodInit): number {
  const m = method as unknown as Record<string, unknown>
  let size = 4
  let prevBit = false
  for (const arg of def.args) {
    const v = argValue(m, arg, def)
    const what = `${def.name} ${arg.name}`
    switch (arg.type) {
      case T_OCTET:
        checkUint(v as number, U8_MAX, what)
        size += 1
        break
      case T_SHORT:
        checkUint(v as number, U16_MAX, what)
        size += 2
        break
      case T_LONG:
        checkUint(v as number, U32_MAX, what)
        size += 4
        break
      case T_LONGLONG:
        checkUint(v as number, U64_MAX_NUMBER, what)
        size += 8
        break
      case T_SHORTSTR:
        if (typeof v !== 'string') throw new TypeError(`${what} must be a string`)
        size += 1 + shortstrLength(v, what)
        break
      case T_LONGSTR:
        if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Buffer`)
        checkUint(v.length, U32_MAX, what)
        size += 4 + v.length
        break
      case T_BIT:
        if (typeof v !== 'boolean') throw new TypeError(`${what} must be a boolean`)
        if (arg.bit === 0 || !prevBit) size += 1
        break
      default:
        if (!isFieldTable(v as FieldTable)) throw new TypeError(`${what} must be a field table`)
        size += fieldTableSize(v as FieldTable)
    }
    prevBit = arg.type === T_BIT
  }
  return size
}

/** Writes the payload sized by `methodPayloadSize`; returns the offset after it. */
export function writeMethodPayload(buf: Buffer, off: number, def: MethodDef, method: MethodInit): number {
  const m = method as unknown as Record<string, unknown>
  off = writeU16(buf, off, def.classId)
  off = writeU16(buf, off, def.methodId)
  let bitsAt = -1
  for (const arg of def.args) {
    const v = argValue(m, arg, def)
    switch (arg.type) {
      case T_OCTET:
        buf[off++] = v as number
        break
      case T_SHORT:
        off = writeU16(buf, off, v as number)
        break
      case T_LONG:
        off = writeU32(buf, off, v as number)
        break
      case T_LONGLONG:
        off = writeU64(buf, off, v as number)
        break
      case T_SHORTSTR:
        off = writeShortstr(buf, off, v as string, shortstrLength(v as string, arg.name))
        break
      case T_LONGSTR: {
        const bytes = v as Uint8Array
        off = writeU32(buf, off, bytes.length)
        buf.set(bytes, off)
        off += bytes.length
        break
      }
      case T_BIT:
        if (arg.bit === 0 || bitsAt < 0) {
          bitsAt = off
          buf[off++] = 0
        }
        if (v) buf[bitsAt]! |= 1 << arg.bit
        break
      default:
        off = writeFieldTable(buf, off, v as FieldTable)
    }
    if (arg.type !== T_BIT) bitsAt = -1
  }
  return off
}

/** The method's payload alone (class id, method id, arguments). */
export function encodeMethod(method: MethodInit): Buffer {
  const def = methodDefByName(method.name)
  const buf = Buffer.allocUnsafe(methodPayloadSize(def, method))
  writeMethodPayload(buf, 0, def, method)
  return buf
}

/** A whole method frame, in one allocation. */
export function encodeMethodFrame(channel: number, method: MethodInit): Buffer {
  checkUint(channel, U16_MAX, 'channel')
  const def = methodDefByName(method.name)
  const size = methodPayloadSize(def, method)
  const buf = Buffer.allocUnsafe(size + FRAME_OVERHEAD)
  buf[0] = FRAME_METHOD
  writeU16(buf, 1, channel)
  writeU32(buf, 3, size)
  writeMethodPayload(buf, 7, def, method)
  buf[7 + size] = FRAME_END
  return buf
}
