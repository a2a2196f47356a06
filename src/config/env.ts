// `${NAME}` and `${NAME:-default}` substitution in scalar values. Substitution happens on parsed
// scalars, not on the raw text, so an environment value can never inject YAML structure (a
// value containing ": " or a newline stays one string).

export type Env = Readonly<Record<string, string | undefined>>

export type Substitution = { ok: true; value: string; changed: boolean } | { ok: false; problem: string }

// `$${` escapes a literal `${`, so a password or template may contain one.
const reference = /\$\$\{|\$\{([^}]*)\}|\$\{/g
const namePattern = /^[A-Za-z_][A-Za-z0-9_]*$/

export function substitute(text: string, env: Env): Substitution {
  if (!text.includes('${')) return { ok: true, value: text, changed: false }
  let problem: string | undefined
  const value = text.replace(reference, (match: string, body: string | undefined) => {
    if (match === '$${') return '${'
    if (body === undefined) {
      problem ??= `unterminated \`\${\` in ${JSON.stringify(text)}; write $\${ for a literal \${`
      return match
    }
    const sep = body.indexOf(':-')
    const name = sep < 0 ? body : body.slice(0, sep)
    if (!namePattern.test(name)) {
      problem ??= `\`\${${body}}\` is not a variable reference; use \${NAME} or \${NAME:-default}`
      return match
    }
    const set = env[name]
    // As in the shell, `:-` also replaces a variable that is set but empty.
    if (sep >= 0) return set === undefined || set === '' ? body.slice(sep + 2) : set
    if (set === undefined) {
      problem ??= `environment variable ${name} is not set and has no default (write \${${name}:-default})`
      return match
    }
    return set
  })
  return problem === undefined ? { ok: true, value, changed: true } : { ok: false, problem }
}
