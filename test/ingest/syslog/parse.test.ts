import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isSyslogParseError, parseSyslog, type SyslogEvent } from '../../../src/ingest/syslog/parse.js'
import { capturedAt, expectedEvent, fixtureFrame, loadFixture, tcpFixtures, udpFixtures } from './fixtures.js'

const R = capturedAt // 2026-11-25T15:57:00.000Z
const RISO = '2026-11-25T15:57:00.000Z'
const parse = (frame: string | Buffer, receivedAt = R, remoteAddress?: string) =>
  parseSyslog(typeof frame === 'string' ? Buffer.from(frame, 'utf8') : frame, remoteAddress === undefined ? { receivedAt } : { receivedAt, remoteAddress })

// Fields a case does not name are null (structuredData, host, …), message ''.
function event(fields: Partial<SyslogEvent> & Pick<SyslogEvent, 'timestamp' | 'facility' | 'severity'>): SyslogEvent {
  return { host: null, app: null, procid: null, msgid: null, structuredData: null, message: '', ...fields }
}

const facilities = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7']
const severities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']

describe('parseSyslog on the captured fixtures', () => {
  for (const name of udpFixtures) {
    it(`${name}: every datagram parses to the expected event`, () => {
      const fixture = loadFixture(name)
      // The datagrams tile the capture exactly; their boundaries come from the expected file.
      let offset = 0
      for (const line of fixture.expected) {
        expect(line.frame.offset).toBe(offset)
        offset += line.frame.length
      }
      expect(offset).toBe(fixture.bin.length)
      const events = fixture.expected.map((line) => parse(fixtureFrame(fixture, line)))
      expect(events).toEqual(fixture.expected.map((line) => expectedEvent(line)))
    })
  }

  for (const name of tcpFixtures) {
    it(`${name}: every frame, cut as the fixture cuts it (a counted LF included), parses to the expected event`, () => {
      const fixture = loadFixture(name)
      const events = fixture.expected.map((line) => parse(fixtureFrame(fixture, line)))
      expect(events).toEqual(fixture.expected.map((line) => expectedEvent(line)))
    })
  }

  it('the mapping keeps PRI: facility * 8 + severity of every expected line is its pri', () => {
    for (const name of [...tcpFixtures, ...udpFixtures]) {
      for (const line of loadFixture(name).expected) expect(facilities.indexOf(line.facility) * 8 + severities.indexOf(line.severity)).toBe(line.pri)
    }
  })

  it('a NILVALUE timestamp becomes the receive time', () => {
    const fixture = loadFixture('logger-rfc5424-tcp-lf')
    const tick = fixture.expected.find((line) => line.app === 'cron')!
    expect(tick.time).toBeNull()
    const receivedAt = Date.parse('2026-11-25T15:56:32.724Z')
    expect(parse(fixtureFrame(fixture, tick), receivedAt)).toEqual({ ...expectedEvent(tick, receivedAt), timestamp: '2026-11-25T15:56:32.724Z' })
  })
})

