// Users in the management UI and the API, in a real headless Chromium against a seeded server
// with users: GET /v1/users never shows a secret; the Users page says what each user may do; a
// user who may read one stream and has no monitoring tag sees only that, and the API refuses the
// rest anyway.

import { spawnSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { call } from '../helpers/consume.js'
import { launchBrowser } from './browser.js'
import { seededServer, type Seeded } from './seed.js'

const root = new URL('../../', import.meta.url).pathname
const shots = process.env.SLUICE_UI_SCREENSHOTS === '1' ? join(root, 'docs', 'ui') : join(tmpdir(), 'sluice-ui-screenshots')
const grouped = new Intl.NumberFormat('en-US')

// The guest keeps the seed's anonymous loopback requests working; the others log in.
const users = `
auth:
  anonymous: loopback
  users:
    - { username: guest, password: guest, tags: [administrator], loopbackOnly: true }
    - { username: admin, password: admin-secret-1, tags: [administrator] }
    - { username: reader, password: reader-secret-1, permissions: { read: "^app-logs$" } }
    - { username: ops, password: ops-secret-1, tags: [monitoring], permissions: { configure: "^indexer$", read: "^(indexer|app-logs)$" } }
  apiKeys:
    - { name: reader-key, key: "reader-key-secret-0123456789", user: reader }
`

let seeded: Seeded
let browser: BrowserContext

beforeAll(async () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-ui.mjs')], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  await mkdir(shots, { recursive: true })
  ;[seeded, browser] = await Promise.all([seededServer(users), launchBrowser()])
})

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const reader = basic('reader', 'reader-secret-1')

async function as(authorization: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${seeded.url}${path}`, { method, headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) })
  await res.body?.cancel()
  return res.status
}

async function open(hash: string): Promise<Page> {
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('close', () => expect(problems).toEqual([]))
  await page.goto(`${seeded.url}/${hash}`)
  await page.getByTestId('username').waitFor()
  return page
}

describe('users', () => {
  it('GET /v1/users lists users, tags, permissions and API key names, never a secret, to administrators only', async () => {
    const res = await fetch(`${seeded.url}/v1/users`)
    expect(res.status).toBe(200)
    const text = await res.text()
    for (const secret of ['admin-secret-1', 'reader-secret-1', 'ops-secret-1', 'reader-key-secret-0123456789', 'scrypt', 'sha256']) expect(text).not.toContain(secret)
    const body = JSON.parse(text) as { anonymous: string; users: Array<Record<string, unknown>> }
    expect(body.anonymous).toBe('loopback')
    expect(body.users.map((u) => u.username)).toEqual(['guest', 'admin', 'reader', 'ops'])
    expect(body.users[2]).toEqual({
      username: 'reader',
      tags: [],
      loopbackOnly: false,
      permissions: { configure: null, write: null, read: '^app-logs$' },
      patterns: { configure: null, write: null, read: '^(?:^app-logs$)$' },
      apiKeys: ['reader-key'],
    })
    expect(await as(reader, 'GET', '/v1/users')).toBe(403)
    expect(await as(basic('ops', 'ops-secret-1'), 'GET', '/v1/users')).toBe(403)
    expect(await as(basic('admin', 'admin-secret-1'), 'GET', '/v1/users')).toBe(200)
  })

  it('the Users page shows each user and what they may do with what exists now', async () => {
    const page = await open('#/users')
    const ops = page.getByTestId('user-ops')
    await ops.waitFor()
    expect(await ops.getByTestId('may-summary').textContent()).toBe('Tag monitoring: sees every listing, the overview and /metrics. Permissions on 2 of the exchanges, streams and groups that exist now:')
    expect(await ops.getByTestId('may-streams-app-logs').locator('td').allTextContents()).toEqual(['stream', '—', '—', 'yes', 'read, tail'])
    expect(await ops.getByTestId('may-groups-indexer').locator('td').allTextContents()).toEqual(['group', 'yes', '—', 'yes', 'declare, reset, delete; consume, purge parked'])
    const r = page.getByTestId('user-reader')
    expect(await r.getByTestId('may-summary').textContent()).toBe('No monitoring tag: no listing, overview or /metrics. Permissions on 1 of the exchanges, streams and groups that exist now:')
    expect(await r.textContent()).toContain('reader-key')
    expect(await page.getByTestId('user-admin').getByTestId('may-summary').textContent()).toContain('Everything')
    expect(await page.textContent('body')).not.toContain('secret')
    await page.screenshot({ path: join(shots, 'users.png'), fullPage: true })
    await page.close()
  })

  it('a user who may read one stream, without the monitoring tag, sees only that; the API refuses the rest anyway', async () => {
    const page = await open('#/')
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('textbox', { name: 'User' }).fill('reader')
    await page.getByRole('textbox', { name: 'Password' }).fill('reader-secret-1')
    await page.getByRole('button', { name: 'Log in' }).click()
    await expect.poll(() => page.getByTestId('username').textContent()).toBe('reader')
    // No page the server would refuse is offered.
    expect(await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allTextContents()).toEqual([])
    expect(await page.getByTestId('no-monitoring').textContent()).toContain('User reader has no monitoring tag')
    await page.getByTestId('readable').getByRole('link', { name: 'app-logs', exact: true }).click()
    const stream = (await call<{ events: number }>(seeded.url, 'GET', '/v1/streams/app-logs')).body
    await expect.poll(() => page.getByTestId('stream-events').textContent()).toBe(grouped.format(stream.events))
    await expect.poll(() => page.getByTestId('events').locator('li').count()).toBe(Math.min(50, stream.events))
    expect(await page.getByRole('link', { name: '← all streams' }).count()).toBe(0)
    await page.screenshot({ path: join(shots, 'restricted.png'), fullPage: true })

    // Another stream: the server refuses it, and the page shows no events for it.
    await page.goto(`${seeded.url}/#/streams/errors`)
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('403 forbidden')
    expect(await page.textContent('main')).toContain('has no read permission on this stream')
    expect(await page.getByTestId('events').count()).toBe(0)
    // A group: no reset, no purge, no redelivery offered; the server refuses its stats.
    await page.goto(`${seeded.url}/#/groups/indexer`)
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('403 forbidden')
    expect(await page.getByRole('button').allTextContents()).toEqual(['Log out'])
    // Dead letters: no redrive offered.
    await page.goto(`${seeded.url}/#/dead-letters/dlq`)
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('403 forbidden')
    expect(await page.getByTestId('redrive-button').count()).toBe(0)
    await page.close()

    // What the page hides, the API refuses: as the password and as the user's API key.
    for (const authorization of [reader, 'Bearer reader-key-secret-0123456789']) {
      expect(await as(authorization, 'GET', '/v1/streams/app-logs/search')).toBe(200)
      expect(await as(authorization, 'GET', '/v1/overview')).toBe(403)
      expect(await as(authorization, 'GET', '/v1/streams')).toBe(403)
      expect(await as(authorization, 'GET', '/v1/streams/errors/search')).toBe(403)
      expect(await as(authorization, 'POST', '/v1/groups/indexer/reset', { to: 'earliest' })).toBe(403)
      expect(await as(authorization, 'POST', '/v1/streams/dlq/redrive', { offsets: [0] })).toBe(403)
      expect(await as(authorization, 'POST', '/v1/exchanges/logs/publish', { service: 'x', level: 'info' })).toBe(403)
      expect(await as(authorization, 'GET', '/v1/definitions')).toBe(403)
      expect(await as(authorization, 'GET', '/v1/users')).toBe(403)
    }
  })
})
