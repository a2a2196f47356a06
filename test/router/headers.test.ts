import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Router, type BindingDef, type HeaderValue } from '../../src/router/index.js'

type Headers = Record<string, HeaderValue>

function headersRouter(bindings: ReadonlyArray<Omit<BindingDef, 'exchange'>>): Router {
  return new Router([{ name: 'h', type: 'headers' }], bindings.map((b) => ({ exchange: 'h', ...b })))
}

const routes = (r: Router, headers: Record<string, unknown> | undefined, body?: unknown) => r.route('h', 'ignored', headers, body).streams.length > 0

describe('headers exchange: x-match all and any', () => {
  const all = headersRouter([{ stream: 's', match: 'all', headers: { level: 'error', service: 'api' } }])
  const any = headersRouter([{ stream: 's', match: 'any', headers: { level: 'error', service: 'api' } }])
  const byDefault = headersRouter([{ stream: 's', headers: { level: 'error', service: 'api' } }])

  test.each<[string, Record<string, unknown>, boolean, boolean]>([
    ['both match', { level: 'error', service: 'api' }, true, true],
    ['only level matches', { level: 'error', service: 'web' }, false, true],
    ['only service matches', { level: 'info', service: 'api' }, false, true],
    ['one missing, the other matches', { level: 'error' }, false, true],
    ['neither matches', { level: 'info', service: 'web' }, false, false],
    ['no attributes', {}, false, false],
    ['extra attributes do not matter', { level: 'error', service: 'api', host: 'h1' }, true, true],
  ])('%s', (_name, attrs, wantAll, wantAny) => {
    expect(routes(all, attrs)).toBe(wantAll)
    expect(routes(any, attrs)).toBe(wantAny)
    expect(routes(byDefault, attrs)).toBe(wantAll)
    // The same attributes as body fields give the same answers.
    expect(routes(all, undefined, attrs)).toBe(wantAll)
    expect(routes(any, undefined, attrs)).toBe(wantAny)
  })

  test('values compare strictly: 500 is not "500", true is not "true"', () => {
    const r = headersRouter([
      { stream: 'num', headers: { status: 500 } },
      { stream: 'str', headers: { status: '500' } },
      { stream: 'bool', headers: { ok: true } },
    ])
    expect(r.route('h', '', undefined, { status: 500 }).streams).toEqual(['num'])
    expect(r.route('h', '', { status: '500' }).streams).toEqual(['str'])
    expect(r.route('h', '', { ok: 'true' }).unroutable).toBe(true)
    expect(r.route('h', '', undefined, { ok: true }).streams).toEqual(['bool'])
  })

  test('null in a binding asks only that the attribute be present, with any value', () => {
    const r = headersRouter([{ stream: 's', headers: { trace: null } }])
    expect(routes(r, { trace: 'abc' })).toBe(true)
    expect(routes(r, { trace: 0 })).toBe(true)
    expect(routes(r, { trace: null })).toBe(true)
    expect(routes(r, undefined, { trace: false })).toBe(true)
    expect(routes(r, undefined, { trace: null })).toBe(true)
    expect(routes(r, { other: 'x' })).toBe(false)
  })

  test('a null value among valued headers, with all and any', () => {
    const all = headersRouter([{ stream: 's', headers: { trace: null, level: 'error' } }])
    expect(routes(all, { trace: 'x', level: 'error' })).toBe(true)
    expect(routes(all, { level: 'error' })).toBe(false)
    expect(routes(all, { trace: 'x', level: 'info' })).toBe(false)
    const any = headersRouter([{ stream: 's', match: 'any', headers: { trace: null, level: 'error' } }])
    expect(routes(any, { trace: 'x' })).toBe(true)
    expect(routes(any, { level: 'error' })).toBe(true)
    expect(routes(any, { level: 'info' })).toBe(false)
  })
})

describe('headers exchange: x- arguments, attributes', () => {
  test('binding headers starting with x- take no part in matching', () => {
    const r = headersRouter([{ stream: 's', headers: { level: 'error', 'x-priority': 5, 'x-note': 'ignored' } }])
    expect(routes(r, { level: 'error' })).toBe(true)
    expect(routes(r, { level: 'error', 'x-priority': 1 })).toBe(true)
    expect(routes(r, { level: 'info', 'x-priority': 5, 'x-note': 'ignored' })).toBe(false)
  })

  test('with only x- arguments, all matches everything and any matches nothing (as RabbitMQ)', () => {
    const r = headersRouter([
      { stream: 'all', match: 'all', headers: { 'x-foo': 'bar' } },
      { stream: 'any', match: 'any', headers: { 'x-foo': 'bar' } },
      { stream: 'empty-all' },
    ])
    expect([...r.route('h', '', { 'x-foo': 'bar' }).streams].sort()).toEqual(['all', 'empty-all'])
    expect([...r.route('h', '').streams].sort()).toEqual(['all', 'empty-all'])
  })

  test('an x-match entry in headers sets the mode, as AMQP binding arguments do', () => {
    const r = headersRouter([{ stream: 's', headers: { 'x-match': 'any', a: 1, b: 2 } }])
    expect(routes(r, { a: 1 })).toBe(true)
    expect(r.bindings()[0]).toMatchObject({ match: 'any', headers: { a: 1, b: 2 } })
    expect(() => headersRouter([{ stream: 's', headers: { 'x-match': 'all-with-x' } }])).toThrow(/x-match must be all or any/)
    expect(() => headersRouter([{ stream: 's', match: 'all', headers: { 'x-match': 'any' } }])).toThrow(/match is all but x-match is any/)
  })

  test('explicit event headers win over body fields of the same name', () => {
    const r = headersRouter([{ stream: 'errors', headers: { level: 'error' } }])
    expect(routes(r, { level: 'info' }, { level: 'error' })).toBe(false)
    expect(routes(r, { level: 'error' }, { level: 'info' })).toBe(true)
    expect(routes(r, { service: 'api' }, { level: 'error' })).toBe(true)
    // A header explicitly set to undefined is not a header.
    expect(routes(r, { level: undefined }, { level: 'error' })).toBe(true)
  })

  test('only top-level scalar body fields are attributes', () => {
    const r = headersRouter([{ stream: 's', headers: { level: null } }])
    expect(routes(r, undefined, { level: { name: 'error' } })).toBe(false)
    expect(routes(r, undefined, { level: ['error'] })).toBe(false)
    expect(routes(r, undefined, { nested: { level: 'error' } })).toBe(false)
    expect(routes(r, undefined, ['level'])).toBe(false)
    expect(routes(r, undefined, 'level')).toBe(false)
    expect(routes(r, undefined, null)).toBe(false)
  })

  test('inherited properties are not attributes', () => {
    const r = headersRouter([{ stream: 's', headers: { constructor: null } }, { stream: 't', headers: { toString: null } }])
    expect(routes(r, {}, {})).toBe(false)
    expect(routes(r, Object.create({ constructor: 'x' }) as Record<string, unknown>, {})).toBe(false)
  })

  test('binding headers must be scalars', () => {
    const bad = { stream: 's', headers: { level: { deep: 1 } } } as unknown as BindingDef
    expect(() => headersRouter([bad])).toThrow(expect.objectContaining({ code: 'SLUICE_ERR_ROUTER_BAD_BINDING' }))
    expect(() => headersRouter([{ stream: 's', headers: { n: Number.NaN } }])).toThrow(/finite number/)
  })
})

