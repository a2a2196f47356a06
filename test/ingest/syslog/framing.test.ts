import { describe, expect, it } from 'vitest'
import { SyslogFramer, syslogFrameErrorRawBytesMax } from '../../../src/ingest/syslog/framing.js'
import { isSyslogParseError, parseSyslog } from '../../../src/ingest/syslog/parse.js'
import { byteByByte, capturedAt, expectedEvent, frameChunks, framerFrame, loadFixture, splitAt, tcpFixtures } from './fixtures.js'

const text = (frames: Buffer[]): string[] => frames.map((f) => f.toString('utf8'))
const b = (s: string): Buffer => Buffer.from(s, 'utf8')
const latin1 = (frames: Buffer[]): string => JSON.stringify(frames.map((f) => f.toString('latin1')))

describe('SyslogFramer on the captured TCP streams', () => {
  for (const name of tcpFixtures) {
    describe(name, () => {
      const fixture = loadFixture(name)
      const expectedFrames = fixture.expected.map((line) => framerFrame(fixture, line))

      it('whole: yields exactly the expected frames, which parse to the expected events', () => {
        const { frames, errors } = frameChunks([fixture.bin])
        expect(errors).toEqual([])
        expect(frames).toEqual(expectedFrames)
        const events = frames.map((frame) => parseSyslog(frame, { receivedAt: capturedAt }))
        expect(events).toEqual(fixture.expected.map((line) => expectedEvent(line)))
      })

      it('split at every byte offset: the same frames', () => {
        // Compared as latin1 strings (byte-exact) so that ~2,000 splits stay fast; details only on a mismatch.
        const want = latin1(expectedFrames)
        let checked = 0
        for (let at = 0; at <= fixture.bin.length; at++) {
          const { frames, errors } = frameChunks(splitAt(fixture.bin, [at]))
          if (errors.length > 0 || latin1(frames) !== want) {
            expect(errors, `split at ${at}`).toEqual([])
            expect(frames, `split at ${at}`).toEqual(expectedFrames)
          }
          checked++
        }
        expect(checked).toBe(fixture.bin.length + 1)
      })

      it('byte by byte: the same frames', () => {
        const { frames, errors } = frameChunks(byteByByte(fixture.bin))
        expect(errors).toEqual([])
        expect(frames).toEqual(expectedFrames)
      })
    })
  }

  it('all captures on one connection, back to back, mixing octet counting and LF framing', () => {
    const fixtures = tcpFixtures.map((name) => loadFixture(name))
    // LF-framed captures end in LF and logger's octet captures end without one; both may be followed by anything.
    const stream = Buffer.concat(fixtures.map((f) => f.bin))
    const expected = fixtures.flatMap((f) => f.expected.map((line) => framerFrame(f, line)))
    for (const chunkBytes of [1, 7, 64, 1000, stream.length]) {
      const chunks: Buffer[] = []
      for (let i = 0; i < stream.length; i += chunkBytes) chunks.push(stream.subarray(i, i + chunkBytes))
      const { frames, errors } = frameChunks(chunks)
      expect(errors).toEqual([])
      expect(frames).toEqual(expected)
    }
  })
})

