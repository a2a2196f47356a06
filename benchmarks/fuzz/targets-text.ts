// Fuzz targets for the line-oriented doors and the configuration: NDJSON line splitting (the TCP
// NDJSON door), syslog framing (RFC 6587), syslog messages (RFC 5424 and RFC 3164), config YAML.
//
// Inputs that need parameters (a limit, how the bytes are cut into socket chunks) carry them in a
// few header bytes, so every finding replays from its input alone.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { isUtf8 } from 'node:buffer'
import { parseConfig, validateConfigText } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'
import { eventJson } from '../../src/ingest/syslog/listener.js'
import { SyslogFramer, syslogFrameErrorRawBytesMax, type SyslogFrameErrorKind } from '../../src/ingest/syslog/framing.js'
import { isSyslogParseError, parseSyslog, type SyslogEvent } from '../../src/ingest/syslog/parse.js'
import { LineSplitter } from '../../src/ingest/tcp/lines.js'
import { check, checkMessage, type FuzzTarget, mutate, type MutateOptions, randomChunks, repoRoot, Rng } from './engine.js'

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

/** Header: 1 byte picking a limit, 4 bytes seeding the chunking. */
function withHeader(rng: Rng, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5)
  head[0] = rng.u32() & 0xff
  head.writeUInt32BE(rng.u32(), 1)
  return Buffer.concat([head, payload])
}

function splitHeader(input: Buffer): { pick: number; chunkSeed: number; payload: Buffer } {
  if (input.length < 5) return { pick: input[0] ?? 0, chunkSeed: 1, payload: Buffer.alloc(0) }
  return { pick: input[0]!, chunkSeed: input.readUInt32BE(1), payload: input.subarray(5) }
}

/**
 * Feeds chunks as a socket would hand them over, through one scratch buffer scribbled after each
 * push: a parser that kept a view of a chunk instead of copying shows up as changed bytes.
 */
function feedScratch(chunks: readonly Buffer[], push: (chunk: Buffer) => void): void {
  let scratch = Buffer.alloc(0)
  for (const chunk of chunks) {
    if (scratch.length < chunk.length) scratch = Buffer.alloc(Math.max(chunk.length, 2 * scratch.length))
    const view = scratch.subarray(0, chunk.length)
    chunk.copy(view)
    push(view)
    view.fill(0x23)
  }
}

// ---- NDJSON lines ----------------------------------------------------------------------------

const ndjsonSeeds = [
  '{"level":30,"time":1764086192708,"pid":1436,"hostname":"vm","service":"web","msg":"GET /health 200 1ms"}',
  '{"timestamp":"2026-11-25T15:56:32.708Z","level":"error","service":"api","message":"upstream timed out","fields":{"ms":5003,"retry":true}}',
  '{"service":"checkout","level":"info","msg":"order placed","order":{"id":"A-1","items":[1,2,3],"total":12.5e0}}',
  '{"host":"vm","source_type":"file","file":"/var/log/app.log","message":"line with \\"quotes\\" and \\\\ and \\u00e9"}',
  '[1,2,3]',
  '"just a string"',
  '123456789012345678901234567890',
  'null',
  '{}',
  '   ',
  '',
  '{"deep":[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]}',
  '{"emoji":"💩","cjk":"日本語","rtl":"שלום","bom":"\uFEFF"}',
  '{"bad json" 1}',
  '{"a":1}{"b":2}',
]
const ndjsonDictionary = ['\n', '\r\n', '\r', '{', '}', '[', ']', '"', '\\', ':', ',', '\\u0000', '\\ud800', 'true', 'false', 'null', '1e400', '-0', '{"a":', '\t', ' '].map(b)

/** maxLineBytes per header pick: tiny limits make over-long lines and the boundary common. */
const lineLimits = [1, 2, 16, 64, 100, 1024, 65536]

interface LineResult {
  readonly events: string[]
  readonly maxBuffered: number
}

