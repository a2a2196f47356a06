import { beforeAll, describe, expect, it } from 'vitest'
import { commands } from '../../src/cli/main.js'
import { freePort } from '../helpers/programs.js'
import { requireBuiltCli, runCli, stackFrame } from '../helpers/cli.js'
import { serverWithEvents } from '../helpers/tail-events.js'


describe('sluice CLI', () => {
  beforeAll(requireBuiltCli)

  describe('help', () => {
    it('`sluice --help` lists every command; no command at all prints the same on stderr with exit code 2', async () => {
      const help = await runCli(['--help'])
      expect(help.code).toBe(0)
      for (const name of Object.keys(commands)) expect(help.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'))
      expect(help.stdout).toContain('examples:')
      const bare = await runCli([])
      expect([bare.code, bare.stdout, bare.stderr]).toEqual([2, '', help.stdout])
    })

    it.each(Object.keys(commands))('`sluice %s --help` shows its usage, every option and examples', async (name) => {
      const r = await runCli([name, '--help'])
      expect([r.code, r.stderr]).toEqual([0, ''])
      expect(r.stdout).toMatch(new RegExp(`^usage: sluice ${name}\\b`))
      for (const option of Object.keys(commands[name]!.spec.options)) expect(r.stdout).toContain(`--${option}`)
      const examples = r.stdout.slice(r.stdout.indexOf('\nexamples:\n'))
      expect(examples.match(new RegExp(`^  sluice ${name}\\b`, 'gm'))?.length ?? 0).toBeGreaterThanOrEqual(1)
      // `sluice help <command>` and -h say the same.
      expect((await runCli(['help', name])).stdout).toBe(r.stdout)
      expect((await runCli([name, '-h'])).stdout).toBe(r.stdout)
    })
  })

  describe('mistakes are said in a line, with exit code 2 and no stack', () => {
    it.each([
      [['tail', 'app-logs', '--folow'], 'sluice tail: unknown option --folow (did you mean --follow?)\nrun `sluice tail --help` for its options and examples\n'],
      [['tail', 'app-logs', '--limit', 'abc'], 'sluice tail: --limit takes a whole number from 1 up, not "abc"\n'],
      [['tail', 'app-logs', '-n', '0'], 'sluice tail: --limit takes a whole number from 1 up, not "0"\n'],
      [['tail', 'app-logs', '--limit'], 'sluice tail: option --limit needs a value (N)\nrun `sluice tail --help` for its options and examples\n'],
      [['tail', 'app-logs', '--follow=yes'], 'sluice tail: option --follow takes no value\nrun `sluice tail --help` for its options and examples\n'],
      [['tail', 'app-logs', '--from', 'yesterday'], 'sluice tail: --from takes earliest, latest, an offset or an ISO 8601 time (2024-05-01T12:00:00Z), not "yesterday"\n'],
      [['tail', 'app-logs', '--from=-5'], 'sluice tail: --from takes an offset from 0 up, not -5; for the last N events use -n N\n'],
      [['tail'], 'sluice tail: missing STREAM\nrun `sluice tail --help` for its options and examples\n'],
      [['tail', 'a', 'b'], 'sluice tail: unexpected argument "b"\nrun `sluice tail --help` for its options and examples\n'],
      [['redrive', 'dlq', '--limit', '1.5'], 'sluice redrive: --limit takes a whole number from 1 up, not "1.5"\n'],
      [['tial', 'app-logs'], 'sluice: unknown command "tial" (did you mean tail?)\nrun `sluice --help` for the commands\n'],
      [['--hlep'], 'sluice: unknown option --hlep (did you mean --help?)\nrun `sluice --help` for the commands\n'],
      [['validate', 'missing.yaml'], 'sluice validate: cannot read missing.yaml: no such file or directory\n'],
      [['validate'], 'sluice validate: name the file to check: sluice validate FILE\nrun `sluice validate --help` for its options and examples\n'],
      [['fsck', '/nonexistent'], 'sluice fsck: cannot read /nonexistent: no such file or directory\n'],
      [['fsck', 'package.json'], "sluice fsck: package.json is not a directory: name a data dir (server.dataDir) or a stream's directory in it\n"],
      [['serve', '--config', 'missing.yaml'], 'sluice serve: cannot read missing.yaml: no such file or directory\n'],
      [['serve', '--log-format', 'xml'], 'sluice serve: --log-format takes json or pretty, not "xml"\n'],
      [['passwd', '--generate'], 'sluice passwd: --generate makes API keys: sluice passwd --api-key --generate\n'],
    ])('sluice %j', async (args, stderr) => {
      const r = await runCli(args)
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 2, stdout: '', stderr })
    })

    it.each([
      ['tail', ['tail', 'app-logs']],
      ['redrive', ['redrive', 'app-logs-dlq']],
      ['publish', ['publish', 'logs']],
    ])('%s with no server: "cannot reach …: is `sluice serve` running?"', async (_name, args) => {
      const url = `http://127.0.0.1:${await freePort()}`
      const r = await runCli([...args, '--url', url], { input: '{"a":1}\n' })
      expect(r.code).toBe(2)
      expect(r.stderr).toBe(`sluice ${args[0]}: cannot reach ${url}: is \`sluice serve\` running? (ECONNREFUSED)\nset the address with --url or $SLUICE_URL\n`)
      expect(r.stderr).not.toMatch(stackFrame)
    })

    it('an answer that refuses says its status, code and message, with exit code 1', async () => {
      const url = await serverWithEvents()
      const r = await runCli(['tail', 'nope', '--url', url])
      expect([r.code, r.stderr]).toEqual([1, 'sluice tail: 404 unknown_stream: stream "nope" does not exist\n'])
    })
  })

})