// [what it shows, frame, expected event]
const rfc5424Cases: [string, string | Buffer, SyslogEvent][] = [
  [
    'RFC 5424 example 1: NIL PROCID and SD, BOM before MSG',
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \uFEFF'su root' failed for lonvick on /dev/pts/8",
    event({ timestamp: '2003-10-11T22:14:15.003Z', facility: 'auth', severity: 'crit', host: 'mymachine.example.com', app: 'su', msgid: 'ID47', message: "'su root' failed for lonvick on /dev/pts/8" }),
  ],
  [
    'RFC 5424 example 2: microseconds and a -07:00 offset, IP host',
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    event({ timestamp: '2003-08-24T12:14:15.000Z', facility: 'local4', severity: 'notice', host: '192.0.2.1', app: 'myproc', procid: '8710', message: "%% It's time to make the do-nuts." }),
  ],
  [
    'RFC 5424 example 3: one SD element, BOM',
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \uFEFFAn application event log entry...',
    event({
      timestamp: '2003-10-11T22:14:15.003Z', facility: 'local4', severity: 'notice', host: 'mymachine.example.com', app: 'evntslog', msgid: 'ID47',
      structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' } }, message: 'An application event log entry...',
    }),
  ],
  [
    'RFC 5424 example 4: two SD elements and no MSG',
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
    event({
      timestamp: '2003-10-11T22:14:15.003Z', facility: 'local4', severity: 'notice', host: 'mymachine.example.com', app: 'evntslog', msgid: 'ID47',
      structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' }, 'examplePriority@32473': { class: 'high' } },
    }),
  ],
  [
    'pino-syslog (modern): Z time without fraction, JSON as MSG',
    '<134>1 2026-11-25T15:58:10Z vm pinoapp 1684 - - {"level":30,"time":1795622290220,"pid":1684,"hostname":"vm","msg":"hello from pino é"}',
    event({ timestamp: '2026-11-25T15:58:10.000Z', facility: 'local0', severity: 'info', host: 'vm', app: 'pinoapp', procid: '1684', message: '{"level":30,"time":1795622290220,"pid":1684,"hostname":"vm","msg":"hello from pino é"}' }),
  ],
  [
    'pino-syslog with base dropping hostname and pid: the literal "undefined" is kept',
    '<131>1 2026-11-25T15:58:10.001Z undefined pinoapp undefined - - {"level":50,"msg":"boom"}',
    event({ timestamp: '2026-11-25T15:58:10.001Z', facility: 'local0', severity: 'err', host: 'undefined', app: 'pinoapp', procid: 'undefined', message: '{"level":50,"msg":"boom"}' }),
  ],
  [
    'a systemd unit forwarded as RFC 5424 with a meta SD element',
    '<30>1 2026-11-25T15:56:32.123456+00:00 vm systemd 1 - [meta sequenceId="12"] Started Session 3 of user root.',
    event({ timestamp: '2026-11-25T15:56:32.123Z', facility: 'daemon', severity: 'info', host: 'vm', app: 'systemd', procid: '1', structuredData: { meta: { sequenceId: '12' } }, message: 'Started Session 3 of user root.' }),
  ],
  [
    'Juniper-style: milliseconds, +01:00, MSGID, enterprise SD',
    '<165>1 2026-11-25T15:56:32.123+01:00 fw1 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.26 source-address="10.0.0.1" destination-address="192.0.2.10"] session created 10.0.0.1/51234->192.0.2.10/443',
    event({
      timestamp: '2026-11-25T14:56:32.123Z', facility: 'local4', severity: 'notice', host: 'fw1', app: 'RT_FLOW', msgid: 'RT_FLOW_SESSION_CREATE',
      structuredData: { 'junos@2636.1.1.1.2.26': { 'source-address': '10.0.0.1', 'destination-address': '192.0.2.10' } }, message: 'session created 10.0.0.1/51234->192.0.2.10/443',
    }),
  ],
  [
    'a -05:30 offset and one fraction digit',
    '<13>1 2026-11-25T10:26:32.5-05:30 h a - - - x',
    event({ timestamp: '2026-11-25T15:56:32.500Z', facility: 'user', severity: 'notice', host: 'h', app: 'a', message: 'x' }),
  ],
  [
    'a +hhmm offset without colon (seen in the wild)',
    '<13>1 2026-11-26T01:56:32+1000 h a - - - x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'h', app: 'a', message: 'x' }),
  ],
  [
    'lowercase t and z, nanoseconds cut (not rounded) to milliseconds',
    '<13>1 2026-11-25t15:56:32.999999999z h a - - - x',
    event({ timestamp: '2026-11-25T15:56:32.999Z', facility: 'user', severity: 'notice', host: 'h', app: 'a', message: 'x' }),
  ],
  [
    'every field NIL and no MSG: the receive time',
    '<0>1 - - - - - -',
    event({ timestamp: RISO, facility: 'kern', severity: 'emerg' }),
  ],
  [
    'an unreadable TIMESTAMP: the receive time, the rest still parsed',
    '<13>1 2026-13-45T99:00:00Z h a - - - x',
    event({ timestamp: RISO, facility: 'user', severity: 'notice', host: 'h', app: 'a', message: 'x' }),
  ],
  [
    'a header cut short: the missing fields are null',
    '<13>1 2026-11-25T15:56:32Z vm',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm' }),
  ],
  [
    'no STRUCTURED-DATA field at all: the rest is the message',
    '<13>1 2026-11-25T15:56:32Z vm app 1 ID plain message',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', procid: '1', msgid: 'ID', message: 'plain message' }),
  ],
  [
    'malformed STRUCTURED-DATA: structuredData null, its text kept as the message',
    '<13>1 2026-11-25T15:56:32Z vm app - - [broken sd="x" message',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: '[broken sd="x" message' }),
  ],
  [
    'SD values: an unescaped [, escaped \\ " ], a backslash before another byte kept, an empty value',
    String.raw`<13>1 - vm app - - [a@1 v="x[y" w="q\\\"z\]" o="c:\d"][b@1 empty=""] m`,
    event({ timestamp: RISO, facility: 'user', severity: 'notice', host: 'vm', app: 'app', structuredData: { 'a@1': { v: 'x[y', w: 'q\\"z]', o: 'c:\\d' }, 'b@1': { empty: '' } }, message: 'm' }),
  ],
  [
    'a repeated SD-ID adds to the first element; a repeated name keeps the last value',
    '<13>1 - vm app - - [x@1 a="1"][x@1 b="2" a="3"] m',
    event({ timestamp: RISO, facility: 'user', severity: 'notice', host: 'vm', app: 'app', structuredData: { 'x@1': { a: '3', b: '2' } }, message: 'm' }),
  ],
  [
    'MSG keeps its leading spaces after the one SP that follows SD (rsyslog re-sending BSD input)',
    '<12>1 2026-11-25T15:56:33+00:00 vm api 1486 - -   request slow',
    event({ timestamp: '2026-11-25T15:56:33.000Z', facility: 'user', severity: 'warning', host: 'vm', app: 'api', procid: '1486', message: '  request slow' }),
  ],
  [
    'an APP-NAME with / and a trailing CRLF',
    '<18>1 2026-11-25T15:56:32.726128+00:00 vm postfix/smtpd 1428 - - connect from unknown[192.0.2.1]\r\n',
    event({ timestamp: '2026-11-25T15:56:32.726Z', facility: 'mail', severity: 'crit', host: 'vm', app: 'postfix/smtpd', procid: '1428', message: 'connect from unknown[192.0.2.1]' }),
  ],
  [
    'invalid UTF-8 in MSG and in an SD value becomes U+FFFD',
    Buffer.concat([Buffer.from('<13>1 - - - - - [x v="a'), Buffer.from([0xff]), Buffer.from('"] caf'), Buffer.from([0xc3]), Buffer.from(' x'), Buffer.from([0xed, 0xa0, 0x80])]),
    event({ timestamp: RISO, facility: 'user', severity: 'notice', structuredData: { x: { v: 'a\uFFFD' } }, message: 'caf\uFFFD x\uFFFD\uFFFD\uFFFD' }),
  ],
  [
    'a BOM that is not at the start of MSG stays',
    '<13>1 - - - - - - a\uFEFFb',
    event({ timestamp: RISO, facility: 'user', severity: 'notice', message: 'a\uFEFFb' }),
  ],
]

