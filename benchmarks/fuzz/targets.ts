// Every parser that faces the network (and the configuration), as fuzz targets.

import type { FuzzTarget } from './engine.js'
import { amqpFieldTableTarget, amqpFramesTarget, amqpMethodsTarget } from './targets-amqp.js'
import { httpEnvelopeTarget, httpGzipTarget, httpJsonTarget, httpNdjsonTarget } from './targets-http.js'
import { configTarget, ndjsonLinesTarget, syslog3164Target, syslog5424Target, syslogFramingTarget } from './targets-text.js'

export const targetFactories: Readonly<Record<string, () => FuzzTarget>> = {
  'ndjson-lines': ndjsonLinesTarget,
  'syslog-framing': syslogFramingTarget,
  'syslog-5424': syslog5424Target,
  'syslog-3164': syslog3164Target,
  'amqp-frames': amqpFramesTarget,
  'amqp-methods': amqpMethodsTarget,
  'amqp-field-table': amqpFieldTableTarget,
  'http-json': httpJsonTarget,
  'http-ndjson': httpNdjsonTarget,
  'http-envelope': httpEnvelopeTarget,
  'http-gzip': httpGzipTarget,
  'config-yaml': configTarget,
}
