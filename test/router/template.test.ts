import { describe, expect, test } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import { compileTemplate, mayMiss, missingFieldWord, Router } from '../../src/router/index.js'

describe('routing key templates', () => {
  test.each<[string, unknown, string]>([
    ['{service}.{level}', { service: 'api', level: 'error' }, 'api.error'],
    ['logs', { service: 'api' }, 'logs'],
    ['', {}, ''],
    ['syslog.{facility}.{severity}', { facility: 4, severity: 3 }, 'syslog.4.3'],
    ['http.{http.status}.{http.method}', { http: { status: 503, method: 'GET' } }, 'http.503.GET'],
    ['{a.b.c}', { a: { b: { c: true } } }, 'true'],
    ['{ok}', { ok: false }, 'false'],
    ['{n}', { n: -1.5 }, '-1.5'],
    ['{tags.0}', { tags: ['first'] }, 'first'],
    ['pre-{x}-post', { x: 'mid' }, 'pre-mid-post'],
    ['{x}{y}', { x: 'a', y: 'b' }, 'ab'],
    // An empty string is still one (empty) word.
    ['{service}.{level}', { service: '', level: 'error' }, '.error'],
    // A dot inside a value is kept.
    ['{service}.{level}', { service: 'billing.api', level: 'error' }, 'billing.api.error'],
  ])('%j over %j is %j', (template, body, key) => {
    expect(compileTemplate(template)(body)).toBe(key)
  })

  test.each<[string, unknown]>([
    ['missing field', { level: 'error' }],
    ['null', { service: null, level: 'error' }],
    ['object', { service: { name: 'api' }, level: 'error' }],
    ['array', { service: ['api'], level: 'error' }],
  ])('a %s yields "_" and keeps the word count', (_name, body) => {
    const key = compileTemplate('{service}.{level}')(body)
    expect(key).toBe(`${missingFieldWord}.error`)
    const r = new Router([{ name: 't', type: 'topic' }], [{ exchange: 't', stream: 'errors', key: '*.error' }])
    expect(r.route('t', key).streams).toEqual(['errors'])
  })

  test.each<[string, unknown]>([
    ['a body that is not an object', 'just a string'],
    ['a null body', null],
    ['an undefined body', undefined],
    ['a path through a scalar', { http: 5 }],
    ['a path through null', { http: null }],
    ['a missing nested field', { http: {} }],
  ])('%s yields "_"', (_name, body) => {
    expect(compileTemplate('{http.status}')(body)).toBe('_')
  })

  test.each<[string, unknown, string]>([
    // OpenTelemetry's attribute names hold dots: the key is found whole.
    ['{resource.service.name}.{severityText}', { resource: { 'service.name': 'checkout' }, severityText: 'INFO' }, 'checkout.INFO'],
    ['{attributes.http.response.status_code}', { attributes: { 'http.response.status_code': 503 } }, '503'],
    ['{a.b.c.d}', { a: { 'b.c': { d: 'deep' } } }, 'deep'],
    ['{a.b.c}', { 'a.b': { c: 'top' } }, 'top'],
    // Nested objects win over a dotted key naming the same path.
    ['{service.name}', { service: { name: 'nested' }, 'service.name': 'dotted' }, 'nested'],
    // A nested object that does not lead to a value does not hide a dotted key that does.
    ['{service.name}', { service: { version: '1' }, 'service.name': 'dotted' }, 'dotted'],
    ['{labels.app.kubernetes.io/name}', { labels: { 'app.kubernetes.io/name': 'web' } }, 'web'],
  ])('dotted key: %j over %j is %j', (template, body, key) => {
    expect(compileTemplate(template)(body)).toBe(key)
  })

  test('a dotted key that is missing or not a scalar still yields "_"', () => {
    expect(compileTemplate('{resource.service.name}')({ resource: { 'service.version': '1' } })).toBe('_')
    expect(compileTemplate('{resource.service.name}')({ resource: { 'service.name': { x: 1 } } })).toBe('_')
    expect(compileTemplate('{resource.service.name}')({ 'resource.service': null })).toBe('_')
    expect(compileTemplate('{a.constructor}')({ a: {} })).toBe('_')
  })

  test('only own properties are read', () => {
    expect(compileTemplate('{constructor.name}.{toString}.{__proto__}')({})).toBe('_._._')
  })

  test('doubled braces are literal braces', () => {
    expect(compileTemplate('{{literal}}.{x}')({ x: 'v' })).toBe('{literal}.v')
    expect(compileTemplate('{{{x}}}')({ x: 'v' })).toBe('{v}')
    expect(compileTemplate('}}{{')({})).toBe('}{')
    expect(compileTemplate('{{{x}')({ x: 'v' })).toBe('{v')
    // A field named like a placeholder is not expanded twice.
    expect(compileTemplate('{x}')({ x: '{y}', y: 'no' })).toBe('{y}')
  })

  test.each<[string, RegExp]>([
    ['{service', /character 0: a "\{" with no closing "\}"/],
    ['a.{b.{c}}', /character 2: a "\{" inside a placeholder/],
    ['a}', /character 1: a lone "\}"/],
    ['{}', /an empty placeholder/],
    ['{a..b}', /an empty field name in "\{a..b\}"/],
    ['{.a}', /an empty field name/],
    ['{a.}', /an empty field name/],
    ['{ level }', /whitespace in placeholder/],
    ['{x}}', /character 3: a lone "\}"/],
  ])('%j is refused at compile time', (template, message) => {
    let thrown: unknown
    try {
      compileTemplate(template)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(SluiceError)
    expect(thrown).toMatchObject({ code: 'SLUICE_ERR_ROUTER_BAD_TEMPLATE', status: 400, details: { template } })
    expect((thrown as Error).message).toMatch(message)
  })
})

describe('a template that misses a field', () => {
  test('says so only for placeholders that found no value, not for a value that is itself "_"', () => {
    const t = compileTemplate('{service}.{level}')
    expect([t({ service: 'web' }), t.misses({ service: 'web' })]).toEqual(['web._', true])
    expect([t({ service: 'web', level: '_' }), t.misses({ service: 'web', level: '_' })]).toEqual(['web._', false])
    expect([t({ service: 'web', level: null }), t.misses({ service: 'web', level: null })]).toEqual(['web._', true])
    expect(t.misses({ service: 'web', level: 3 })).toBe(false)
    expect(compileTemplate('fixed').misses({})).toBe(false)
  })

  test('mayMiss spots a whole `_` word, and nothing else', () => {
    expect(['_', '_.a', 'a._', 'a._.b'].map(mayMiss)).toEqual([true, true, true, true])
    expect(['a_b', '__', 'a.__', 'a.b', ''].map(mayMiss)).toEqual([false, false, false, false, false])
  })
})
