// The management UI in a real headless Chromium against a real, seeded server: each test clicks
// through a page and asserts what a person would see, against what /v1 says. Screenshots of each
// page go to a temp dir, or to docs/ui/ (the README shows two) when asked.

import { spawnSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { call } from '../helpers/consume.js'
import { publish } from '../helpers/groups.js'
import { launchBrowser } from './browser.js'
import { seededServer, type Seeded } from './seed.js'

const root = new URL('../../', import.meta.url).pathname
// The tracked screenshots change only when asked (SLUICE_UI_SCREENSHOTS=1 npx vitest run test/ui),
// so a test run leaves git clean; otherwise they go to a temp dir.
const shots = process.env.SLUICE_UI_SCREENSHOTS === '1' ? join(root, 'docs', 'ui') : join(tmpdir(), 'sluice-ui-screenshots')
const grouped = new Intl.NumberFormat('en-US')

let seeded: Seeded
let browser: BrowserContext

beforeAll(async () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-ui.mjs')], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  await mkdir(shots, { recursive: true })
  ;[seeded, browser] = await Promise.all([seededServer(), launchBrowser()])
})

async function open(hash: string): Promise<Page> {
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  // Offline: the page may ask its own server only.
  page.on('request', (req) => {
    if (!req.url().startsWith(seeded.url) && !req.url().startsWith('data:')) problems.push(`asked ${req.url()}`)
  })
  page.on('close', () => expect(problems).toEqual([]))
  await page.goto(`${seeded.url}/${hash}`)
  await page.getByTestId('username').waitFor()
  return page
}

const v1 = async <T>(path: string): Promise<T> => (await call<T>(seeded.url, 'GET', path)).body

