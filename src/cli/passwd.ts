import { randomBytes } from 'node:crypto'
import { hashApiKey, hashPassword } from '../auth/index.js'
import { CliError, parseCommand, renderCommandHelp, type CommandSpec } from './args.js'

export const passwdSpec: CommandSpec = {
  name: 'passwd',
  summary: 'print a passwordHash for auth.users, or an API key and its keyHash',
  positionals: [],
  options: {
    'api-key': { type: 'boolean', doc: 'hash an API key (SHA-256, for auth.apiKeys[].keyHash) instead of a password (scrypt)' },
    generate: { type: 'boolean', doc: 'with --api-key: make a random key and print it with its hash' },
  },
  description: `Prints the hash to put in the configuration file, so no secret is stored in it. The secret is
typed at a prompt that does not echo it (asked twice), or read from the first line of stdin.`,
  examples: [
    'sluice passwd                                  # prompts; prints a passwordHash for auth.users',
    'echo -n "$SECRET" | sluice passwd              # from a pipe',
    'sluice passwd --api-key --generate             # a new API key and its keyHash',
  ],
}

/** A secret from a prompt that does not echo it (asked twice), or the first line of piped stdin. */
async function readSecret(what: string): Promise<string> {
  const stdin = process.stdin
  if (!stdin.isTTY) {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(chunk as Buffer)
    return (Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '').replace(/\r$/, '')
  }
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve, reject) => {
      process.stderr.write(prompt)
      let typed = ''
      stdin.setRawMode(true)
      stdin.resume()
      const onData = (data: Buffer): void => {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            done()
            process.stderr.write('\n')
            resolve(typed)
            return
          }
          if (ch === '\u0003') {
            done()
            process.stderr.write('\n')
            reject(new CliError('interrupted; nothing printed', 130))
            return
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1)
          else typed += ch
        }
      }
      const done = (): void => {
        stdin.off('data', onData)
        stdin.setRawMode(false)
        stdin.pause()
      }
      stdin.on('data', onData)
    })
  const first = await ask(`${what}: `)
  const again = await ask(`${what} again: `)
  if (first !== again) throw new CliError(`the two ${what}s differ; nothing printed`, 1)
  return first
}

export async function passwd(args: readonly string[]): Promise<number> {
  const p = parseCommand(passwdSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(passwdSpec))
    return 0
  }
  const values = { 'api-key': p.values['api-key'] === true, generate: p.values.generate === true }
  if (values.generate) {
    if (!values['api-key']) throw new CliError('--generate makes API keys: sluice passwd --api-key --generate')
    // 32 random bytes: far beyond guessing, so one SHA-256 is enough to store it.
    const key = randomBytes(32).toString('base64url')
    process.stdout.write(`key: ${key}\nkeyHash: ${hashApiKey(key)}\n`)
    return 0
  }
  const secret = await readSecret(values['api-key'] ? 'API key' : 'Password')
  if (secret === '') {
    process.stderr.write('empty secret; nothing printed\n')
    return 1
  }
  process.stdout.write(`${values['api-key'] ? hashApiKey(secret) : await hashPassword(secret)}\n`)
  return 0
}