// RFC 3164 and what BSD-style senders write; R (the receive time) is 2026-11-25T15:57:00Z.
const rfc3164Cases: [string, string | Buffer, SyslogEvent][] = [
  [
    'RFC 3164 example: tag with colon',
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    event({ timestamp: '2026-10-11T22:14:15.000Z', facility: 'auth', severity: 'crit', host: 'mymachine', app: 'su', message: "'su root' failed for lonvick on /dev/pts/8" }),
  ],
  [
    'a space-padded day and tag[pid]:',
    '<38>Nov  5 03:04:05 vm sshd[812]: Accepted publickey for root from 192.0.2.4 port 51234 ssh2',
    event({ timestamp: '2026-11-05T03:04:05.000Z', facility: 'auth', severity: 'info', host: 'vm', app: 'sshd', procid: '812', message: 'Accepted publickey for root from 192.0.2.4 port 51234 ssh2' }),
  ],
  [
    'an unpadded one-digit day',
    '<38>Nov 5 03:04:05 vm sshd[812]: x',
    event({ timestamp: '2026-11-05T03:04:05.000Z', facility: 'auth', severity: 'info', host: 'vm', app: 'sshd', procid: '812', message: 'x' }),
  ],
  [
    'journald / libc syslog(): no HOSTNAME, tag[pid]: right after the time',
    '<30>Nov 25 15:56:32 systemd[1]: Started Session 3 of user root.',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'daemon', severity: 'info', app: 'systemd', procid: '1', message: 'Started Session 3 of user root.' }),
  ],
  [
    'no HOSTNAME, tag: with colons in the message',
    '<86>Nov 25 15:56:32 sudo: pam_unix(sudo:session): session opened for user root',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'authpriv', severity: 'info', app: 'sudo', message: 'pam_unix(sudo:session): session opened for user root' }),
  ],
  [
    'no HOSTNAME, a tag in parentheses',
    '<86>Nov 25 15:56:32 (sd-pam)[1234]: pam_unix(systemd-user:session): session closed',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'authpriv', severity: 'info', app: '(sd-pam)', procid: '1234', message: 'pam_unix(systemd-user:session): session closed' }),
  ],
  [
    'Cisco IOS: sequence number, milliseconds, ":" after the time, %FAC-SEV-MNEMONIC as the tag',
    '<189>123: Nov 25 15:56:32.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up',
    event({ timestamp: '2026-11-25T15:56:32.123Z', facility: 'local7', severity: 'notice', app: '%LINK-3-UPDOWN', message: 'Interface GigabitEthernet0/1, changed state to up' }),
  ],
  [
    'Cisco IOS: unsynchronised clock marker * and UTC',
    '<187>45: *Nov 25 15:56:32.456 UTC: %SYS-3-CPUHOG: Task is running for (2000)msecs, more than (2000)msecs',
    event({ timestamp: '2026-11-25T15:56:32.456Z', facility: 'local7', severity: 'err', app: '%SYS-3-CPUHOG', message: 'Task is running for (2000)msecs, more than (2000)msecs' }),
  ],
  [
    'Cisco ASA: a year before the time',
    '<166>Nov 25 2024 15:56:32: %ASA-6-302013: Built outbound TCP connection 123 for outside:192.0.2.10/443 (192.0.2.10/443) to inside:10.0.0.5/51234 (10.0.0.5/51234)',
    event({ timestamp: '2024-11-25T15:56:32.000Z', facility: 'local4', severity: 'info', app: '%ASA-6-302013', message: 'Built outbound TCP connection 123 for outside:192.0.2.10/443 (192.0.2.10/443) to inside:10.0.0.5/51234 (10.0.0.5/51234)' }),
  ],
  [
    'MikroTik: topics as a bare tag',
    '<134>Nov 25 15:56:32 MikroTik script,info hello from router',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'local0', severity: 'info', host: 'MikroTik', app: 'script,info', message: 'hello from router' }),
  ],
  [
    'FortiGate: key=value without a syslog timestamp: all of it is the message',
    '<189>date=2026-11-25 time=15:56:32 devname="FGT60F" type="traffic" subtype="forward" level="notice" srcip=10.0.0.5',
    event({ timestamp: RISO, facility: 'local7', severity: 'notice', message: 'date=2026-11-25 time=15:56:32 devname="FGT60F" type="traffic" subtype="forward" level="notice" srcip=10.0.0.5' }),
  ],
  [
    'no timestamp but a plain tag',
    '<14>myapp[42]: started',
    event({ timestamp: RISO, facility: 'user', severity: 'info', app: 'myapp', procid: '42', message: 'started' }),
  ],
  [
    'no PRI: user.notice',
    'Nov 25 15:56:32 vm web: no pri here',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'web', message: 'no pri here' }),
  ],
  [
    'no PRI and no header: a plain line of text',
    'just a line of text',
    event({ timestamp: RISO, facility: 'user', severity: 'notice', message: 'just a line of text' }),
  ],
  [
    'an RFC 3339 time in the BSD layout (rsyslog ForwardFormat)',
    '<13>2026-11-25T15:56:32.5+01:00 vm app: x',
    event({ timestamp: '2026-11-25T14:56:32.500Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: 'x' }),
  ],
  [
    'HOSTNAME - (rsyslog passes it on) and a bare tag',
    '<79>Nov 25 15:56:33 - cron tick',
    event({ timestamp: '2026-11-25T15:56:33.000Z', facility: 'cron', severity: 'debug', app: 'cron', message: 'tick' }),
  ],
  [
    'tag[pid] without a colon (rsyslog traditional, 5424 input) and a kept BOM',
    '<12>Nov 25 15:56:33 vm api[1482] \uFEFFrequest slow',
    event({ timestamp: '2026-11-25T15:56:33.000Z', facility: 'user', severity: 'warning', host: 'vm', app: 'api', procid: '1482', message: 'request slow' }),
  ],
  [
    'an IPv6 host',
    '<13>Nov 25 15:56:32 2001:db8::1 app: x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: '2001:db8::1', app: 'app', message: 'x' }),
  ],
  [
    'an IPv6 host that ends in a colon is a host, not a tag',
    '<13>Nov 25 15:56:32 fe80:: app: x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'fe80::', app: 'app', message: 'x' }),
  ],
  [
    'an IPv4 host (syslog-ng puts the sender IP in for a missing HOSTNAME)',
    '<79>Nov 25 15:56:35 127.0.0.1 cron: tick',
    event({ timestamp: '2026-11-25T15:56:35.000Z', facility: 'cron', severity: 'debug', host: '127.0.0.1', app: 'cron', message: 'tick' }),
  ],
  [
    'HOSTNAME "undefined" is a host',
    '<13>Nov 25 15:56:32 undefined app: x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'undefined', app: 'app', message: 'x' }),
  ],
  [
    'tag: with no space before the message',
    '<13>Nov 25 15:56:32 vm app:msg',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: 'msg' }),
  ],
  [
    'only one SP after the tag is removed; further leading spaces stay',
    '<13>Nov 25 15:56:32 vm app:   indented',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: '  indented' }),
  ],
  [
    'JSON after the host is the message, not a tag',
    '<13>Nov 25 15:56:32 vm {"a":1,"b":"c d"}',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', message: '{"a":1,"b":"c d"}' }),
  ],
  [
    'an unclosed [ after the host: no tag',
    '<13>Nov 25 15:56:32 vm app[12 oops',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', message: 'app[12 oops' }),
  ],
  [
    'only a host after the time',
    '<13>Nov 25 15:56:32 vm',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm' }),
  ],
  [
    'an impossible date is no timestamp: the receive time, all of it the message',
    '<13>Feb 30 10:00:00 vm app: x',
    event({ timestamp: RISO, facility: 'user', severity: 'notice', message: 'Feb 30 10:00:00 vm app: x' }),
  ],
  [
    'a lowercase month name',
    '<13>nov 25 15:56:32 vm app: x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: 'x' }),
  ],
  [
    'PRI 0 and 191, the extremes',
    '<191>Nov 25 15:56:32 vm app: x',
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'local7', severity: 'debug', host: 'vm', app: 'app', message: 'x' }),
  ],
  [
    'invalid UTF-8 after a valid PRI is replaced, not rejected',
    Buffer.concat([Buffer.from('<13>Nov 25 15:56:32 vm app: '), Buffer.from([0xc3, 0x28, 0xff])]),
    event({ timestamp: '2026-11-25T15:56:32.000Z', facility: 'user', severity: 'notice', host: 'vm', app: 'app', message: '\uFFFD(\uFFFD' }),
  ],
]