function splitLines(chunks: readonly Buffer[], max: number, parseJson: boolean): LineResult {
  const events: string[] = []
  let maxBuffered = 0
  const splitter = new LineSplitter(
    max,
    (line, lineNo) => {
      check(line.length <= max, 'memory', () => `line ${lineNo} of ${line.length} bytes handed on, over maxLineBytes ${max}`)
      let tag = 'L'
      if (parseJson && !isBlankLine(line)) {
        try {
          JSON.parse(line.toString('utf8'))
          tag = 'J'
        } catch (err) {
          checkMessage((err as Error).message, `JSON.parse of line ${lineNo}`, 512)
          tag = 'X'
        }
      }
      events.push(`${tag}${lineNo}:${line.toString('latin1')}`)
    },
    (prefix, bytes, lineNo) => {
      check(bytes > max, 'wrong', () => `line ${lineNo} reported too long at ${bytes} bytes, limit ${max}`)
      check(prefix.length === Math.min(max, 64 * 1024), 'wrong', () => `too-long prefix of ${prefix.length} bytes, expected ${Math.min(max, 64 * 1024)}`)
      events.push(`T${lineNo}:${bytes}:${prefix.toString('latin1')}`)
    },
  )
  feedScratch(chunks, (chunk) => {
    splitter.push(chunk)
    maxBuffered = Math.max(maxBuffered, splitter.bufferedBytes)
  })
  splitter.end()
  return { events, maxBuffered }
}

// The NDJSON door skips lines of only spaces, tabs and CR.
function isBlankLine(line: Buffer): boolean {
  for (const c of line) if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false
  return true
}

/** What the splitter must produce, computed the simple way on the whole stream. */
function expectedLines(payload: Buffer, max: number): string[] {
  const out: string[] = []
  let start = 0
  let lineNo = 0
  while (start < payload.length) {
    const nl = payload.indexOf(0x0a, start)
    const end = nl === -1 ? payload.length : nl
    let line = payload.subarray(start, end)
    lineNo++
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1)
    if (line.length > max) out.push(`T${lineNo}:${end - start}:${payload.subarray(start, start + Math.min(max, 64 * 1024)).toString('latin1')}`)
    else if (nl !== -1 || end > start) out.push(`L${lineNo}:${line.toString('latin1')}`)
    else lineNo-- // nothing after the last LF
    start = end + 1
  }
  return out
}

export function ndjsonLinesTarget(): FuzzTarget {
  const corpus = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => b(ndjsonSeeds.slice(k, k + 8).join(k % 2 === 0 ? '\n' : '\r\n') + '\n'))
  const opts: MutateOptions = { maxBytes: 16 * 1024, dictionary: ndjsonDictionary, corpus }
  return {
    name: 'ndjson-lines',
    what: 'LineSplitter (src/ingest/tcp/lines.ts) and the door\'s JSON.parse per line, random socket chunks',
    caseTimeMs: 100,
    generate(rng) {
      let payload: Buffer
      if (rng.chance(0.05)) {
        // A line right at a limit, then a CR, LF, or CRLF, or nothing: the boundary cases.
        const max = rng.pick(lineLimits)
        const n = Math.max(0, max + rng.range(-2, 2))
        payload = Buffer.concat([b('{"a":1}\n'), Buffer.alloc(Math.min(n, 70_000), 0x61), b(rng.pick(['\n', '\r\n', '\r', '', '\r\r\n'])), b('{"b":2}')])
        const head = withHeader(rng, payload)
        head[0] = lineLimits.indexOf(max)
        return head
      }
      payload = mutate(rng, rng.pick(corpus), opts)
      return withHeader(rng, payload)
    },
    run(input) {
      const { pick, chunkSeed, payload } = splitHeader(input)
      const max = lineLimits[pick % lineLimits.length]!
      const whole = splitLines([payload], max, true)
      const chunked = splitLines(randomChunks(new Rng(chunkSeed), payload), max, false)
      check(chunked.maxBuffered <= max + 1, 'memory', () => `held ${chunked.maxBuffered} bytes for a partial line, maxLineBytes ${max}`)
      const plain = whole.events.map((e) => e.replace(/^[JX]/, 'L'))
      check(isDeepStrictEqual(plain, chunked.events), 'wrong', () => `whole and chunked differ: ${JSON.stringify(plain).slice(0, 300)} vs ${JSON.stringify(chunked.events).slice(0, 300)}`)
      const expected = expectedLines(payload, max)
      check(isDeepStrictEqual(plain, expected), 'wrong', () => `lines differ from the model: ${JSON.stringify(plain).slice(0, 300)} vs ${JSON.stringify(expected).slice(0, 300)}`)
      let json = 0
      let bad = 0
      let long = 0
      for (const e of whole.events) {
        if (e.startsWith('J')) json++
        else if (e.startsWith('X')) bad++
        else if (e.startsWith('T')) long++
      }
      return long > 0 ? 'too-long line' : bad > 0 ? 'invalid JSON line' : json > 0 ? 'all lines JSON' : 'blank'
    },
  }
}

