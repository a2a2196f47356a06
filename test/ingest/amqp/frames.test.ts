import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AmqpProtocolError,
  encodeContent,
  encodeFrame,
  encodeMethodFrame,
  type Frame,
  FRAME_MAX_DEFAULT,
  FrameParser,
  HEARTBEAT_FRAME,
  PROTOCOL_HEADER,
  ReplyCode,
} from '../../../src/ingest/amqp/codec.js'
import { methodArbitrary, properties } from './arbitraries.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

interface Parsed {
  frames: Frame[]
  headers: number
  error: AmqpProtocolError | undefined
}

/** Feeds the chunks in order, stopping at the first error, as a connection would. */
function parse(chunks: Buffer[], options: { protocolHeader?: boolean; frameMax?: number } = {}): Parsed {
  const out: Parsed = { frames: [], headers: 0, error: undefined }
  const parser = new FrameParser({ ...options, onFrame: (f) => out.frames.push(f), onProtocolHeader: () => out.headers++ })
  for (const chunk of chunks) {
    const err = parser.feed(chunk)
    if (err) {
      out.error = err
      expect(parser.feed(Buffer.from([1, 2, 3]))).toBe(err) // stays failed
      break
    }
  }
  return out
}

/** Frames with each body replaced by its hash: vitest's deep equality on 4 KiB Buffers is slow. */
const digest = (frames: Frame[]) => frames.map((f) => (f.type === 3 ? { ...f, body: createHash('sha1').update(f.body).digest('hex') } : f))

const splitAt = (buf: Buffer, i: number) => [buf.subarray(0, i), buf.subarray(i)]
const byteByByte = (buf: Buffer) => Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1))

// A connection's worth of traffic: header, methods with tables, a publish whose body spans three
// frames, an empty-body publish, heartbeats.
function sampleStream(): Buffer {
  return Buffer.concat([
    PROTOCOL_HEADER,
    encodeMethodFrame(0, { name: 'connection.start-ok', clientProperties: { product: 'test', capabilities: { consumer_cancel_notify: true } }, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }),
    encodeMethodFrame(0, { name: 'connection.tune-ok', channelMax: 2047, frameMax: 4096, heartbeat: 60 }),
    HEARTBEAT_FRAME,
    encodeMethodFrame(1, { name: 'channel.open' }),
    encodeContent(1, { name: 'basic.publish', exchange: 'logs', routingKey: 'svc.error', mandatory: false, immediate: false }, { contentType: 'application/json', headers: { level: 'error', n: 3 }, deliveryMode: 2 }, Buffer.alloc(10_000, 7), 4096),
    encodeContent(2, { name: 'basic.publish', exchange: '', routingKey: 'q', mandatory: true, immediate: false }, {}, Buffer.alloc(0), 4096),
    HEARTBEAT_FRAME,
    encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 5, multiple: true }),
  ])
}

