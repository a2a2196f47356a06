import { describe, expect, test } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import { bindingFromId, bindingId, normalizeBinding, Router, type BindingDef, type ExchangeDef } from '../../src/router/index.js'

const sorted = (streams: readonly string[]) => [...streams].sort()

describe('direct and fanout exchanges', () => {
  const r = new Router(
    [{ name: 'd', type: 'direct' }, { name: 'f', type: 'fanout' }],
    [
      { exchange: 'd', stream: 'errors', key: 'error' },
      { exchange: 'd', stream: 'all', key: 'error' },
      { exchange: 'd', stream: 'all', key: 'info' },
      { exchange: 'd', stream: 'dotted', key: 'a.b' },
      { exchange: 'd', stream: 'empty' },
      { exchange: 'f', stream: 'one' },
      { exchange: 'f', stream: 'two', key: 'whatever' },
    ],
  )

  test.each<[string, string[]]>([
    ['error', ['all', 'errors']],
    ['info', ['all']],
    ['a.b', ['dotted']],
    ['', ['empty']],
    ['Error', []],
    ['a.*', []],
    ['#', []],
  ])('direct key %j', (key, expected) => {
    expect(sorted(r.route('d', key).streams)).toEqual(expected)
  })

  test('fanout ignores the key', () => {
    expect(sorted(r.route('f', 'anything').streams)).toEqual(['one', 'two'])
    expect(sorted(r.route('f', '').streams)).toEqual(['one', 'two'])
  })

  test('an unknown exchange is a 404 SluiceError', () => {
    const err = (() => {
      try {
        r.route('nope', 'k')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(SluiceError)
    expect(err).toMatchObject({ code: 'SLUICE_ERR_UNKNOWN_EXCHANGE', status: 404, details: { exchange: 'nope' } })
  })

  test('a route is worked out once per key and shared, frozen, by the events that follow', () => {
    const a = r.route('f', '')
    const b = r.route('f', '')
    expect(b).toBe(a)
    expect(a).toEqual({ streams: ['one', 'two'], unroutable: false, policy: undefined })
    expect(Object.isFrozen(a.streams)).toBe(true)
    expect(() => (a.streams as string[]).push('x')).toThrow(TypeError)
  })
})

describe('remembered routes follow every change', () => {
  test('bind, unbind, an exchange declared as alternate, and a deleted exchange', () => {
    const r = new Router([{ name: 'x', type: 'topic' }])
    // Declared at run time, as AMQP may, naming an alternate that comes later.
    r.addExchange({ name: 't', type: 'topic', alternate: 'alt' })
    r.bind({ exchange: 't', stream: 'a', key: 'app.*' })
    expect(sorted(r.route('t', 'app.web').streams)).toEqual(['a'])
    expect(r.route('t', 'db.x').unroutable).toBe(true)
    r.bind({ exchange: 't', stream: 'b', key: '#' })
    expect(sorted(r.route('t', 'app.web').streams)).toEqual(['a', 'b'])
    expect(sorted(r.route('t', 'db.x').streams)).toEqual(['b'])
    r.unbind({ exchange: 't', stream: 'b', key: '#' })
    expect(sorted(r.route('t', 'app.web').streams)).toEqual(['a'])
    // The alternate is declared after the route was remembered: it applies from then on.
    r.addExchange({ name: 'alt', type: 'fanout' })
    r.bind({ exchange: 'alt', stream: 'leftovers' })
    expect(sorted(r.route('t', 'db.x').streams)).toEqual(['leftovers'])
    r.bind({ exchange: 'x', toExchange: 't', key: '#' })
    expect(sorted(r.route('x', 'app.web').streams)).toEqual(['a'])
    r.deleteExchange('t')
    expect(r.route('x', 'app.web').unroutable).toBe(true)
  })

  test('a route through a headers exchange depends on the headers and is never reused', () => {
    const r = new Router(
      [{ name: 'in', type: 'topic' }, { name: 'h', type: 'headers' }],
      [
        { exchange: 'in', toExchange: 'h', key: '#' },
        { exchange: 'h', stream: 'eu', headers: { region: 'eu' } },
        { exchange: 'h', stream: 'us', headers: { region: 'us' } },
      ],
    )
    expect(r.route('in', 'k', { region: 'eu' }).streams).toEqual(['eu'])
    expect(r.route('in', 'k', { region: 'us' }).streams).toEqual(['us'])
    expect(r.route('in', 'k', {}).unroutable).toBe(true)
  })
})

describe('unroutable events and alternate exchanges', () => {
  test('policy defaults to drop and follows the published-to exchange', () => {
    const r = new Router([{ name: 'd', type: 'direct' }, { name: 'strict', type: 'topic', unroutable: 'reject' }])
    expect(r.route('d', 'x')).toEqual({ streams: [], unroutable: true, policy: 'drop' })
    expect(r.route('strict', 'x')).toEqual({ streams: [], unroutable: true, policy: 'reject' })
  })

  test('the alternate gets what no binding matched, and only that', () => {
    const r = new Router(
      [{ name: 'logs', type: 'topic', alternate: 'unrouted' }, { name: 'unrouted', type: 'fanout' }],
      [{ exchange: 'logs', stream: 'errors', key: '*.error' }, { exchange: 'unrouted', stream: 'unrouted' }],
    )
    expect(r.route('logs', 'api.error').streams).toEqual(['errors'])
    expect(r.route('logs', 'api.info')).toEqual({ streams: ['unrouted'], unroutable: false, policy: undefined })
  })

  test('an alternate of an alternate is followed', () => {
    const r = new Router(
      [
        { name: 'a', type: 'direct', alternate: 'b' },
        { name: 'b', type: 'direct', alternate: 'c' },
        { name: 'c', type: 'fanout' },
      ],
      [{ exchange: 'b', stream: 'from-b', key: 'k' }, { exchange: 'c', stream: 'from-c' }],
    )
    expect(r.route('a', 'k').streams).toEqual(['from-b'])
    expect(r.route('a', 'other').streams).toEqual(['from-c'])
  })

  test('alternates that point at each other end, and the event is unroutable', () => {
    const r = new Router(
      [{ name: 'a', type: 'direct', alternate: 'b', unroutable: 'reject' }, { name: 'b', type: 'direct', alternate: 'a' }],
      [],
    )
    expect(r.route('a', 'k')).toEqual({ streams: [], unroutable: true, policy: 'reject' })
  })

  test('an alternate that routes nowhere leaves the event unroutable under the first exchange policy', () => {
    const r = new Router([{ name: 'a', type: 'direct', alternate: 'b', unroutable: 'reject' }, { name: 'b', type: 'direct' }])
    expect(r.route('a', 'k')).toMatchObject({ unroutable: true, policy: 'reject' })
  })

  test('a matched binding to an exchange that routes nowhere does not trigger the alternate (RabbitMQ)', () => {
    const r = new Router(
      [
        { name: 'a', type: 'direct', alternate: 'alt-a' },
        { name: 'x', type: 'direct', alternate: 'alt-x' },
        { name: 'alt-a', type: 'fanout' },
        { name: 'alt-x', type: 'fanout' },
      ],
      [
        { exchange: 'a', toExchange: 'x', key: 'k' },
        { exchange: 'alt-a', stream: 'alt-a' },
        { exchange: 'alt-x', stream: 'alt-x' },
      ],
    )
    expect(r.route('a', 'k').streams).toEqual(['alt-x'])
    expect(r.route('a', 'other').streams).toEqual(['alt-a'])
  })

  test('a deleted alternate means unroutable; redeclaring it restores the path by name', () => {
    const r = new Router([{ name: 'a', type: 'direct', alternate: 'b' }, { name: 'b', type: 'fanout' }], [{ exchange: 'b', stream: 's' }])
    expect(r.deleteExchange('b')).toBe(true)
    expect(r.route('a', 'k').unroutable).toBe(true)
    r.addExchange({ name: 'b', type: 'fanout' })
    r.bind({ exchange: 'b', stream: 's' })
    expect(r.route('a', 'k').streams).toEqual(['s'])
  })
})

describe('exchange-to-exchange bindings', () => {
  // The example from DESIGN.md.
  const design = new Router(
    [
      { name: 'logs', type: 'topic', alternate: 'unrouted' },
      { name: 'unrouted', type: 'fanout' },
      { name: 'by-attr', type: 'headers' },
      { name: 'audit', type: 'topic' },
    ],
    [
      { exchange: 'logs', stream: 'app-logs', key: '#' },
      { exchange: 'logs', stream: 'errors', key: '*.error' },
      { exchange: 'unrouted', stream: 'unrouted' },
      { exchange: 'by-attr', stream: 'errors', match: 'all', headers: { level: 'error' } },
      { exchange: 'logs', toExchange: 'audit', key: 'audit.#' },
      { exchange: 'audit', stream: 'audit', key: '#' },
    ],
  )

  test.each<[string, string[]]>([
    ['api.error', ['app-logs', 'errors']],
    ['api.info', ['app-logs']],
    ['audit.login', ['app-logs', 'audit']],
    ['audit.error', ['app-logs', 'audit', 'errors']],
    ['', ['app-logs']],
  ])('design example: logs with key %j', (key, expected) => {
    expect(sorted(design.route('logs', key).streams)).toEqual(expected)
  })

  test('design example: the headers exchange reads the body', () => {
    expect(design.route('by-attr', '', undefined, { level: 'error', msg: 'x' }).streams).toEqual(['errors'])
    expect(design.route('by-attr', '', undefined, { level: 'info' }).unroutable).toBe(true)
  })

  test('chains are followed transitively, and the routing key travels unchanged', () => {
    const r = new Router(
      [{ name: 'a', type: 'topic' }, { name: 'b', type: 'direct' }, { name: 'c', type: 'topic' }],
      [
        { exchange: 'a', toExchange: 'b', key: 'x.*' },
        { exchange: 'b', toExchange: 'c', key: 'x.y' },
        { exchange: 'c', stream: 'end', key: '#.y' },
      ],
    )
    expect(r.route('a', 'x.y').streams).toEqual(['end'])
    expect(r.route('a', 'x.z').unroutable).toBe(true)
  })

  test('a cycle ends: each exchange is visited once per event', () => {
    const r = new Router(
      [{ name: 'a', type: 'fanout' }, { name: 'b', type: 'fanout' }, { name: 'c', type: 'fanout' }],
      [
        { exchange: 'a', toExchange: 'b' },
        { exchange: 'b', toExchange: 'c' },
        { exchange: 'c', toExchange: 'a' },
        { exchange: 'b', stream: 'sb' },
        { exchange: 'c', stream: 'sc' },
      ],
    )
    expect(sorted(r.route('a', '').streams)).toEqual(['sb', 'sc'])
    expect(sorted(r.route('c', '').streams)).toEqual(['sb', 'sc'])
  })

  test('a self-binding is harmless', () => {
    const r = new Router([{ name: 'a', type: 'fanout' }], [{ exchange: 'a', toExchange: 'a' }, { exchange: 'a', stream: 's' }])
    expect(r.route('a', '').streams).toEqual(['s'])
  })

  test('a stream reached by two paths is listed once', () => {
    const r = new Router(
      [{ name: 'a', type: 'topic' }, { name: 'b', type: 'fanout' }, { name: 'c', type: 'direct' }],
      [
        { exchange: 'a', stream: 'shared', key: '#' },
        { exchange: 'a', toExchange: 'b', key: 'k' },
        { exchange: 'a', toExchange: 'c', key: '*' },
        { exchange: 'b', stream: 'shared' },
        { exchange: 'c', stream: 'shared', key: 'k' },
        { exchange: 'c', stream: 'only-c', key: 'k' },
      ],
    )
    expect(sorted(r.route('a', 'k').streams)).toEqual(['only-c', 'shared'])
  })
})

describe('dynamic changes', () => {
  test('bind is idempotent; unbind reports whether it removed anything', () => {
    const r = new Router([{ name: 'd', type: 'direct' }])
    const b: BindingDef = { exchange: 'd', stream: 's', key: 'k' }
    expect(r.bind(b)).toBe(true)
    expect(r.bind({ ...b })).toBe(false)
    expect(r.bindings()).toEqual([{ exchange: 'd', stream: 's', key: 'k' }])
    expect(r.route('d', 'k').streams).toEqual(['s'])
    expect(r.unbind(b)).toBe(true)
    expect(r.unbind(b)).toBe(false)
    expect(r.route('d', 'k').unroutable).toBe(true)
    expect(r.bindings()).toEqual([])
    expect(r.unbind({ exchange: 'nope', stream: 's' })).toBe(false)
  })

  test('a missing key is the empty key, for identity as for matching', () => {
    const r = new Router([{ name: 'd', type: 'direct' }], [{ exchange: 'd', stream: 's' }])
    expect(r.bind({ exchange: 'd', stream: 's', key: '' })).toBe(false)
    expect(r.route('d', '').streams).toEqual(['s'])
  })

  test('bindings to the same stream with different keys are separate', () => {
    const r = new Router([{ name: 't', type: 'topic' }], [{ exchange: 't', stream: 's', key: 'a.*' }, { exchange: 't', stream: 's', key: 'b.*' }])
    r.unbind({ exchange: 't', stream: 's', key: 'a.*' })
    expect(r.route('t', 'a.x').unroutable).toBe(true)
    expect(r.route('t', 'b.x').streams).toEqual(['s'])
  })

  test('addExchange is idempotent for the same definition and refuses a different one', () => {
    const r = new Router([{ name: 'x', type: 'topic', alternate: 'y' }, { name: 'y', type: 'fanout' }])
    expect(r.addExchange({ name: 'x', type: 'topic', alternate: 'y' })).toBe(false)
    expect(r.addExchange({ name: 'x', type: 'topic', alternate: 'y', unroutable: 'drop' })).toBe(false)
    expect(() => r.addExchange({ name: 'x', type: 'direct', alternate: 'y' })).toThrow(expect.objectContaining({ code: 'SLUICE_ERR_ROUTER_EXCHANGE_CONFLICT', status: 409 }))
    expect(() => r.addExchange({ name: 'x', type: 'topic' })).toThrow(/alternate/)
    expect(r.addExchange({ name: 'z', type: 'headers', alternate: 'later' })).toBe(true)
    expect(r.hasExchange('z')).toBe(true)
    expect(r.exchanges().map((x) => x.name)).toEqual(['x', 'y', 'z'])
  })

  test('deleteExchange removes the bindings from it and to it', () => {
    const r = new Router(
      [{ name: 'a', type: 'fanout' }, { name: 'b', type: 'fanout' }],
      [{ exchange: 'a', toExchange: 'b' }, { exchange: 'a', stream: 'sa' }, { exchange: 'b', stream: 'sb' }],
    )
    expect(sorted(r.route('a', '').streams)).toEqual(['sa', 'sb'])
    expect(r.deleteExchange('b')).toBe(true)
    expect(r.deleteExchange('b')).toBe(false)
    expect(r.hasExchange('b')).toBe(false)
    expect(r.bindings()).toEqual([{ exchange: 'a', stream: 'sa', key: '' }])
    expect(r.route('a', '').streams).toEqual(['sa'])
    // A new exchange of the same name starts with no bindings.
    r.addExchange({ name: 'b', type: 'direct' })
    expect(r.route('b', '').unroutable).toBe(true)
    expect(() => r.route('gone', '')).toThrow(SluiceError)
  })

  test('a table rebuilt from bindings() routes like the original', () => {
    const exchanges: ExchangeDef[] = [{ name: 't', type: 'topic' }, { name: 'h', type: 'headers' }]
    const r = new Router(exchanges, [
      { exchange: 't', stream: 's1', key: 'a.#' },
      { exchange: 't', toExchange: 'h', key: '#' },
      { exchange: 'h', stream: 's2', match: 'any', headers: { level: 'error' } },
    ])
    const copy = new Router(r.exchanges(), r.bindings())
    expect(copy.bindings()).toEqual(r.bindings())
    expect(sorted(copy.route('t', 'a.b', { level: 'error' }).streams)).toEqual(['s1', 's2'])
  })
})

describe('validation', () => {
  test.each<[string, ExchangeDef[], BindingDef[], RegExp]>([
    ['duplicate exchange', [{ name: 'a', type: 'direct' }, { name: 'a', type: 'direct' }], [], /declared twice/],
    ['unknown type', [{ name: 'a', type: 'x-delayed' as 'direct' }], [], /unknown type "x-delayed"/],
    ['missing alternate', [{ name: 'a', type: 'direct', alternate: 'nope' }], [], /alternate exchange "nope" does not exist/],
    ['bad policy', [{ name: 'a', type: 'direct', unroutable: 'bounce' as 'drop' }], [], /unroutable must be drop or reject/],
    ['binding from an unknown exchange', [], [{ exchange: 'nope', stream: 's' }], /exchange "nope" does not exist/],
    ['binding to an unknown exchange', [{ name: 'a', type: 'direct' }], [{ exchange: 'a', toExchange: 'nope' }], /exchange "nope" does not exist/],
    ['no destination', [{ name: 'a', type: 'direct' }], [{ exchange: 'a' }], /exactly one of stream and toExchange/],
    ['two destinations', [{ name: 'a', type: 'direct' }, { name: 'b', type: 'direct' }], [{ exchange: 'a', stream: 's', toExchange: 'b' }], /exactly one/],
    ['empty stream name', [{ name: 'a', type: 'direct' }], [{ exchange: 'a', stream: '' }], /non-empty/],
    ['headers on a topic exchange', [{ name: 'a', type: 'topic' }], [{ exchange: 'a', stream: 's', headers: { a: 1 } }], /headers exchanges/],
    ['bad match', [{ name: 'a', type: 'headers' }], [{ exchange: 'a', stream: 's', match: 'some' as 'all' }], /match must be all or any/],
  ])('%s', (_name, exchanges, bindings, message) => {
    expect(() => new Router(exchanges, bindings)).toThrow(message)
    expect(() => new Router(exchanges, bindings)).toThrow(SluiceError)
  })
})

describe('binding ids', () => {
  test('an id reads back as the binding it names, and a string that is not one is refused', () => {
    const bindings: Array<[BindingDef, 'direct' | 'topic' | 'headers' | 'fanout']> = [
      [{ exchange: 'd', stream: 'errors', key: 'error' }, 'direct'],
      [{ exchange: 't', toExchange: 'archive', key: 'app.#' }, 'topic'],
      [{ exchange: 'h', stream: 'eu', match: 'any', headers: { region: 'eu', tier: 2, sampled: true, traced: null } }, 'headers'],
      [{ exchange: 'f', stream: 'all' }, 'fanout'],
    ]
    for (const [def, type] of bindings) {
      const norm = normalizeBinding(def, type)
      const back = bindingFromId(bindingId(norm))
      expect(back).toEqual({ ...norm })
      expect(bindingId(normalizeBinding(back!, type))).toBe(bindingId(norm))
    }
    for (const bad of ['', 'x', '{}', '[1,2,3,4,5,6]', '["d",null,null,"k","some",null]', '["d",null,null,"k",null,[["a"]]]']) expect(bindingFromId(bad)).toBeUndefined()
  })
})
