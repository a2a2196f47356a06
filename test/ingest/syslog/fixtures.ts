// Loads the captured syslog fixtures (test/fixtures/syslog, copied from shared/fixtures/syslog;
// see the README there) and maps their expected lines onto what Sluice's modules produce.
//
// The mapping from a `*.expected.ndjson` line to a SyslogEvent (documented, not a change of shape):
// - `timestamp` is the line's `time`, or `receivedAt` as ISO when `time` is null (NILVALUE `-`):
//   an event always has a time.
// - `host`, `app`, `procid`, `msgid`, `facility`, `severity`, `structuredData`, `message` are taken
//   as they are.
// - `format`, `pri` (= facility * 8 + severity, checked by the tests), the raw `timestamp` text,
//   `bom` and `frame` are not event fields. `frame` is checked against the framer, minus the one
//   trailing LF the framer strips from an octet-counted frame (the fixture's frame includes it).

import { readFileSync } from 'node:fs'
import { SyslogFramer, type SyslogFrameErrorKind } from '../../../src/ingest/syslog/framing.js'
import type { SyslogEvent } from '../../../src/ingest/syslog/parse.js'

export const fixtureDir = new URL('../../fixtures/syslog/', import.meta.url)

/** A receive time just after the capture (2026-11-25, UTC): BSD times without a year fall in 2026. */
export const capturedAt = Date.parse('2026-11-25T15:57:00.000Z')

export interface ExpectedLine {
  frame: { offset: number; length: number }
  format: 'rfc5424' | 'rfc3164'
  pri: number
  facility: string
  severity: string
  timestamp: string | null
  time: string | null
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  structuredData: Record<string, Record<string, string>> | null
  message: string
  bom: boolean
}

export interface Fixture {
  name: string
  bin: Buffer
  expected: ExpectedLine[]
}

/** TCP captures (one or more connections, back to back): the framer's input. */
export const tcpFixtures = [
  'logger-rfc5424-tcp-octet',
  'logger-rfc5424-tcp-lf',
  'logger-rfc3164-tcp-lf',
  'logger-rfc3164-tcp-octet',
  'rsyslog-5424-tcp-octet',
  'rsyslog-5424-tcp-lf',
  'rsyslog-traditional-tcp',
  'rsyslog-forward-tcp',
  'syslog-ng-syslog-tcp',
  'syslog-ng-network-tcp',
] as const

/** UDP captures: datagrams placed one after another; the expected frames give their boundaries. */
export const udpFixtures = ['logger-rfc5424-udp', 'logger-rfc3164-udp', 'rsyslog-5424-udp', 'rsyslog-traditional-udp', 'syslog-ng-network-udp'] as const

export function loadFixture(name: string): Fixture {
  const bin = readFileSync(new URL(`${name}.bin`, fixtureDir))
  const text = readFileSync(new URL(`${name}.expected.ndjson`, fixtureDir), 'utf8')
  const expected = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ExpectedLine)
  return { name, bin, expected }
}

/** The bytes of the fixture's frame (as the fixture cuts it: a counted LF included). */
export function fixtureFrame(fixture: Fixture, line: ExpectedLine): Buffer {
  return fixture.bin.subarray(line.frame.offset, line.frame.offset + line.frame.length)
}

/** The frame SyslogFramer hands on: the fixture's frame without one trailing LF. */
export function framerFrame(fixture: Fixture, line: ExpectedLine): Buffer {
  const frame = fixtureFrame(fixture, line)
  return frame[frame.length - 1] === 0x0a ? frame.subarray(0, frame.length - 1) : frame
}

/** The SyslogEvent an expected line stands for (see the mapping at the top). */
export function expectedEvent(line: ExpectedLine, receivedAt = capturedAt): SyslogEvent {
  return {
    timestamp: line.time ?? new Date(receivedAt).toISOString(),
    host: line.host,
    app: line.app,
    procid: line.procid,
    msgid: line.msgid,
    facility: line.facility as SyslogEvent['facility'],
    severity: line.severity as SyslogEvent['severity'],
    structuredData: line.structuredData,
    message: line.message,
  }
}

export interface FramedStream {
  frames: Buffer[]
  errors: { reason: string; raw: Buffer; kind: SyslogFrameErrorKind }[]
}

/**
 * Feeds chunks through one SyslogFramer, then ends it. Each chunk goes through one reused scratch
 * buffer that is scribbled over after `push` returns, as a socket reusing its read buffer would:
 * frames are copied inside onFrame, so anything the framer kept as a view would show up broken.
 */
export function frameChunks(chunks: Iterable<Buffer>, maxMessageBytes = 64 * 1024): FramedStream {
  const out: FramedStream = { frames: [], errors: [] }
  const framer = new SyslogFramer({
    maxMessageBytes,
    onFrame: (frame) => out.frames.push(Buffer.from(frame)),
    onError: (reason, raw, kind) => out.errors.push({ reason, raw: Buffer.from(raw), kind }),
  })
  let scratch = Buffer.alloc(0)
  for (const chunk of chunks) {
    if (scratch.length < chunk.length) scratch = Buffer.alloc(Math.max(chunk.length, 2 * scratch.length))
    const view = scratch.subarray(0, chunk.length)
    chunk.copy(view)
    framer.push(view)
    view.fill(0x23) // '#'
  }
  framer.end()
  return out
}

/** `bytes` cut at the given offsets (sorted, within bounds). */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const chunks: Buffer[] = []
  let from = 0
  for (const at of offsets) {
    chunks.push(bytes.subarray(from, at))
    from = at
  }
  chunks.push(bytes.subarray(from))
  return chunks
}

export function byteByByte(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1))
  return chunks
}
