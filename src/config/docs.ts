// Renders docs/configuration.md from the key table. A test compares the file with this output,
// so the reference can only be changed by changing the table.

import { configSpec } from './keys.js'
import type { KeySpec, LeafSpec, ObjectSpec } from './spec.js'
import { nameRule } from './validate.js'

const intro = `# Configuration reference

<!-- Generated from src/config/keys.ts by renderConfigDocs(); do not edit by hand.
     Regenerate: npm run build && node dist/src/config/render-docs.js > docs/configuration.md
     test/config/docs.test.ts fails when this file and the key table disagree. -->

Sluice reads one YAML file (\`sluice serve --config config/sluice.yaml\`; \`sluice validate\` checks
one without starting). Every section and every key may be left out; an empty file is a valid
configuration in which every key below has its default. Unknown keys are errors, so a typo
cannot silently fall back to a default. An invalid file stops the start with every problem
listed by YAML path, line and column, for example:

\`\`\`
streams.app-logs.retention.maxAge (line 14, col 24): "7 days" is not a duration, e.g. 7d
bindings[2].stream (line 31, col 37): no stream named "erors"; did you mean \`errors\`?
\`\`\`

## Units

- **Sizes**: \`100b\`, \`512kb\`, \`64mb\`, \`1gb\`, \`1tb\` (also \`kib\`, \`mib\`, …). Multiples are
  binary: 1kb = 1024 bytes. A plain integer is bytes.
- **Durations**: \`5ms\`, \`30s\`, \`1m\`, \`2h\`, \`7d\`. A plain integer is milliseconds.
- **Rates**: \`5000/s\`, \`100/m\`, \`10/h\` for events; \`50mb/s\` for bytes. A plain number is per second.
- **none**: keys whose default is "none" (and keys marked "or none") take \`none\`, or an empty
  value, to switch the limit off.

## Environment variables

\`\${NAME}\` in a value is replaced by the variable's value; \`\${NAME:-default}\` uses \`default\`
when the variable is unset or empty. An unset variable without a default is an error naming the
variable and its line. Write \`$\${\` for a literal \`\${\`. Substitution applies to values, not keys.
A substituted value is read as if written in place, so \`port: \${PORT}\` is a number. Inside a
flow mapping \`{ ... }\` quote the reference, \`{ port: "\${PORT}" }\`, because YAML reserves \`{\`
there; it is still read as a number. An environment value can never add YAML structure.

## Names

Stream names become directory names under \`server.dataDir\`, so every name (exchange, stream,
group, API key) must ${nameRule}.
`

/** The Markdown reference for every key in the table. */
export function renderConfigDocs(): string {
  const parts = [intro]
  for (const [section, spec] of Object.entries(configSpec.keys)) {
    const rows: string[] = []
    const container = spec as KeySpec
    const itemPath = container.type === 'named' ? `${section}.<name>` : container.type === 'list' ? `${section}[]` : section
    const object = container.type === 'named' || container.type === 'list' ? container.of : container.type === 'object' ? container : undefined
    if (object !== undefined) collectRows(object, itemPath, rows)
    parts.push(`## ${section}\n\n${escape(container.doc)}\n`)
    parts.push(['| key | type | default | description |', '|---|---|---|---|', ...rows].join('\n') + '\n')
  }
  return parts.join('\n')
}

function collectRows(spec: ObjectSpec, path: string, rows: string[]): void {
  for (const [key, child] of Object.entries(spec.keys)) {
    const childPath = `${path}.${key}`
    switch (child.type) {
      case 'object':
        rows.push(row(childPath, child.orList ? 'mapping, or a list of them' : 'mapping', child.optional ? 'none' : '', child.doc))
        collectRows(child, childPath, rows)
        break
      case 'named':
        rows.push(row(childPath, `mapping of ${child.declares} names`, '`{}`', child.doc))
        collectRows(child.of, `${childPath}.<name>`, rows)
        break
      case 'list':
        rows.push(row(childPath, 'list', child.whenAbsent ?? '`[]`', child.doc))
        collectRows(child.of, `${childPath}[]`, rows)
        break
      default:
        rows.push(row(childPath, typeText(child), defaultText(child), child.doc))
    }
  }
}

function row(path: string, type: string, defaultValue: string, doc: string): string {
  return `| \`${path}\` | ${type} | ${defaultValue} | ${escape(doc)} |`
}

// Pipes would end a table cell.
function escape(text: string): string {
  return text.replaceAll('|', '\\|')
}

export function typeText(spec: LeafSpec): string {
  const range = (min?: number | string, max?: number | string): string => {
    if (min !== undefined && max !== undefined) return ` (${min} to ${max})`
    if (min !== undefined) return ` (at least ${min})`
    if (max !== undefined) return ` (at most ${max})`
    return ''
  }
  switch (spec.type) {
    case 'enum':
      return spec.values.map((v) => `\`${v}\``).join(' \\| ')
    case 'name':
      return spec.ref === undefined ? 'name' : `${spec.ref === 'apiKey' ? 'API key' : spec.ref} name`
    case 'int':
    case 'number':
      return `${spec.type === 'int' ? 'integer' : 'number'}${range(spec.min, spec.max)}`
    case 'size':
    case 'duration':
      return `${spec.type}${range(spec.min, spec.max)}`
    case 'eventRate':
      return 'event rate'
    case 'byteRate':
      return 'byte rate'
    case 'template':
      return 'routing-key template'
    case 'remote':
      return 'IP or CIDR'
    case 'start':
      return '`earliest` \\| `latest` \\| offset \\| ISO time'
    case 'headers':
      return 'mapping of strings'
    case 'enumList':
      return `list of ${spec.values.map((v) => `\`${v}\``).join(', ')}`
    case 'remoteList':
      return 'list of IPs or CIDRs'
    case 'urlList':
      return 'list of URLs'
    case 'bool':
      return 'boolean'
    case 'string':
      return 'string'
  }
}

export function defaultText(spec: LeafSpec): string {
  if (spec.required) return 'required'
  if (spec.default === null || spec.default === undefined) return 'none'
  const written = Array.isArray(spec.default) ? `[${spec.default.join(', ')}]` : typeof spec.default === 'object' ? JSON.stringify(spec.default) : String(spec.default)
  const shown = written === '' ? '`""`' : `\`${escape(written)}\``
  return spec.nullable ? `${shown} (or none)` : shown
}