describe('headers exchange: index stays consistent', () => {
  test('unbinding an all binding, an any binding and a presence binding', () => {
    const defs: BindingDef[] = [
      { exchange: 'h', stream: 'all', headers: { level: 'error', service: 'api' } },
      { exchange: 'h', stream: 'any', match: 'any', headers: { level: 'error', host: 'h1' } },
      { exchange: 'h', stream: 'present', headers: { trace: null } },
    ]
    const r = new Router([{ name: 'h', type: 'headers' }], defs)
    const attrs = { level: 'error', service: 'api', host: 'h1', trace: 't' }
    expect([...r.route('h', '', attrs).streams].sort()).toEqual(['all', 'any', 'present'])
    expect(r.unbind(defs[1]!)).toBe(true)
    expect([...r.route('h', '', attrs).streams].sort()).toEqual(['all', 'present'])
    expect(r.unbind(defs[0]!)).toBe(true)
    expect(r.unbind(defs[2]!)).toBe(true)
    expect(r.route('h', '', attrs).unroutable).toBe(true)
    expect(r.bind(defs[1]!)).toBe(true)
    expect(r.route('h', '', { host: 'h1' }).streams).toEqual(['any'])
  })

  test('header order does not make a different binding', () => {
    const r = headersRouter([{ stream: 's', headers: { a: 1, b: 2 } }])
    expect(r.bind({ exchange: 'h', stream: 's', headers: { b: 2, a: 1 } })).toBe(false)
    expect(r.bind({ exchange: 'h', stream: 's', match: 'all', headers: { b: 2, a: 1 } })).toBe(false)
    expect(r.bind({ exchange: 'h', stream: 's', match: 'any', headers: { b: 2, a: 1 } })).toBe(true)
    expect(r.bindings()).toHaveLength(2)
  })

  // The index files each binding under one or several names; a naive scan of every binding is the
  // reference it must agree with, through binds and unbinds.
  const names = ['a', 'b', 'x-c'] as const
  const valueArb = fc.constantFrom<HeaderValue>(1, 2, '1', null, true)
  const headersArb = fc.dictionary(fc.constantFrom(...names), valueArb, { maxKeys: 3 })
  const attrsArb = fc.dictionary(fc.constantFrom(...names), fc.constantFrom<HeaderValue>(1, 2, '1', null, true, false), { maxKeys: 3 })

  function reference(match: 'all' | 'any', headers: Headers, attrs: Headers, body: Headers): boolean {
    const pairs = Object.entries(headers).filter(([k]) => !k.startsWith('x-'))
    const test = ([k, v]: [string, HeaderValue]) => {
      const got = Object.hasOwn(attrs, k) ? attrs[k] : Object.hasOwn(body, k) ? body[k] : undefined
      if (got === undefined) return false
      return v === null || got === v
    }
    return match === 'all' ? pairs.every(test) : pairs.some(test)
  }

  test('agrees with a scan of every binding', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom<'all' | 'any'>('all', 'any'), headersArb, fc.boolean()), { maxLength: 12 }),
        fc.array(fc.tuple(attrsArb, attrsArb), { minLength: 1, maxLength: 6 }),
        (bindings, events) => {
          const r = new Router([{ name: 'h', type: 'headers' }])
          bindings.forEach(([match, headers], i) => r.bind({ exchange: 'h', stream: `s${i}`, match, headers }))
          bindings.forEach(([match, headers, drop], i) => {
            if (drop) r.unbind({ exchange: 'h', stream: `s${i}`, match, headers })
          })
          for (const [attrs, body] of events) {
            const want = bindings.flatMap(([match, headers, drop], i) => (!drop && reference(match, headers, attrs, body) ? [`s${i}`] : []))
            expect([...r.route('h', '', attrs, body).streams].sort()).toEqual(want.sort())
          }
        },
      ),
      { numRuns: 1500 },
    )
  })
})