describe('parseSyslog RFC 5424', () => {
  for (const [what, frame, expected] of rfc5424Cases) {
    it(what, () => {
      expect(parse(frame)).toEqual(expected)
    })
  }

  it('an SD-ID "__proto__" is an own key and pollutes nothing', () => {
    const result = parse('<13>1 - - - - - [__proto__ polluted="yes"][x __proto__="v"] m') as SyslogEvent
    expect(JSON.stringify(result.structuredData)).toBe('{"__proto__":{"polluted":"yes"},"x":{"__proto__":"v"}}')
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })
})

describe('parseSyslog RFC 3164 and BSD-style variants', () => {
  for (const [what, frame, expected] of rfc3164Cases) {
    it(what, () => {
      expect(parse(frame)).toEqual(expected)
    })
  }
})

describe('parseSyslog: the year of a BSD time', () => {
  // [received at, BSD time, expected]: the latest year that puts the time at most one day after receipt.
  const cases: [string, string, string][] = [
    ['2027-01-01T00:00:05Z', 'Dec 31 23:59:59', '2026-12-31T23:59:59.000Z'],
    ['2026-12-31T23:59:50Z', 'Jan  1 00:00:02', '2027-01-01T00:00:02.000Z'],
    ['2026-11-25T15:57:00Z', 'Nov 26 15:00:00', '2026-11-26T15:00:00.000Z'],
    ['2026-11-25T15:57:00Z', 'Nov 27 15:00:00', '2025-11-27T15:00:00.000Z'],
    ['2027-03-01T00:00:00Z', 'Feb 29 12:00:00', '2024-02-29T12:00:00.000Z'],
    ['2028-03-01T00:00:00Z', 'Feb 29 12:00:00', '2028-02-29T12:00:00.000Z'],
  ]
  for (const [receivedAt, time, expected] of cases) {
    it(`${time} received at ${receivedAt} is ${expected}`, () => {
      expect(parse(`<13>${time} vm app: x`, Date.parse(receivedAt))).toMatchObject({ timestamp: expected })
    })
  }
})