// ---- syslog ----------------------------------------------------------------------------------

const fixtureNames = () => {
  const dir = join(repoRoot(), 'test/fixtures/syslog')
  return { dir, names: readdirSync(dir).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4)) }
}

/** Every capture as bytes; TCP ones are streams, UDP ones datagrams back to back. */
function syslogCaptures(): { name: string; bin: Buffer }[] {
  const { dir, names } = fixtureNames()
  return names.map((name) => ({ name, bin: readFileSync(join(dir, `${name}.bin`)) }))
}

/** The frames of a capture, cut as its expected file says. */
function captureFrames(name: string): Buffer[] {
  const { dir } = fixtureNames()
  const bin = readFileSync(join(dir, `${name}.bin`))
  const lines = readFileSync(join(dir, `${name}.expected.ndjson`), 'utf8').split('\n').filter((l) => l !== '')
  return lines.map((l) => {
    const f = (JSON.parse(l) as { frame: { offset: number; length: number } }).frame
    return bin.subarray(f.offset, f.offset + f.length)
  })
}

const syslogDictionary = [
  '<', '>', '<13>', '<191>', '<192>', '<0>', '<999>', '1 ', ' ', '  ', '-', '- ', '[', ']', '="', '"', '\\"', '\\]', '\\\\', '\n', '\r\n', '\r',
  '\uFEFF', '@32473', ' tzKnown="1"', '[a b="c"][a d="e"]', '[__proto__ x="y"]', 'Nov 25 15:56:32 ', 'Feb 29 00:00:00 ', 'Feb 30 ', 'Dec 31 23:59:60 ',
  '2026-11-25T15:56:32.708988+00:00 ', '2026-11-25T15:56:32Z ', '9999-12-31T23:59:59.999Z ', '0000-01-01T00:00:00Z ', '2026-11-25T15:56:32+2359 ', '2026-02-29T00:00:00Z ',
  '*Nov 25 15:56:32.123 UTC: ', '123: ', '%LINK-3-UPDOWN: ', 'fe80::1%eth0 ', 'app[1436]: ', 'app: ', 'app[', ': ', '12 ', '999999999 ', '0 ', '4294967295 ',
].map(b)

const frameLimits = [1, 8, 64, 480, 1024, 65536]

interface FrameResult {
  frames: Buffer[]
  kinds: SyslogFrameErrorKind[]
  maxBuffered: number
}

function frameAll(chunks: readonly Buffer[], max: number): FrameResult {
  const out: FrameResult = { frames: [], kinds: [], maxBuffered: 0 }
  const framer = new SyslogFramer({
    maxMessageBytes: max,
    onFrame: (frame) => {
      check(frame.length > 0 && frame.length <= max, 'memory', () => `frame of ${frame.length} bytes handed on, maxMessageBytes ${max}`)
      out.frames.push(Buffer.from(frame))
    },
    onError: (reason, raw, kind) => {
      checkMessage(reason, `framer ${kind} report`, 512)
      check(raw.length <= syslogFrameErrorRawBytesMax, 'memory', () => `error report carries ${raw.length} raw bytes`)
      out.kinds.push(kind)
    },
  })
  feedScratch(chunks, (chunk) => {
    framer.push(chunk)
    out.maxBuffered = Math.max(out.maxBuffered, framer.bufferedBytes)
  })
  framer.end()
  return out
}

