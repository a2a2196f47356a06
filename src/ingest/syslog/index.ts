// The syslog door's pure parts: RFC 6587 framing of a TCP byte stream, and parsing of one frame
// (a TCP frame or a UDP datagram) into the event body. The TCP/UDP listener wires them to sockets.
export { SyslogFramer, syslogFrameErrorRawBytesMax, type SyslogFrameErrorKind, type SyslogFramerOptions } from './framing.js'
export {
  isSyslogParseError,
  parseSyslog,
  syslogDefaultPri,
  type SyslogEvent,
  type SyslogFacility,
  type SyslogParseError,
  type SyslogParseOptions,
  type SyslogSeverity,
} from './parse.js'