describe('FrameParser', () => {
  const stream = sampleStream()
  const whole = parse([stream])
  const wholeDigest = digest(whole.frames)

  it('parses a whole stream', () => {
    expect(whole.error).toBeUndefined()
    expect(whole.headers).toBe(1)
    expect(whole.frames.map((f) => f.type)).toEqual([1, 1, 8, 1, 1, 2, 3, 3, 3, 1, 2, 8, 1])
    const bodies = whole.frames.filter((f) => f.type === 3).map((f) => f.body.length)
    expect(bodies).toEqual([4088, 4088, 1824])
    const header = whole.frames[5]!
    expect(header.type === 2 && header.header).toEqual({ classId: 60, bodySize: 10_000, properties: { contentType: 'application/json', headers: { level: 'error', n: 3 }, deliveryMode: 2 } })
  })

  it('passes whole frames as views into the chunk, without copying', () => {
    const body = whole.frames.find((f) => f.type === 3)!
    expect(body.type === 3 && body.body.buffer).toBe(stream.buffer)
  })

  it('parses the same frames when split at every byte boundary', () => {
    for (let i = 0; i <= stream.length; i++) {
      const split = parse(splitAt(stream, i))
      expect(split.error).toBeUndefined()
      expect(split.headers).toBe(1)
      expect(digest(split.frames)).toEqual(wholeDigest)
    }
  })

  it('parses the same frames fed byte by byte, holding at most one frame', () => {
    const frames: Frame[] = []
    const parser = new FrameParser({ onFrame: (f) => frames.push(f) })
    let maxBuffered = 0
    for (const b of byteByByte(stream)) {
      expect(parser.feed(b)).toBeUndefined()
      maxBuffered = Math.max(maxBuffered, parser.bufferedBytes)
    }
    expect(frames).toEqual(whole.frames)
    expect(maxBuffered).toBeLessThanOrEqual(4096)
    expect(parser.bufferedBytes).toBe(0)
  })

  it('parses generated frame sequences cut into random chunks the same as whole (property)', () => {
    const frameArb = fc.oneof(
      fc.constantFrom('basic.publish', 'basic.ack', 'queue.declare', 'connection.start-ok', 'basic.nack').chain((name) => methodArbitrary(name)).map((m) => encodeMethodFrame(3, m)),
      fc.tuple(properties, fc.uint8Array({ maxLength: 9000 })).map(([p, body]) => encodeContent(5, { name: 'basic.deliver', consumerTag: 'c', deliveryTag: 9, redelivered: true, exchange: 'e', routingKey: 'k' }, p, body, 4096)),
      fc.constant(HEARTBEAT_FRAME),
    )
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames)
        const reference = parse([bytes], { protocolHeader: false })
        expect(reference.error).toBeUndefined()
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
        const chunks: Buffer[] = []
        let prev = 0
        for (const p of [...points, bytes.length]) {
          chunks.push(Buffer.from(bytes.subarray(prev, p))) // copies: each chunk its own allocation, as from a socket
          prev = p
        }
        expect(digest(parse(chunks, { protocolHeader: false }).frames)).toEqual(digest(reference.frames))
      }),
      { numRuns: 300 },
    )
  })

  it('parses the hand-written heartbeat frame', () => {
    expect(HEARTBEAT_FRAME).toEqual(hex('08 0000 00000000 ce'))
    expect(parse([hex('08 0000 00000000 ce')], { protocolHeader: false }).frames).toEqual([{ type: 8, channel: 0 }])
    expect(encodeFrame(8, 0, Buffer.alloc(0))).toEqual(HEARTBEAT_FRAME)
  })

  describe('protocol header', () => {
    it('fails at the first wrong byte, so an HTTP request is answered at once', () => {
      const r = parse([Buffer.from('GET / HTTP/1.1\r\n')])
      expect(r.error?.kind).toBe('protocol-header')
      expect(r.headers).toBe(0)
    })

    it('refuses another protocol version', () => {
      for (const chunks of [[hex('414d5150 01010009')], byteByByte(hex('414d5150 00000901').subarray(0, 7)).concat([hex('00')])]) {
        const r = parse(chunks)
        expect(r.error?.kind).toBe('protocol-header')
        expect(r.error?.replyCode).toBe(ReplyCode.FRAME_ERROR)
      }
    })

    it('accepts the header split anywhere and waits for it', () => {
      const r = parse([hex('414d'), hex('5150'), hex('0000')])
      expect(r).toEqual({ frames: [], headers: 0, error: undefined })
    })
  })

  describe('malformed frames', () => {
    const ackFrame = encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: false })

    function expectError(bytes: Buffer, kind: string, replyCode: number, options: { frameMax?: number } = {}): AmqpProtocolError {
      // Whole, split everywhere, byte by byte: the same error, never an exception.
      const results = [parse([bytes], { protocolHeader: false, ...options }), parse(byteByByte(bytes), { protocolHeader: false, ...options })]
      for (let i = 0; i <= bytes.length; i += 3) results.push(parse(splitAt(bytes, i), { protocolHeader: false, ...options }))
      for (const r of results) {
        expect(r.error).toBeInstanceOf(AmqpProtocolError)
        expect(r.error?.kind).toBe(kind)
        expect(r.error?.replyCode).toBe(replyCode)
        expect(r.error?.message).toBe(results[0]!.error?.message)
      }
      return results[0]!.error!
    }

    it('bad frame end: 501', () => {
      const bad = Buffer.from(ackFrame)
      bad[bad.length - 1] = 0xcd
      const err = expectError(Buffer.concat([HEARTBEAT_FRAME, bad, HEARTBEAT_FRAME]), 'frame', ReplyCode.FRAME_ERROR)
      expect(err.channel).toBe(1)
      expect(err.message).toMatch(/ends with 0xcd/)
    })

    it('oversize frame: 501, refused from its 7 header bytes before any payload is buffered', () => {
      const head = hex('03 0001 00001000') // body frame of 4096 bytes: 4104 with framing
      const err = expectError(Buffer.concat([head, Buffer.alloc(4097, 0xce)]), 'frame-too-large', ReplyCode.FRAME_ERROR, { frameMax: 4096 })
      expect(err.message).toMatch(/4104 bytes .* frame-max of 4096/)
      const parser = new FrameParser({ protocolHeader: false, frameMax: 4096, onFrame: () => {} })
      expect(parser.feed(head.subarray(0, 6))).toBeUndefined()
      expect(parser.feed(head.subarray(6))?.kind).toBe('frame-too-large')
      expect(parser.bufferedBytes).toBe(0)
      // Exactly frame-max is fine.
      expect(parse([encodeFrame(3, 1, Buffer.alloc(4088))], { protocolHeader: false, frameMax: 4096 }).error).toBeUndefined()
      // A 4 GiB declaration is refused too, with the default limit.
      expect(parse([hex('01 0000 ffffffff')], { protocolHeader: false }).error?.message).toContain(`frame-max of ${FRAME_MAX_DEFAULT}`)
    })

    it('unknown frame type: 501', () => {
      expectError(hex('04 0000 00000000 ce'), 'frame', ReplyCode.FRAME_ERROR)
    })

    it('heartbeat with a payload or off channel 0: 501', () => {
      expectError(hex('08 0000 00000001 00 ce'), 'frame', ReplyCode.FRAME_ERROR)
      expectError(hex('08 0001 00000000 ce'), 'frame', ReplyCode.FRAME_ERROR)
    })

    it('unknown class or method: 540 with the ids', () => {
      const err = expectError(hex('01 0002 00000004 0063 000a ce'), 'not-implemented', ReplyCode.NOT_IMPLEMENTED)
      expect([err.channel, err.classId, err.methodId]).toEqual([2, 99, 10])
    })

    it('truncated method arguments: 502', () => {
      const err = expectError(hex('01 0001 00000008 003c 0050 00000000 ce'), 'syntax', ReplyCode.SYNTAX_ERROR)
      expect([err.classId, err.methodId]).toEqual([60, 80])
    })

    it('method frame too short for its ids: 501', () => {
      expectError(hex('01 0001 00000002 003c ce'), 'frame', ReplyCode.FRAME_ERROR)
    })

    it('bad field-table type in method arguments: 502', () => {
      // exchange.declare with arguments {"a": 'Z'}
      const err = expectError(hex('01 0001 00000016 0028 000a 0000 01 65 05 746f706963 00 00000003 0161 5a ce'), 'syntax', ReplyCode.SYNTAX_ERROR)
      expect(err.message).toMatch(/exchange.declare: unknown field type tag 0x5a/)
    })

    it('content header for another class or with a weight: 505; with bad properties: 502', () => {
      expectError(hex('02 0001 0000000e 0032 0000 0000000000000000 0000 ce'), 'unexpected-frame', ReplyCode.UNEXPECTED_FRAME)
      expectError(hex('02 0001 0000000e 003c 0001 0000000000000000 0000 ce'), 'unexpected-frame', ReplyCode.UNEXPECTED_FRAME)
      expectError(hex('02 0001 0000000e 003c 0000 0000000000000000 8000 ce'), 'syntax', ReplyCode.SYNTAX_ERROR) // content-type flag, no value
      expectError(hex('02 0001 0000000b 003c 0000 00000000000000 ce'), 'syntax', ReplyCode.SYNTAX_ERROR) // 11 bytes
    })

    it('a throwing frame handler fails the parser with 541 instead of throwing', () => {
      const parser = new FrameParser({
        protocolHeader: false,
        onFrame: () => {
          throw new Error('boom')
        },
      })
      const err = parser.feed(HEARTBEAT_FRAME)
      expect(err?.replyCode).toBe(ReplyCode.INTERNAL_ERROR)
      expect((err?.cause as Error).message).toBe('boom')
    })

    it('returns errors and never throws on random or corrupted input (property)', () => {
      const valid = sampleStream().subarray(PROTOCOL_HEADER.length)
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
            fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, v]) => {
              const b = Buffer.from(valid)
              b[at] = v
              return b
            }),
          ),
          fc.nat(400),
          (bytes, cut) => {
            for (const chunks of [[bytes], splitAt(bytes, Math.min(cut, bytes.length))]) {
              const r = parse(chunks, { protocolHeader: false })
              if (r.error) expect(r.error).toBeInstanceOf(AmqpProtocolError)
            }
          },
        ),
        { numRuns: 3000 },
      )
    })
  })

  it('refuses a frame-max below 4096', () => {
    expect(() => new FrameParser({ frameMax: 4095, onFrame: () => {} })).toThrow(RangeError)
  })
})