export function syslogFramingTarget(): FuzzTarget {
  const captures = syslogCaptures().filter((c) => c.name.includes('tcp'))
  const corpus = captures.map((c) => c.bin)
  corpus.push(Buffer.concat(corpus.slice(0, 4)))
  const opts: MutateOptions = { maxBytes: 16 * 1024, dictionary: syslogDictionary, corpus }
  return {
    name: 'syslog-framing',
    what: 'SyslogFramer (src/ingest/syslog/framing.ts): octet counting and LF framing, random socket chunks',
    caseTimeMs: 100,
    generate(rng) {
      return withHeader(rng, mutate(rng, rng.pick(corpus), opts))
    },
    run(input) {
      const { pick, chunkSeed, payload } = splitHeader(input)
      const max = frameLimits[pick % frameLimits.length]!
      const whole = frameAll([payload], max)
      const chunked = frameAll(randomChunks(new Rng(chunkSeed), payload), max)
      // A frame spanning chunks (its CRLF included), or the digits of a count (at most 9).
      const bound = Math.max(max + 2, 9)
      check(chunked.maxBuffered <= bound && whole.maxBuffered <= bound, 'memory', () => `held ${Math.max(chunked.maxBuffered, whole.maxBuffered)} bytes, maxMessageBytes ${max}`)
      check(isDeepStrictEqual(whole.frames, chunked.frames), 'wrong', () => `frames differ between whole and chunked: ${whole.frames.length} vs ${chunked.frames.length}`)
      check(isDeepStrictEqual(whole.kinds, chunked.kinds), 'wrong', () => `errors differ between whole and chunked: ${whole.kinds.join(',')} vs ${chunked.kinds.join(',')}`)
      return whole.kinds.length > 0 ? `frames and ${[...new Set(whole.kinds)].sort().join('+')}` : whole.frames.length > 0 ? 'frames' : 'nothing'
    },
  }
}

// When a frame arrived: now-ish, the edges of a year (BSD times carry none), a leap day, a fraction.
const receivedTimes = [
  Date.parse('2026-11-25T15:57:00.000Z'),
  Date.parse('2027-01-01T00:00:00.500Z'),
  Date.parse('2026-12-31T23:59:59.999Z'),
  Date.parse('2028-02-29T12:00:00.000Z'),
  Date.parse('2026-11-25T15:57:00.000Z') + 0.25,
  0,
]

const isoPattern = /^(?:\d{4}|[+-]\d{6})-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const facilities = new Set(['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'])
const severities = new Set(['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'])

function checkEvent(e: SyslogEvent, frame: Buffer, remote: string | undefined): void {
  check(isoPattern.test(e.timestamp) && new Date(e.timestamp).toISOString() === e.timestamp, 'wrong', () => `timestamp ${e.timestamp} is not a canonical ISO 8601 UTC time`)
  check(facilities.has(e.facility) && severities.has(e.severity), 'wrong', () => `facility/severity ${e.facility}/${e.severity}`)
  for (const k of ['host', 'app', 'procid', 'msgid'] as const) {
    const v = e[k]
    check(v === null || (typeof v === 'string' && v.length > 0), 'wrong', () => `${k} is ${JSON.stringify(v)}`)
  }
  check(typeof e.message === 'string', 'wrong', () => 'message is not a string')
  if (e.structuredData !== null) {
    for (const [id, params] of Object.entries(e.structuredData)) {
      check(id.length > 0 && typeof params === 'object' && params !== null, 'wrong', () => `SD element ${JSON.stringify(id)}`)
      for (const [name, value] of Object.entries(params)) check(name.length > 0 && typeof value === 'string', 'wrong', () => `SD param ${JSON.stringify(name)}`)
    }
  }
  // The event's text is built by hand on the hot path; it must be exactly what JSON.stringify gives.
  const json = eventJson(e)
  check(json === JSON.stringify(e), 'wrong', () => `eventJson differs from JSON.stringify: ${json.slice(0, 200)}`)
  check(json.length <= 16 * frame.length + 512, 'memory', () => `event of ${json.length} chars from a ${frame.length}-byte frame`)
  // The message is the end of the frame's text (a BOM and one trailing LF or CRLF removed).
  let end = frame.length
  if (end > 0 && frame[end - 1] === 0x0a) {
    end--
    if (end > 0 && frame[end - 1] === 0x0d) end--
  }
  if (isUtf8(frame.subarray(0, end))) {
    const text = frame.toString('utf8', 0, end)
    check(text.endsWith(e.message), 'wrong', () => `message ${JSON.stringify(e.message.slice(0, 80))} is not the end of the frame ${JSON.stringify(text.slice(0, 80))}`)
    for (const k of ['host', 'app', 'procid', 'msgid'] as const) {
      const v = e[k]
      check(v === null || text.includes(v) || v === remote, 'wrong', () => `${k} ${JSON.stringify(v)} is not in the frame`)
    }
  }
}