describe('parseSyslog: time arithmetic agrees with Date', () => {
  it('an RFC 3339 time anywhere in 0000–9999, with any offset, comes back as Date prints it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62_167_219_200_000 + 86_400_000, max: 253_402_300_799_999 - 86_400_000 }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (t, offsetMinutes) => {
          // Write t as local time at the offset, e.g. 2026-11-25T17:56:32.123+02:00.
          const local = new Date(t + offsetMinutes * 60_000).toISOString().slice(0, 23)
          const sign = offsetMinutes < 0 ? '-' : '+'
          const abs = Math.abs(offsetMinutes)
          const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
          const result = parse(`<13>1 ${local}${offset} h a - - - x`)
          expect(result).toMatchObject({ timestamp: new Date(t).toISOString() })
        },
      ),
      { numRuns: 5000 },
    )
  })

  it('years before 100 and around the edges', () => {
    expect(parse('<13>1 0000-01-01T00:00:00Z h a - - - x')).toMatchObject({ timestamp: '0000-01-01T00:00:00.000Z' })
    expect(parse('<13>1 0099-02-28T23:59:59.999Z h a - - - x')).toMatchObject({ timestamp: '0099-02-28T23:59:59.999Z' })
    expect(parse('<13>1 1969-12-31T23:59:59.999Z h a - - - x')).toMatchObject({ timestamp: '1969-12-31T23:59:59.999Z' })
    expect(parse('<13>1 9999-12-31T23:59:59.999-01:00 h a - - - x')).toMatchObject({ timestamp: '+010000-01-01T00:59:59.999Z' })
    expect(parse('<13>1 0000-01-01T00:30:00+01:00 h a - - - x')).toMatchObject({ timestamp: '-000001-12-31T23:30:00.000Z' })
    expect(parse('<13>1 2024-02-29T12:00:00Z h a - - - x')).toMatchObject({ timestamp: '2024-02-29T12:00:00.000Z' })
    expect(parse('<13>1 2023-02-29T12:00:00Z h a - - - x')).toMatchObject({ timestamp: RISO }) // no such day
    expect(parse('<13>1 2026-11-25T23:59:60Z h a - - - x')).toMatchObject({ timestamp: '2026-11-26T00:00:00.000Z' }) // leap second
  })
})

