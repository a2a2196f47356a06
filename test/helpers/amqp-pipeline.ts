/** A small YAML pipeline for AMQP tests: one config-declared exchange, stream and group. */
export const amqpPipeline = `
exchanges:
  cfg-events: { type: topic }
streams:
  cfg-stream: {}
bindings:
  - { exchange: cfg-events, stream: cfg-stream, key: "#" }
groups:
  cfg-group: { stream: cfg-stream, maxDeliveries: 0 }
`