function syslogParseTarget(name: string, what: string, captures: readonly string[], extra: readonly string[]): FuzzTarget {
  const corpus = [...captures.flatMap((c) => captureFrames(c)), ...extra.map(b)]
  const opts: MutateOptions = { maxBytes: 4096, dictionary: syslogDictionary, corpus }
  return {
    name,
    what,
    caseTimeMs: 50,
    generate(rng) {
      // Header: 1 byte picks the receive time and whether the sender's address is known.
      return Buffer.concat([Buffer.from([rng.u32() & 0xff]), rng.chance(0.1) ? Buffer.from(rng.pick(corpus)) : mutate(rng, rng.pick(corpus), opts)])
    },
    run(input) {
      const pick = input[0] ?? 0
      const frame = input.subarray(1)
      const receivedAt = receivedTimes[pick % receivedTimes.length]!
      const remote = pick & 0x80 ? '192.0.2.7' : undefined
      const opts2 = remote === undefined ? { receivedAt } : { receivedAt, remoteAddress: remote }
      const result = parseSyslog(frame, opts2)
      // Parsing is pure: the same frame again gives the same event (module state must not leak).
      const again = parseSyslog(frame, opts2)
      check(isDeepStrictEqual(result, again), 'wrong', () => 'parsing the same frame twice gave different results')
      if (isSyslogParseError(result)) {
        checkMessage(result.error, 'parse error', 512) // 32 bytes of preview, control bytes escaped as \uXXXX
        return 'not syslog (error)'
      }
      checkEvent(result, frame, remote)
      return result.structuredData !== null ? 'event with SD' : result.timestamp === new Date(Math.floor(receivedAt)).toISOString() ? 'event, time of receipt' : 'event'
    },
  }
}

export function syslog5424Target(): FuzzTarget {
  return syslogParseTarget(
    'syslog-5424',
    'parseSyslog (src/ingest/syslog/parse.ts) on RFC 5424 frames from logger, rsyslog and syslog-ng captures',
    ['logger-rfc5424-tcp-octet', 'logger-rfc5424-udp', 'rsyslog-5424-tcp-octet', 'rsyslog-5424-udp', 'syslog-ng-syslog-tcp'],
    [
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \uFEFFAn application event log entry...',
      '<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It\'s time to make the do-nuts.',
      '<34>1 - - - - - -',
      '<34>1 - - - - - [a x="\\"q\\" \\] \\\\ \\n"][b][a y=""] msg',
      '<0>1 2026-02-29T00:00:00Z h a p m - leap',
    ],
  )
}

export function syslog3164Target(): FuzzTarget {
  return syslogParseTarget(
    'syslog-3164',
    'parseSyslog (src/ingest/syslog/parse.ts) on RFC 3164 / BSD frames from logger, rsyslog, syslog-ng and device formats',
    ['logger-rfc3164-tcp-lf', 'logger-rfc3164-udp', 'rsyslog-traditional-tcp', 'rsyslog-traditional-udp', 'rsyslog-forward-tcp', 'syslog-ng-network-tcp'],
    [
      '<34>Oct 11 22:14:15 mymachine su: \'su root\' failed for lonvick on /dev/pts/8',
      '<189>123: *Nov 25 15:56:32.123 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up',
      '<30>Nov 25 15:56:32 systemd[1]: Started Session 1 of user root.',
      '<189>date=2026-11-25 time=15:56:32 devname=fw01 type=traffic',
      '<13>Nov 25 2026 15:56:32: %ASA-6-302013: Built outbound TCP connection',
      '<14>Nov  5 01:02:03 fe80::1%eth0 kernel: [ 1.0] x',
      'no pri at all, just text',
      '<13>Feb 29 12:00:00 host app: leap day without a year',
    ],
  )
}

// ---- configuration ---------------------------------------------------------------------------

const yamlDictionary = [
  '\n', '  ', '- ', ': ', '{ ', ' }', '[', ']', ', ', '"', "'", '#', '&a ', '*a', '&b [*a, *a, *a]', '? ', '|\n  ', '>-\n  ', '---\n', '...\n', '!!str ', '!!binary ', '!!map ', '!custom ', '%YAML 1.2\n',
  '${X}', '${X:-1}', '${UNSET}', '$${', '${', '${1bad}', '\t', '~', 'null', 'none', 'true', 'yes', '0x10', '0o7', '.inf', '-.inf', '.nan', '1e400', '-1', '0', '99999999999999999999',
  '64mb', '1.5gb', '30s', '7d', '0ms', '5000/s', '50mb/s', 'topic', 'fanout', 'headers', 'direct', 'earliest', 'latest', '#', '*.error', '{service}.{level}', '{', '}',
  'exchanges:\n', 'streams:\n', 'bindings:\n', 'groups:\n', 'auth:\n', 'rateLimits:\n', 'server:\n', '__proto__: 1\n', 'constructor: {}\n', '<<: *a\n',
].map(b)