describe('SyslogFramer framing rules', () => {
  it('octet counting and LF framing alternate frame by frame on one connection', () => {
    const stream = b('<13>lf one\n11 <13>counted<14>lf two\n3 abc10 <15>x\ny\nz\n<16>last\n')
    expect(text(frameChunks([stream]).frames)).toEqual(['<13>lf one', '<13>counted', '<14>lf two', 'abc', '<15>x\ny\nz', '<16>last'])
  })

  it('strips one LF (or CRLF) counted inside an octet frame, and skips a bare LF after one', () => {
    const stream = b('6 <13>a\n\n7 <13>b\r\n7 <13>c\n\n\n5 <13>d')
    expect(text(frameChunks([stream]).frames)).toEqual(['<13>a', '<13>b', '<13>c\n', '<13>d'])
  })

  it('accepts CRLF line ends and skips empty lines without reporting them', () => {
    const { frames, errors } = frameChunks([b('\n\r\n<13>a\r\n\n<13>b\n\r\n')])
    expect(text(frames)).toEqual(['<13>a', '<13>b'])
    expect(errors).toEqual([])
  })

  it('a CRLF split between chunks is still one line end', () => {
    expect(text(frameChunks([b('<13>a\r'), b('\n<13>b\r'), b('\n')]).frames)).toEqual(['<13>a', '<13>b'])
  })

  it('a count of 0 is an empty frame, skipped', () => {
    expect(text(frameChunks([b('0 5 <13>x')]).frames)).toEqual(['<13>x'])
  })

  it('end() flushes a last LF frame without its LF, and reports a counted frame cut short', () => {
    expect(text(frameChunks([b('<13>a\n<13>unterminated')]).frames)).toEqual(['<13>a', '<13>unterminated'])
    const cut = frameChunks([b('<13>a\n20 <13>only')])
    expect(text(cut.frames)).toEqual(['<13>a'])
    expect(cut.errors.map((e) => [e.kind, e.raw.toString()])).toEqual([['truncated', '<13>only']])
    const countOnly = frameChunks([b('<13>a\n12'), b('3')])
    expect(countOnly.errors.map((e) => [e.kind, e.raw.toString()])).toEqual([['truncated', '123']])
  })

  it('passes a frame that lies inside one chunk as a view of that chunk, not a copy', () => {
    const chunk = b('7 <13>abc<13>def\n')
    const seen: Buffer[] = []
    const framer = new SyslogFramer({ maxMessageBytes: 100, onFrame: (f) => seen.push(f), onError: () => {} })
    framer.push(chunk)
    expect(text(seen)).toEqual(['<13>abc', '<13>def'])
    for (const frame of seen) expect(frame.buffer).toBe(chunk.buffer)
  })

  it('keeps the stream in sync when onFrame throws, and rethrows the first error after the chunk', () => {
    const seen: string[] = []
    const framer = new SyslogFramer({
      maxMessageBytes: 100,
      onFrame: (f) => {
        seen.push(f.toString())
        if (f.toString() === '<13>bad') throw new Error('listener bug')
      },
      onError: () => {},
    })
    expect(() => framer.push(b('7 <13>bad<13>after\n7 <13>bad'))).toThrow('listener bug')
    framer.push(b('<13>next\n'))
    expect(seen).toEqual(['<13>bad', '<13>after', '<13>bad', '<13>next'])
  })

  it('rejects a maxMessageBytes that is not a positive integer', () => {
    expect(() => new SyslogFramer({ maxMessageBytes: 0, onFrame: () => {}, onError: () => {} })).toThrow(RangeError)
  })
})

