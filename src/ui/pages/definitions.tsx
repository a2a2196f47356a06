import { useState } from 'preact/hooks'
import { api, apiText, type ImportAnswer } from '../api.js'
import { Confirm, ErrorText, message, Page, Table, usePoll, type ConfirmRequest } from '../components.js'
import { num } from '../format.js'

const yamlType = 'application/yaml'

/**
 * Export and import of every definition in the configuration file's shape
 * (GET and POST /v1/definitions). An import is always planned first (a dry run), so a person sees
 * what would be declared, and any conflict, before anything is.
 */
export function DefinitionsPage(): preact.JSX.Element {
  const exported = usePoll((signal) => apiText('/v1/definitions', { signal }), 0)
  const [doc, setDoc] = useState('')
  const [plan, setPlan] = useState<ImportAnswer | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null)
  const [done, setDone] = useState<string | undefined>(undefined)

  const download = (): void => {
    if (exported.data === undefined) return
    const url = URL.createObjectURL(new Blob([exported.data], { type: yamlType }))
    const a = document.createElement('a')
    a.href = url
    a.download = 'sluice-definitions.yaml'
    a.click()
    setTimeout(() => URL.revokeObjectURL(url), 1000)
  }

  const check = async (e: Event): Promise<void> => {
    e.preventDefault()
    setDone(undefined)
    try {
      setPlan(await api<ImportAnswer>('/v1/definitions?dryRun=true', { method: 'POST', text: { type: yamlType, value: doc } }))
      setError(undefined)
    } catch (err) {
      setPlan(undefined)
      setError(message(err))
    }
  }

  const creates = plan?.changes.filter((c) => c.action === 'create') ?? []
  const askApply = (): void => {
    setConfirm({
      title: 'Import definitions',
      text: `Declare ${creates.length} missing ${creates.length === 1 ? 'definition' : 'definitions'} (${(['exchange', 'stream', 'binding', 'group'] as const).map((k) => `${creates.filter((c) => c.kind === k).length} ${k}s`).join(', ')})? They are declared at run time, as over AMQP, and kept across restarts.`,
      action: `Declare ${creates.length}`,
      run: async () => {
        const r = await api<ImportAnswer>('/v1/definitions', { method: 'POST', text: { type: yamlType, value: doc } })
        return `Declared ${r.changes.filter((c) => c.action === 'create').length}; ${r.changes.filter((c) => c.action === 'unchanged').length} were already there.`
      },
    })
  }

  return (
    <Page title="Definitions">
      <p class="muted">
        Every exchange, stream, binding and group, those of the configuration file and those declared at run time, in the configuration file's own shape. With a server section beside it, the export is a configuration file.
      </p>
      <section class="card" aria-labelledby="export-title">
        <h2 id="export-title">Export</h2>
        <ErrorText error={exported.error} />
        <div class="actions">
          <button type="button" disabled={exported.data === undefined} onClick={download}>
            Download YAML
          </button>
        </div>
        {exported.data !== undefined && (
          <details>
            <summary>Show the YAML</summary>
            <pre class="json" data-testid="export-yaml">
              {exported.data}
            </pre>
          </details>
        )}
      </section>
      <form class="card" onSubmit={(e) => void check(e)} aria-labelledby="import-title">
        <h2 id="import-title">Import</h2>
        <label class="block">
          A file
          <input
            type="file"
            accept=".yaml,.yml,.json,application/yaml,application/json"
            onChange={(e) => {
              const f = e.currentTarget.files?.[0]
              if (f !== undefined) void f.text().then((t) => (setDoc(t), setPlan(undefined)))
            }}
          />
        </label>
        <label class="block">
          Or the document (YAML or JSON)
          <textarea name="definitions" rows={10} value={doc} onInput={(e) => (setDoc(e.currentTarget.value), setPlan(undefined))} />
        </label>
        <div class="actions">
          <button type="submit" disabled={doc.trim() === ''}>
            Show what would change
          </button>
        </div>
        <ErrorText error={error} />
      </form>
      {done !== undefined && (
        <p class="banner ok" role="status" data-testid="action-result">
          {done}
        </p>
      )}
      {plan !== undefined && (
        <section class="card" aria-labelledby="plan-title">
          <h2 id="plan-title">What would change</h2>
          <p data-testid="plan-summary">
            {num(creates.length)} to declare, {num(plan.changes.length - creates.length)} already there, {num(plan.conflicts.length)} in conflict.
          </p>
          {plan.conflicts.length > 0 && (
            <ul class="error" role="alert" data-testid="plan-conflicts">
              {plan.conflicts.map((c) => (
                <li key={`${c.kind}/${c.name}`}>{c.message}</li>
              ))}
            </ul>
          )}
          <Table label="Changes" head={['kind', 'name', 'change']}>
            {plan.changes.map((c) => (
              <tr key={`${c.kind}/${c.name}`} data-testid={`change-${c.kind}-${c.name}`}>
                <td>{c.kind}</td>
                <th scope="row">{c.name}</th>
                <td>{c.action === 'create' ? 'declare' : 'already there'}</td>
              </tr>
            ))}
          </Table>
          <div class="actions">
            <button type="button" class="danger" disabled={plan.conflicts.length > 0 || creates.length === 0} onClick={askApply} data-testid="apply-button">
              Declare {num(creates.length)}…
            </button>
          </div>
        </section>
      )}
      <Confirm
        request={confirm}
        onClose={(result) => {
          setConfirm(null)
          if (result !== undefined) {
            setDone(result)
            setPlan(undefined)
            exported.reload()
          }
        }}
      />
    </Page>
  )
}