/** `server:` with its indented lines, `exchanges:` with its lines, and so on (comments dropped). */
function topLevelSections(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('#') || line.trim() === '') continue
    if (/^\S/.test(line) || out.length === 0) out.push(line)
    else out[out.length - 1] += `\n${line}`
  }
  return out.map((s) => `${s}\n`)
}

export function configTarget(): FuzzTarget {
  const root = repoRoot()
  const files = ['config/sluice.yaml', 'test/config/fixtures/design-example.yaml', 'test/config/fixtures/broken.yaml', 'benchmarks/configs/compare.yaml', 'benchmarks/configs/consume.yaml', 'benchmarks/configs/http.yaml']
  const whole: Buffer[] = files.map((f) => readFileSync(join(root, f)))
  // Each top-level section on its own too: smaller documents are parsed faster and mutated deeper.
  const corpus: Buffer[] = [...whole, ...whole.flatMap((f) => topLevelSections(f.toString('utf8')).map(b))]
  corpus.push(b('streams:\n  a: &s { retention: { maxAge: 7d } }\n  b: *s\n'), b(''), b('server: { http: { port: ${PORT:-7400} } }\n'))
  const opts: MutateOptions = { maxBytes: 8 * 1024, dictionary: yamlDictionary, corpus }
  const env = { X: 'x', PORT: '7400', EMPTY: '' }
  return {
    name: 'config-yaml',
    what: 'validateConfigText / parseConfig (src/config) on mutated real configuration files',
    caseTimeMs: 500,
    generate(rng) {
      const base = rng.pick(corpus)
      if (rng.chance(0.5)) return mutate(rng, base, opts)
      // Line-level edits keep more of the YAML structure: duplicate, drop, swap, re-indent lines.
      const lines = base.toString('utf8').split('\n')
      const edits = 1 + rng.int(4)
      for (let e = 0; e < edits && lines.length > 0; e++) {
        const i = rng.int(lines.length)
        const j = rng.int(lines.length)
        switch (rng.int(5)) {
          case 0:
            lines.splice(j, 0, lines[i]!)
            break
          case 1:
            lines.splice(i, 1)
            break
          case 2:
            ;[lines[i], lines[j]] = [lines[j]!, lines[i]!]
            break
          case 3:
            lines[i] = ' '.repeat(rng.int(6)) + lines[i]!.trimStart()
            break
          default:
            lines[i] = lines[i]! + rng.pick(yamlDictionary).toString('utf8')
        }
      }
      return mutate(rng, b(lines.join('\n')), { ...opts, corpus: [b(lines.join('\n'))] })
    },
    run(input) {
      const text = input.toString('utf8')
      const result = validateConfigText(text, { env })
      if (result.ok) {
        check(Object.isFrozen(result.config) && Object.isFrozen(result.config.server), 'wrong', () => 'a valid config is not frozen')
      } else {
        check(result.problems.length > 0, 'unclear', () => 'invalid with no problem listed')
        for (const p of result.problems) checkMessage(p, 'config problem', 4096)
      }
      // parseConfig must agree, and throw nothing but the config error (checked on one case in
      // eight: it parses the same text again).
      if (input.length % 8 !== 0) return result.ok ? 'valid' : result.problems.some((p) => p.includes('YAML syntax')) ? 'invalid (YAML syntax)' : 'invalid (schema)'
      try {
        parseConfig(text, { env, source: 'fuzz.yaml' })
        check(result.ok, 'wrong', () => 'parseConfig accepted what validateConfigText refused')
        return 'valid'
      } catch (err) {
        check(err instanceof SluiceError && err.code === 'SLUICE_ERR_CONFIG', 'crash', () => `parseConfig threw ${String(err)}`)
        check(!result.ok, 'wrong', () => 'parseConfig refused what validateConfigText accepted')
        return /YAML syntax/.test((err as Error).message) ? 'invalid (YAML syntax)' : 'invalid (schema)'
      }
    },
  }
}