describe('SyslogFramer limits and garbage', () => {
  const max = 1024

  it('a 10 MB line is reported once, with ≤ 1 KiB of it, never buffered, and the next frame arrives', () => {
    const huge = Buffer.alloc(10 * 1024 * 1024, 0x61)
    huge.write('<13>huge ', 0)
    const stream = Buffer.concat([b('<13>before\n'), huge, b('\n<13>after\n'), b('5 <13>x')])
    for (const chunkBytes of [64 * 1024, 1_000_003]) {
      const frames: string[] = []
      const errors: { reason: string; raw: Buffer; kind: string }[] = []
      const framer = new SyslogFramer({
        maxMessageBytes: max,
        onFrame: (f) => frames.push(f.toString()),
        onError: (reason, raw, kind) => errors.push({ reason, raw: Buffer.from(raw), kind }),
      })
      let maxBuffered = 0
      for (let i = 0; i < stream.length; i += chunkBytes) {
        framer.push(stream.subarray(i, i + chunkBytes))
        maxBuffered = Math.max(maxBuffered, framer.bufferedBytes)
      }
      framer.end()
      expect(frames).toEqual(['<13>before', '<13>after', '<13>x'])
      expect(errors).toHaveLength(1)
      expect(errors[0]!.kind).toBe('too-long')
      expect(errors[0]!.raw.length).toBe(syslogFrameErrorRawBytesMax)
      expect(errors[0]!.raw.subarray(0, 9).toString()).toBe('<13>huge ')
      expect(errors[0]!.reason).toMatch(/maxMessageBytes \(1024\)/)
      expect(maxBuffered).toBeLessThanOrEqual(max + 1)
    }
  })

  it('a 10 MB line fed byte-sized pieces at a time still holds at most maxMessageBytes + 1', () => {
    const framer = new SyslogFramer({ maxMessageBytes: max, onFrame: () => {}, onError: () => {} })
    let maxBuffered = 0
    const piece = Buffer.alloc(100, 0x62)
    framer.push(b('<13>'))
    for (let i = 0; i < 100_000; i++) {
      framer.push(piece)
      maxBuffered = Math.max(maxBuffered, framer.bufferedBytes)
    }
    expect(maxBuffered).toBeLessThanOrEqual(max + 1)
  })

  it('a line of exactly maxMessageBytes passes, one more byte is reported', () => {
    const exact = Buffer.alloc(max, 0x61)
    exact.write('<13>', 0)
    const over = Buffer.alloc(max + 1, 0x62)
    over.write('<13>', 0)
    for (const chunks of [[Buffer.concat([exact, b('\r\n'), over, b('\n<13>ok\n')])], byteByByte(Buffer.concat([exact, b('\r\n'), over, b('\n<13>ok\n')]))]) {
      const { frames, errors } = frameChunks(chunks, max)
      expect(frames.map((f) => f.length)).toEqual([max, 6])
      expect(errors.map((e) => e.kind)).toEqual(['too-long'])
    }
  })

  it('an octet count over the limit is reported once; an honest frame without LF is skipped to its end', () => {
    const body = Buffer.alloc(100_000, 0x0a) // empty lines do not look like a frame: the claimed end is the boundary
    const noLf = Buffer.alloc(100_000, 0x61) // logger's over-long frame: no LF, the count is where it ends
    for (const filler of [body, noLf]) {
      const stream = Buffer.concat([b('9 <13>first100000 '), filler, b('9 <13>after<13>lf\n')])
      for (const chunks of [[stream], splitAt(stream, [3, 14, 17, 50_000, 100_018]), byteByByte(stream)]) {
        const { frames, errors } = frameChunks(chunks, max)
        expect(text(frames)).toEqual(['<13>first', '<13>after', '<13>lf'])
        expect(errors.map((e) => e.kind)).toEqual(['too-long'])
        expect(errors[0]!.reason).toMatch(/100000 bytes is over maxMessageBytes \(1024\); skipped to the next frame/)
        expect(errors[0]!.raw.subarray(0, 7).toString()).toBe('100000 ')
      }
    }
  })

  it('a count of 999999999 does not swallow the frames after it: resync at the next line that starts like a frame', () => {
    // rsyslog and syslog-ng end each counted frame with LF; logger sends LF-framed lines too.
    const stream = b('<13>before\n999999999 <13>liar\n24 <13>1 - h app - - - one\n<13>two\n')
    for (const chunks of [[stream], byteByByte(stream), splitAt(stream, [11, 20, 31, 32])]) {
      const { frames, errors } = frameChunks(chunks, max)
      expect(text(frames)).toEqual(['<13>before', '<13>1 - h app - - - one', '<13>two'])
      expect(errors.map((e) => e.kind)).toEqual(['too-long'])
      // The report holds the bad frame (as far as this chunk shows it), not the frames after it.
      expect('999999999 <13>liar\n'.startsWith(errors[0]!.raw.toString())).toBe(true)
      expect(errors[0]!.raw.toString()).toMatch(/^999999999 /)
      expect(errors[0]!.reason).toMatch(/999999999 bytes is over maxMessageBytes \(1024\)/)
    }
  })

  it('the continuation lines of an over-long multi-line frame are dropped with it, up to the next frame', () => {
    const trace = `<11>1 - h app - - - Error: boom\n${'    at handler (/srv/app.js:1:2)\n'.repeat(60)}`
    const stream = Buffer.concat([b(`${Buffer.byteLength(trace)} ${trace}`), b('<13>next\n'), b('9 <13>count')])
    expect(Buffer.byteLength(trace)).toBeGreaterThan(max)
    for (const chunks of [[stream], byteByByte(stream)]) {
      const { frames, errors } = frameChunks(chunks, max)
      expect(text(frames)).toEqual(['<13>next', '<13>count'])
      expect(errors.map((e) => e.kind)).toEqual(['too-long'])
    }
  })

  it('an over-long count holds nothing in memory while it resynchronises', () => {
    const framer = new SyslogFramer({ maxMessageBytes: max, onFrame: () => {}, onError: () => {} })
    framer.push(b('999999999 '))
    const piece = Buffer.alloc(64 * 1024, 0x78)
    for (let i = 0; i < 64; i++) {
      framer.push(piece)
      expect(framer.bufferedBytes).toBe(0)
    }
  })

  it('a counted frame within maxMessageBytes + its LF passes', () => {
    const msg = Buffer.alloc(max, 0x61)
    const stream = Buffer.concat([b(`${max + 1} `), msg, b('\n'), b(`${max + 1} `), msg, b('a')])
    const { frames, errors } = frameChunks([stream], max)
    expect(frames.map((f) => f.length)).toEqual([max])
    expect(errors.map((e) => e.kind)).toEqual(['too-long'])
  })

  it('digits not followed by SP are a malformed count: reported, and the framer resyncs at the next LF', () => {
    const stream = b('12x<13>garbage\n<13>next\n123\n7 <13>abc2026-11-25T15:56:32Z no pri\n<13>last\n')
    for (const chunks of [[stream], byteByByte(stream)]) {
      const { frames, errors } = frameChunks(chunks, max)
      expect(text(frames)).toEqual(['<13>next', '<13>abc', '<13>last'])
      expect(errors.map((e) => [e.kind, e.raw.toString()])).toEqual([
        ['bad-count', '12x'],
        ['bad-count', '123\n'],
        ['bad-count', '2026-'],
      ])
    }
  })

  it('an absurd count (10 digits or more) is reported and resynchronised at the next LF, not skipped', () => {
    const { frames, errors } = frameChunks([b('99999999999 <13>x\n<13>next\n')], max)
    expect(text(frames)).toEqual(['<13>next'])
    expect(errors.map((e) => e.kind)).toEqual(['bad-count'])
    expect(errors[0]!.reason).toMatch(/more than 9 digits/)
  })

  it('binary garbage yields errors, and the valid frames after it still parse', () => {
    const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x02, 0x3c, 0x39, 0x39, 0x39, 0x3e, 0x0a, 0x39, 0x01, 0x0a, 0x3c, 0x3e, 0x80, 0x0a, 0xc3, 0x28, 0x0a])
    const valid = b('<134>1 2026-11-25T15:56:32.708988+00:00 vm web - - - GET /health 200 1ms\n22 <12>Nov 25 15:56:32 vm')
    const stream = Buffer.concat([garbage, valid, garbage, valid])
    for (const chunks of [[stream], byteByByte(stream)]) {
      const { frames, errors } = frameChunks(chunks, max)
      expect(errors.map((e) => e.kind)).toEqual(['bad-count', 'bad-count'])
      const results = frames.map((f) => parseSyslog(f, { receivedAt: capturedAt }))
      const bad = results.filter(isSyslogParseError)
      const good = results.filter((r) => !isSyslogParseError(r))
      expect(bad.map((r) => r.error)).toEqual([
        expect.stringMatching(/no PRI, and the frame is not text/),
        expect.stringMatching(/no valid PRI/),
        expect.stringMatching(/no PRI, and the frame is not text/),
        expect.stringMatching(/no PRI, and the frame is not text/),
        expect.stringMatching(/no valid PRI/),
        expect.stringMatching(/no PRI, and the frame is not text/),
      ])
      expect(good).toEqual([
        expect.objectContaining({ app: 'web', message: 'GET /health 200 1ms', timestamp: '2026-11-25T15:56:32.708Z' }),
        expect.objectContaining({ host: 'vm', app: null, message: '', timestamp: '2026-11-25T15:56:32.000Z' }),
        expect.objectContaining({ app: 'web', message: 'GET /health 200 1ms' }),
        expect.objectContaining({ host: 'vm', app: null, message: '' }),
      ])
    }
  })
})