describe('parseSyslog: host from remoteAddress', () => {
  it('a frame without HOSTNAME takes the sender address; one with HOSTNAME keeps its own', () => {
    expect(parse('<13>1 - - app - - - x', R, '192.0.2.7')).toMatchObject({ host: '192.0.2.7' })
    expect(parse('<30>Nov 25 15:56:32 systemd[1]: x', R, '192.0.2.7')).toMatchObject({ host: '192.0.2.7', app: 'systemd' })
    expect(parse('just text', R, '192.0.2.7')).toMatchObject({ host: '192.0.2.7' })
    expect(parse('<13>1 - vm app - - - x', R, '192.0.2.7')).toMatchObject({ host: 'vm' })
    expect(parse('<13>Nov 25 15:56:32 vm app: x', R, '192.0.2.7')).toMatchObject({ host: 'vm' })
  })
})

describe('parseSyslog: frames that are not syslog', () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['empty', '', /^empty frame$/],
    ['a bare LF', '\n', /^empty frame$/],
    ['a bare CRLF', '\r\n', /^empty frame$/],
    ['PRI over 191', '<999>', /PRI 999 is over 191/],
    ['PRI 192 before a valid 5424 header', '<192>1 - - - - - - x', /PRI 192 is over 191/],
    ['PRI without digits', '<>x', /no valid PRI/],
    ['PRI with letters', '<abc>x', /no valid PRI/],
    ['PRI without ">"', '<13', /no valid PRI/],
    ['PRI with four digits', '<0013>x', /no valid PRI/],
    ['PRI negative', '<-1>x', /no valid PRI/],
    ['binary junk', Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x10, 0x80]), /no PRI, and the frame is not text/],
    ['invalid UTF-8 without PRI', Buffer.from([0xc3, 0x28, 0x41]), /no PRI, and the frame is not text/],
    ['a NUL inside text without PRI', 'abc\0def', /no PRI, and the frame is not text/],
  ]
  for (const [what, frame, reason] of cases) {
    it(what, () => {
      const result = parse(frame)
      expect(isSyslogParseError(result)).toBe(true)
      expect(result).toEqual({ error: expect.stringMatching(reason) })
    })
  }

  it('the reason shows the start of the frame, printable', () => {
    expect(parse('<999>1 2026-11-25T15:56:32Z vm app - - - a long message that goes on')).toEqual({
      error: 'PRI 999 is over 191 (facility 23, severity 7): "<999>1 2026-11-25T15:56:32Z vm a"…',
    })
  })
})