describe('management UI in Chromium', () => {
  it('overview: totals as /v1/overview has them, charts, listeners, as the loopback guest', async () => {
    const page = await open('#/')
    await expect.poll(() => page.getByTestId('total-events').textContent()).not.toBeNull()
    const o = await v1<{ events: number; streams: number; exchanges: number; groups: number; version: string }>('/v1/overview')
    expect(await page.getByTestId('total-events').textContent()).toBe(grouped.format(o.events))
    expect(await page.getByTestId('total-streams').textContent()).toBe(String(o.streams))
    expect(await page.getByTestId('total-exchanges').textContent()).toBe(String(o.exchanges))
    expect(await page.getByTestId('total-groups').textContent()).toBe(String(o.groups))
    expect(await page.getByTestId('version').textContent()).toBe(o.version)
    expect(await page.getByTestId('username').textContent()).toBe('guest')
    // Disk free of the data dir, as /v1/overview reads it (it moves a little as others write).
    const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(1)} GiB`
    await expect.poll(async () => (await page.getByTestId('disk-free').textContent()) === gib((await v1<{ disk: { freeBytes: number } }>('/v1/overview')).disk.freeBytes)).toBe(true)
    // Both charts drew (uPlot: one canvas each), and the rate history has samples by now.
    await expect.poll(() => page.locator('.chart canvas').count()).toBe(2)
    await page.getByRole('region', { name: 'Listeners' }).getByRole('rowheader', { name: 'http' }).waitFor()
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: join(shots, 'overview-dark.png'), fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    await page.screenshot({ path: join(shots, 'overview-phone.png'), fullPage: true })
    // Readable on a phone: the page does not scroll sideways (wide tables scroll in their box).
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390)
    await page.close()
  })

  it('exchanges: bindings, and the routing-key tester asks the router without publishing', async () => {
    const page = await open('#/exchanges')
    const logs = page.getByTestId('exchange-logs')
    await logs.waitFor()
    expect(await logs.textContent()).toContain('→ stream errors on "*.error"')
    const before = (await v1<{ events: number }>('/v1/overview')).events
    await page.getByLabel('Body (JSON, for templates and header matches)').fill('{"service": "api", "level": "error"}')
    // Keyboard: Enter in a field submits the form.
    await page.getByLabel('Body (JSON, for templates and header matches)').press('Enter')
    await expect.poll(() => page.getByTestId('route-result').textContent()).toBe('Key api.error goes to app-logs, errors.')
    expect((await v1<{ events: number }>('/v1/overview')).events).toBe(before)
    await page.screenshot({ path: join(shots, 'exchanges.png'), fullPage: true })
    // One exchange's bindings as a graph: an edge to each destination, the alternate too.
    await page.getByRole('link', { name: 'logs', exact: true }).click()
    const graph = page.getByTestId('binding-graph')
    await graph.waitFor()
    const logsX = (await v1<{ exchanges: Array<{ name: string; alternate: string | null; bindings: Array<{ stream?: string; toExchange?: string }> }> }>('/v1/exchanges')).exchanges.find((x) => x.name === 'logs')!
    const expected = [...logsX.bindings.map((b) => (b.stream !== undefined ? `edge-stream-${b.stream}` : `edge-exchange-${b.toExchange!}`)), `edge-exchange-${logsX.alternate!}`]
    expect(await graph.locator('g.edge').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-testid')))).toEqual(expected)
    expect(await graph.getByTestId('edge-stream-errors').textContent()).toContain('*.error')
    expect(await graph.locator('g.edge.alternate').count()).toBe(1)
    await page.screenshot({ path: join(shots, 'exchange.png'), fullPage: true })
    await graph.getByTestId('edge-stream-errors').locator('a').click()
    await expect.poll(() => page.evaluate('location.hash')).toBe('#/streams/errors')
    await page.close()
  })

  it('streams: sizes as /v1/streams has them; a 10,000-event stream is browsed a page at a time', async () => {
    const page = await open('#/streams')
    await page.getByTestId('stream-big').waitFor()
    const streams = (await v1<{ streams: Array<{ name: string; events: number }> }>('/v1/streams')).streams
    for (const s of streams) expect(await page.getByTestId(`stream-${s.name}`).getByTestId('events').textContent()).toBe(grouped.format(s.events))
    await page.screenshot({ path: join(shots, 'streams.png'), fullPage: true })
    await page.getByRole('link', { name: 'big' }).click()
    await expect.poll(() => page.getByTestId('stream-events').textContent()).toBe('10,000')
    const rows = page.getByTestId('events').locator('li')
    await expect.poll(() => rows.count()).toBe(50)
    expect(await page.getByTestId('browser-status').textContent()).toContain('Offsets 0–49')
    const started = Date.now()
    await page.getByRole('button', { name: 'Next page' }).click()
    await expect.poll(() => page.getByTestId('browser-status').textContent()).toContain('Offsets 50–99')
    expect(Date.now() - started).toBeLessThan(1000)
    // Only the page is in the DOM, never the stream.
    expect(await page.locator('li.event').count()).toBe(50)
    await page.getByRole('button', { name: 'Previous page' }).click()
    await expect.poll(() => page.getByTestId('browser-status').textContent()).toContain('Offsets 0–49')
    // A search over the whole stream for one body.
    await page.getByLabel('Text in the body').fill('bulk event 9876')
    await page.getByRole('button', { name: 'Search' }).click()
    await expect.poll(() => rows.count()).toBe(1)
    await rows.first().locator('summary').click()
    expect(await rows.first().locator('pre').first().textContent()).toContain('"n": 9876')
    await page.screenshot({ path: join(shots, 'stream.png'), fullPage: true })
    await page.close()
  })

  it('publish: the form stores an event, says where it went, and the stream browser finds it', async () => {
    const page = await open('#/publish')
    await page.getByLabel('Exchange').selectOption('logs')
    await page.getByLabel('Body (JSON)').fill('{"service": "checkout", "level": "error", "message": "from the publish form"}')
    await page.getByRole('button', { name: 'Publish' }).click()
    await expect.poll(() => page.getByTestId('publish-result').textContent()).toBe('Stored · key checkout.error · routed to app-logs, errors')
    await page.screenshot({ path: join(shots, 'publish.png'), fullPage: true })
    await page.getByRole('link', { name: 'errors' }).click()
    await page.getByLabel('Routing key pattern').fill('checkout.*')
    await page.getByRole('button', { name: 'Search' }).click()
    const rows = page.getByTestId('events').locator('li')
    await expect.poll(() => rows.count()).toBe(1)
    expect(await rows.first().textContent()).toContain('from the publish form')
    await page.close()
  })

  it('live tail: a newly published event shows within a second', async () => {
    const page = await open('#/streams/app-logs')
    await page.getByRole('button', { name: 'Start live tail' }).click()
    await expect.poll(() => page.getByTestId('tail-status').textContent()).toContain('tailing')
    // Give the feed its first bytes (the server's hello) before publishing.
    await page.waitForTimeout(200)
    const published = Date.now()
    await publish(seeded.url, 'logs', [{ service: 'tail', level: 'info', message: 'seen live' }])
    await page.getByTestId('tail-events').locator('li', { hasText: 'seen live' }).waitFor({ timeout: 1000 })
    expect(Date.now() - published).toBeLessThan(1000)
    await page.getByRole('button', { name: 'Stop tail' }).click()
    await page.close()
  })

  it('groups: backlog and lag as /v1/groups has them; a reset to earliest replays, after a confirmation', async () => {
    const page = await open('#/groups')
    await page.getByTestId('group-indexer').waitFor()
    const g = await v1<{ backlog: number; cursor: number }>('/v1/groups/indexer')
    expect(g.backlog).toBeGreaterThan(0)
    await expect.poll(() => page.getByTestId('group-indexer').getByTestId('backlog').textContent()).toBe(grouped.format(g.backlog))
    await page.screenshot({ path: join(shots, 'groups.png'), fullPage: true })
    await page.getByRole('link', { name: 'indexer' }).click()
    await page.getByTestId('cursor').waitFor()
    // Lag over time: the server's samples, charted in events and in seconds.
    await expect.poll(() => page.getByTestId('lag-charts').locator('canvas').count()).toBe(2)
    const lag = await v1<{ tracked: boolean; times: number[] }>('/v1/groups/indexer/lag')
    expect(lag.tracked).toBe(true)
    expect(await page.getByTestId('lag-charts').getByRole('img').first().getAttribute('aria-label')).toMatch(/^Lag \(events\), last 15 minutes; now backlog: \d+ events$/)
    // Consume a little so the reset has something to replay.
    const got = await call<{ events: Array<{ tag: string }> }>(seeded.url, 'POST', '/v1/groups/indexer/fetch', { consumer: 'ui-test', max: 5 })
    await call(seeded.url, 'POST', '/v1/groups/indexer/ack', { consumer: 'ui-test', tags: got.body.events.map((e) => e.tag) })
    await expect.poll(async () => Number((await page.getByTestId('cursor').textContent())?.replace(/,/g, ''))).toBeGreaterThan(0)
    await page.getByLabel('To').selectOption('earliest')
    await page.getByRole('button', { name: 'Reset…' }).click()
    const dialog = page.getByRole('dialog')
    expect(await dialog.getByTestId('confirm-text').textContent()).toMatch(/^Move group indexer's cursor from offset \d+ to earliest\?/)
    await dialog.getByRole('button', { name: 'Reset' }).click()
    await expect.poll(() => page.getByTestId('action-result').textContent()).toBe('Cursor now at 0.')
    const after = await v1<{ cursor: number; backlog: number }>('/v1/groups/indexer')
    const stream = await v1<{ events: number }>('/v1/streams/app-logs')
    expect(after.cursor).toBe(0)
    // Replay: every event of the stream is pending again, but the dead-lettered ones.
    expect(after.backlog).toBeGreaterThanOrEqual(stream.events - 3)
    await expect.poll(() => page.getByTestId('group-backlog').textContent()).toBe(`${grouped.format(after.backlog)} events`)
    await page.screenshot({ path: join(shots, 'group.png'), fullPage: true })
    await page.close()
  })

  it('dead letters: by reason and origin with x-death; a redrive shows its count, then moves them back', async () => {
    const page = await open('#/dead-letters')
    await page.getByRole('link', { name: 'dlq' }).click()
    const summary = await v1<{ byReason: Record<string, number> }>('/v1/streams/dlq/dead-letters')
    expect(Object.keys(summary.byReason).sort()).toEqual(['delivery_limit', 'expired', 'maxlen', 'rejected'])
    for (const [reason, n] of Object.entries(summary.byReason)) {
      await expect.poll(() => page.getByTestId(`reason-${reason}`).locator('td').textContent()).toBe(String(n))
    }
    const rejected = summary.byReason.rejected!
    const first = page.getByTestId('events').locator('li').first()
    await first.locator('summary').click()
    expect(await first.textContent()).toContain('x-death: 1 death')
    await page.screenshot({ path: join(shots, 'dead-letters.png'), fullPage: true })
    const appLogs = (await v1<{ events: number }>('/v1/streams/app-logs')).events
    await page.locator('select[name="reason"]').selectOption('rejected')
    await expect.poll(() => page.getByTestId('redrive-button').textContent()).toBe(`Redrive ${rejected}…`)
    await page.getByTestId('redrive-button').click()
    const dialog = page.getByRole('dialog')
    expect(await dialog.getByTestId('confirm-text').textContent()).toBe(`Send ${rejected} events (the dead letters with reason rejected) back to the exchange and routing key they were dead-lettered from?`)
    await dialog.getByRole('button', { name: `Redrive ${rejected}` }).click()
    await expect.poll(() => page.getByTestId('action-result').textContent()).toBe(`Redrove ${rejected} events.`)
    // Back at their origin: app-logs holds the rejected ones again.
    expect((await v1<{ events: number }>('/v1/streams/app-logs')).events).toBe(appLogs + rejected)
    await expect.poll(() => page.getByTestId('reason-rejected').count()).toBe(0)

    // One hand-picked dead letter: its box, the count before confirming, then only it goes back.
    const dlq = (await v1<{ events: Array<{ offset: number; headers: { 'x-death': Array<{ reason: string }> } }> }>('/v1/streams/dlq/events')).events
    const expired = dlq.filter((e) => e.headers['x-death'][0]!.reason === 'expired').map((e) => e.offset)
    const short = (await v1<{ events: number }>('/v1/streams/short')).events
    await page.getByLabel(`Select event ${expired[0]!}`).check()
    await expect.poll(() => page.getByTestId('redrive-selected-button').textContent()).toBe('Redrive the 1 selected…')
    await page.getByTestId('redrive-selected-button').click()
    expect(await dialog.getByTestId('confirm-text').textContent()).toBe(`Send 1 of the 1 selected event (#${expired[0]!}) back to the exchange and routing key it was dead-lettered from?`)
    await page.screenshot({ path: join(shots, 'dead-letters-selected.png'), fullPage: true })
    await dialog.getByRole('button', { name: 'Redrive 1' }).click()
    await expect.poll(() => page.getByTestId('action-result').textContent()).toBe('Redrove 1 selected event.')
    expect((await v1<{ events: number }>('/v1/streams/short')).events).toBe(short + 1)
    // That one is redriven (the group may expire the copy again: it is a new dead letter); the other is not.
    expect((await v1<{ matching: number }>(`/v1/streams/dlq/dead-letters?offsets=${expired[0]!}`)).matching).toBe(0)
    expect((await v1<{ matching: number }>(`/v1/streams/dlq/dead-letters?offsets=${expired[1]!}`)).matching).toBe(1)
    await page.close()
  })
  it('definitions: the export as /v1/definitions writes it; an import shows what would change, then declares it after a confirmation', async () => {
    const page = await open('#/definitions')
    await page.getByText('Show the YAML').click()
    const yaml = await (await fetch(`${seeded.url}/v1/definitions`)).text()
    // The page shows the export as the API gives it (but for the time it was taken).
    const shown = (await page.getByTestId('export-yaml').textContent()) ?? ''
    const body = (t: string): string => t.replace(/^#.*\n/gm, '')
    expect(body(shown)).toBe(body(yaml))
    expect(shown).toContain('  app-logs: {} # from the configuration file')
    await page.getByLabel('Or the document (YAML or JSON)').fill('streams:\n  imported: { retention: { maxAge: 2d } }\nbindings:\n  - { exchange: bulk, stream: imported, key: imported }\n  - { exchange: bulk, stream: big, key: big }\ngroups:\n  importer: { stream: imported, ackTimeout: 1m }\n')
    await page.getByRole('button', { name: 'Show what would change' }).click()
    await expect.poll(() => page.getByTestId('plan-summary').textContent()).toBe('3 to declare, 1 already there, 0 in conflict.')
    expect(await page.getByTestId('change-stream-imported').locator('td').last().textContent()).toBe('declare')
    expect(await page.getByTestId('change-binding-bulk → stream big (key "big")').locator('td').last().textContent()).toBe('already there')
    // Planned only: nothing is declared yet.
    expect((await call(seeded.url, 'GET', '/v1/streams/imported')).status).toBe(404)
    await page.screenshot({ path: join(shots, 'definitions.png'), fullPage: true })
    await page.getByTestId('apply-button').click()
    const dialog = page.getByRole('dialog')
    expect(await dialog.getByTestId('confirm-text').textContent()).toContain('Declare 3 missing definitions (0 exchanges, 1 streams, 1 bindings, 1 groups)?')
    await dialog.getByRole('button', { name: 'Declare 3' }).click()
    await expect.poll(() => page.getByTestId('action-result').textContent()).toBe('Declared 3; 1 were already there.')
    expect((await v1<{ retention: { maxAgeMs: number } }>('/v1/streams/imported')).retention.maxAgeMs).toBe(2 * 86_400_000)
    expect((await v1<{ stream: string }>('/v1/groups/importer')).stream).toBe('imported')
    await expect.poll(() => page.getByTestId('export-yaml').textContent()).toContain('  imported: { retention: { maxAge: 2d } } # declared at run time')
    await page.close()
  })
})
