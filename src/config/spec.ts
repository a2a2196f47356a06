// The vocabulary of the key table: what a key may hold. Defaults and bounds are written in the
// same human syntax as the file (`64mb`, `30s`), so the docs show them exactly as a user would
// type them and the validator checks them with the same code it uses for the file.

/** Kinds of names other keys can refer to; each kind is its own namespace. */
export type NameKind = 'exchange' | 'stream' | 'group' | 'apiKey'

interface Doc {
  /** One line for docs/configuration.md. */
  readonly doc: string
}

// `default: null` marks an optional key whose absence means "none"; `required: true` a key with
// no default. Every other leaf has a default.
interface Presence<T> {
  readonly default?: T | null
  readonly required?: true
  /** Also accepts `none` (or an empty value) for "no limit", although there is a default. */
  readonly nullable?: true
  /** A list item's name that other keys refer to (an API key's name). */
  readonly declares?: NameKind
}

export interface StringSpec extends Doc, Presence<string> {
  readonly type: 'string'
  readonly nonEmpty?: true
}
/** A safe name (exchange, stream, group); `ref` makes it a reference checked after validation. */
export interface NameSpec extends Doc, Presence<string> {
  readonly type: 'name'
  readonly ref?: NameKind
}
/** A routing-key template such as `{service}.{level}`. */
export interface TemplateSpec extends Doc, Presence<string> {
  readonly type: 'template'
}
/** An IP address or CIDR block. */
export interface RemoteSpec extends Doc, Presence<string> {
  readonly type: 'remote'
}
export interface IntSpec extends Doc, Presence<number> {
  readonly type: 'int'
  readonly min?: number
  readonly max?: number
}
export interface NumberSpec extends Doc, Presence<number> {
  readonly type: 'number'
  readonly min?: number
  readonly max?: number
}
export interface BoolSpec extends Doc, Presence<boolean> {
  readonly type: 'bool'
}
export interface SizeSpec extends Doc, Presence<string> {
  readonly type: 'size'
  readonly min?: string
  readonly max?: string
}
export interface DurationSpec extends Doc, Presence<string> {
  readonly type: 'duration'
  readonly min?: string
  readonly max?: string
}
export interface RateSpec extends Doc, Presence<string> {
  readonly type: 'eventRate' | 'byteRate'
}
export interface EnumSpec extends Doc, Presence<string> {
  readonly type: 'enum'
  readonly values: readonly string[]
}
/** Where a group starts reading: `earliest`, `latest`, an offset or an ISO time. */
export interface StartSpec extends Doc, Presence<string> {
  readonly type: 'start'
}
/** A flat map of header names to scalar values, compared as strings. */
export interface HeadersSpec extends Doc, Presence<Record<string, string>> {
  readonly type: 'headers'
}
/** A list of IP addresses and CIDR blocks (a listener's `allow`); never empty. */
export interface RemoteListSpec extends Doc, Presence<readonly string[]> {
  readonly type: 'remoteList'
}
/** A non-empty list of http:// or https:// URLs (etcd endpoints); repeats are dropped. */
export interface UrlListSpec extends Doc, Presence<readonly string[]> {
  readonly type: 'urlList'
}
/** A list of words from a fixed set (a user's tags); repeats are dropped. */
export interface EnumListSpec extends Doc, Presence<readonly string[]> {
  readonly type: 'enumList'
  readonly values: readonly string[]
}

export type LeafSpec =
  | StringSpec
  | NameSpec
  | TemplateSpec
  | RemoteSpec
  | RemoteListSpec
  | UrlListSpec
  | IntSpec
  | NumberSpec
  | BoolSpec
  | SizeSpec
  | DurationSpec
  | RateSpec
  | EnumSpec
  | StartSpec
  | HeadersSpec
  | EnumListSpec

export interface ObjectSpec extends Doc {
  readonly type: 'object'
  readonly keys: Readonly<Record<string, KeySpec>>
  /** Absent means null rather than an object of defaults (e.g. a group's deadLetter). */
  readonly optional?: true
  /**
   * The key may also hold a list of such mappings (a listener: plain and TLS ports side by side).
   * Either way its value is a non-empty list; one mapping is a list of one.
   */
  readonly orList?: true
}

/** A mapping from declared names to objects (exchanges, streams, groups). */
export interface NamedSpec extends Doc {
  readonly type: 'named'
  readonly declares: NameKind
  readonly of: ObjectSpec
}

export interface ListSpec extends Doc {
  readonly type: 'list'
  readonly of: ObjectSpec
  /**
   * Set when leaving the list out means something other than an empty list (auth.users: the
   * built-in guest); the text is what the docs show as its default. Absent, the list is null.
   */
  readonly whenAbsent?: string
}

export type KeySpec = LeafSpec | ObjectSpec | NamedSpec | ListSpec

export type StartPosition =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  /** The last event stored, and what follows (AMQP stream queues' x-stream-offset `last`). */
  | { readonly kind: 'last' }
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'time'; readonly timeMs: number }

// The validated value of each key, derived from the table so the code that shapes the public
// Config cannot read a key the table does not declare, or read it as the wrong type.
type Base<S> = S extends { readonly type: 'string' | 'name' | 'template' | 'remote' }
  ? string
  : S extends { readonly type: 'int' | 'number' | 'size' | 'duration' | 'eventRate' | 'byteRate' }
    ? number
    : S extends { readonly type: 'bool' }
      ? boolean
      : S extends { readonly type: 'enum'; readonly values: readonly (infer V)[] }
        ? V
        : S extends { readonly type: 'enumList'; readonly values: readonly (infer V)[] }
          ? readonly V[]
          : S extends { readonly type: 'remoteList' | 'urlList' }
            ? readonly string[]
          : S extends { readonly type: 'start' }
            ? StartPosition
            : S extends { readonly type: 'headers' }
              ? Readonly<Record<string, string>>
              : S extends { readonly type: 'object'; readonly keys: infer K }
                ? S extends { readonly orList: true }
                  ? readonly [Fields<K>, ...Fields<K>[]]
                  : Fields<K>
                : S extends { readonly type: 'named'; readonly of: infer O }
                  ? Readonly<Record<string, Raw<O>>>
                  : S extends { readonly type: 'list'; readonly of: infer O }
                    ? readonly Raw<O>[]
                    : never

type Fields<K> = { readonly [P in keyof K]: Raw<K[P]> }

export type Raw<S> = Base<S> | (S extends { readonly default: null } | { readonly optional: true } | { readonly nullable: true } | { readonly whenAbsent: string } ? null : never)