describe('parseSyslog never throws', () => {
  const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
  const prefixes = ['', '<13>', '<13>1 ', '<13>1 2026-11-25T15:56:32Z h a p m [', '<13>Nov 25 15:56:32 ', '<189>1: *Nov 25 15:56:32.1 ', '<13>2026-11-25T']

  it('on random bytes behind every kind of header start, and returns an event or a reason', () => {
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 4_102_444_800_000 }), (prefix, tail, receivedAt) => {
        const result = parseSyslog(Buffer.concat([Buffer.from(prefix), tail]), { receivedAt })
        if (isSyslogParseError(result)) {
          expect(result.error).toMatch(/^(empty frame|no valid PRI|PRI \d+ is over 191|no PRI, and the frame is not text)/)
        } else {
          expect(result.timestamp).toMatch(isoTime)
          expect(facilities).toContain(result.facility)
          expect(severities).toContain(result.severity)
          expect(typeof result.message).toBe('string')
          expect(JSON.parse(JSON.stringify(result))).toEqual(result)
        }
      }),
      { numRuns: 3000, interruptAfterTimeLimit: 20_000 },
    )
  })

  it('on random text in the syslog alphabet', () => {
    const alphabet = fc.constantFrom(...'<>1 -[]="\\:0123456789NovDec.TZ+\n'.split(''))
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 80 }), (chars) => {
        const result = parseSyslog(Buffer.from(chars.join('')), { receivedAt: R })
        expect(isSyslogParseError(result) || typeof result.message === 'string').toBe(true)
      }),
      { numRuns: 3000, interruptAfterTimeLimit: 20_000 },
    )
  })
})

describe('event JSON of the syslog door', () => {
  it('is exactly JSON.stringify of the parsed event', async () => {
    const { eventJson } = await import('../../../src/ingest/syslog/listener.js')
    const { parseSyslog } = await import('../../../src/ingest/syslog/parse.js')
    for (const line of [
      '<134>1 2026-11-25T15:56:32.708988+00:00 vm web - - [timeQuality tzKnown="1" isSynced="0"][x@1 a="q\\"uote\\\\" b="é"] GET "/" \u2028 200',
      '<12>Nov 25 15:56:32 vm api[1436]: request slow\ttab',
      '<79>1 - - cron - - - tick',
    ]) {
      const ev = parseSyslog(Buffer.from(line), { receivedAt: Date.UTC(2026, 10, 25) })
      if ('error' in ev) throw new Error(ev.error)
      expect(eventJson(ev)).toBe(JSON.stringify(ev))
    }
  })
})

describe('parseSyslog: findings of the fuzzer (benchmarks/fuzz.ts)', () => {
  it('an empty PID (`app[]:`) is no PID: procid null, never an empty string', () => {
    expect(parse('<18>2026-11-25T15:56:33.491022+00:00 vm postfix/smtpd[]: hello')).toEqual(
      event({ timestamp: '2026-11-25T15:56:33.491Z', facility: 'mail', severity: 'crit', host: 'vm', app: 'postfix/smtpd', procid: null, message: 'hello' }),
    )
    expect(parse('<13>Nov 25 15:56:32 vm app[]')).toMatchObject({ app: 'app', procid: null })
  })
})
