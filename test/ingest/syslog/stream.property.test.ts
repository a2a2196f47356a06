// Property: a random stream of octet-counted and LF-framed syslog messages, cut into random
// chunks, gives the same frames as the stream pushed whole, those frames are exactly the messages
// that were sent, and each parses back to the fields it was built from.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseSyslog, type SyslogEvent } from '../../../src/ingest/syslog/parse.js'
import { frameChunks, splitAt } from './fixtures.js'

const receivedAt = Date.parse('2026-11-25T15:57:00.000Z')
const facilities = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const
const severities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

// How a message goes on the wire: logger (count, no LF), rsyslog/syslog-ng (count includes LF),
// a stray LF after a counted frame, LF framing, CRLF framing.
type Framing = 'count' | 'count-lf' | 'count-lf-bare-lf' | 'lf' | 'crlf'

interface Sent {
  framing: Framing
  format: 'rfc5424' | 'rfc3164'
  pri: number
  time: number // ms, whole seconds for BSD times
  host: string
  app: string
  procid: string | null
  text: string
}

const sentArb: fc.Arbitrary<Sent> = fc.record({
  framing: fc.constantFrom<Framing>('count', 'count-lf', 'count-lf-bare-lf', 'lf', 'crlf'),
  format: fc.constantFrom<'rfc5424' | 'rfc3164'>('rfc5424', 'rfc3164'),
  pri: fc.integer({ min: 0, max: 191 }),
  // BSD times carry no year: keep them within the year before receipt.
  time: fc.integer({ min: receivedAt - 300 * 86_400_000, max: receivedAt }),
  host: fc.stringMatching(/^[a-z][a-z0-9.-]{0,15}$/),
  app: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_./-]{0,15}$/),
  procid: fc.option(fc.stringMatching(/^[1-9][0-9]{0,5}$/), { nil: null }),
  text: fc.string({ unit: 'grapheme', maxLength: 60 }),
})

function wire(sent: Sent): { bytes: Buffer; frame: Buffer; event: SyslogEvent } {
  const counted = sent.framing.startsWith('count')
  // LF-framed text cannot hold an LF; no text may end in CR or LF (one is stripped) or start with a BOM.
  let text = counted ? sent.text : sent.text.replace(/[\r\n]/g, ' ')
  text = text.replace(/[\r\n]+$/, '').replace(/^\uFEFF/, '')
  let header: string
  let time: number
  if (sent.format === 'rfc5424') {
    time = sent.time
    header = `<${sent.pri}>1 ${new Date(time).toISOString()} ${sent.host} ${sent.app} ${sent.procid ?? '-'} - - `
  } else {
    time = Math.floor(sent.time / 1000) * 1000
    const d = new Date(time)
    const pad = (n: number) => String(n).padStart(2, '0')
    const bsd = `${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
    header = `<${sent.pri}>${bsd} ${sent.host} ${sent.app}${sent.procid === null ? '' : `[${sent.procid}]`}: `
  }
  const frame = Buffer.from(header + text, 'utf8')
  let bytes: Buffer
  switch (sent.framing) {
    case 'count':
      bytes = Buffer.concat([Buffer.from(`${frame.length} `), frame])
      break
    case 'count-lf':
      bytes = Buffer.concat([Buffer.from(`${frame.length + 1} `), frame, Buffer.from('\n')])
      break
    case 'count-lf-bare-lf':
      bytes = Buffer.concat([Buffer.from(`${frame.length + 1} `), frame, Buffer.from('\n\n')])
      break
    case 'lf':
      bytes = Buffer.concat([frame, Buffer.from('\n')])
      break
    case 'crlf':
      bytes = Buffer.concat([frame, Buffer.from('\r\n')])
  }
  const event: SyslogEvent = {
    timestamp: new Date(time).toISOString(),
    host: sent.host,
    app: sent.app,
    procid: sent.procid,
    msgid: null,
    facility: facilities[sent.pri >> 3]!,
    severity: severities[sent.pri & 7]!,
    structuredData: null,
    message: text,
  }
  return { bytes, frame, event }
}

describe('SyslogFramer + parseSyslog on random streams', () => {
  it('random chunking gives the frames that were sent, and they parse to the fields they were built from', () => {
    const streamArb = fc.array(sentArb, { minLength: 1, maxLength: 25 }).chain((messages) => {
      const wires = messages.map(wire)
      const stream = Buffer.concat(wires.map((w) => w.bytes))
      const cuts = fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, stream.length - 1) }), { maxLength: 30 }).map((a) => a.sort((x, y) => x - y))
      return fc.tuple(fc.constant(wires), fc.constant(stream), cuts)
    })
    fc.assert(
      fc.property(streamArb, ([wires, stream, cuts]) => {
        const whole = frameChunks([stream])
        const split = frameChunks(splitAt(stream, cuts.filter((c) => c < stream.length)))
        expect(whole.errors).toEqual([])
        expect(split.errors).toEqual([])
        expect(whole.frames).toEqual(wires.map((w) => w.frame))
        expect(split.frames).toEqual(whole.frames)
        expect(split.frames.map((f) => parseSyslog(f, { receivedAt }))).toEqual(wires.map((w) => w.event))
      }),
      { numRuns: 400, interruptAfterTimeLimit: 20_000 },
    )
  })

  it('frames over the limit, counted (full of LFs) or LF-framed, are reported and never shift the frames after them', () => {
    // Over-limit frames of both kinds are dropped; every frame after them arrives intact.
    const max = 200
    const itemArb = fc.oneof(
      sentArb.map((s) => ({ ok: true as const, ...wire(s) })),
      fc.integer({ min: max + 3, max: 3 * max }).map((n) => ({ ok: false as const, bytes: Buffer.concat([Buffer.from(`${n} `), Buffer.alloc(n, 0x0a)]) })),
      fc.integer({ min: max + 2, max: 3 * max }).map((n) => ({ ok: false as const, bytes: Buffer.concat([Buffer.from('<13>'), Buffer.alloc(n, 0x78), Buffer.from('\n')]) })),
    )
    fc.assert(
      fc.property(fc.array(itemArb, { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 97 }), (items, chunkBytes) => {
        // Long texts would themselves be over the limit: keep only the generated messages that fit.
        const kept = items.filter((i) => !i.ok || i.frame.length <= max)
        const stream = Buffer.concat(kept.map((i) => i.bytes))
        const chunks: Buffer[] = []
        for (let i = 0; i < stream.length; i += chunkBytes) chunks.push(stream.subarray(i, i + chunkBytes))
        const { frames, errors } = frameChunks(chunks, max)
        expect(frames).toEqual(kept.flatMap((i) => (i.ok ? [i.frame] : [])))
        expect(errors.map((e) => e.kind)).toEqual(kept.flatMap((i) => (i.ok ? [] : ['too-long'])))
      }),
      { numRuns: 300, interruptAfterTimeLimit: 20_000 },
    )
  })
})
