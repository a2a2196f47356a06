// The router's own input and output shapes. The config and AMQP layers translate into these, so
// the router never depends on YAML or wire formats.

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers'

export type UnroutablePolicy = 'drop' | 'reject'

export interface ExchangeDef {
  name: string
  type: ExchangeType
  /** Exchange that receives events this exchange matched no binding for (AMQP `alternate-exchange`). */
  alternate?: string
  /** What the caller should do with an event that reached no stream; default `drop`. */
  unroutable?: UnroutablePolicy
}

export type HeaderValue = string | number | boolean | null

export interface BindingDef {
  exchange: string
  /** Exactly one of `stream` and `toExchange` names the destination. */
  stream?: string
  toExchange?: string
  /** Binding key for direct and topic exchanges; absent means `""`, as in AMQP. */
  key?: string
  /** Headers exchanges only; default `all`. An `x-match` entry in `headers` is read when this is absent. */
  match?: 'all' | 'any'
  /** Headers exchanges only. `null` means "attribute present, any value" (AMQP `void`). */
  headers?: Readonly<Record<string, HeaderValue>>
}

export interface RouteResult {
  /** Each stream at most once, whatever number of paths led there. */
  readonly streams: readonly string[]
  /** True when the event reached no stream, alternates included. */
  readonly unroutable: boolean
  /** The published-to exchange's policy; set only when `unroutable`. */
  readonly policy?: UnroutablePolicy | undefined
}
