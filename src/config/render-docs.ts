// Prints docs/configuration.md: node dist/src/config/render-docs.js > docs/configuration.md
// and docs/limits.md: node dist/src/config/render-docs.js limits > docs/limits.md
// and docs/api.md: node dist/src/config/render-docs.js api > docs/api.md
import { renderApiMarkdown } from '../ingest/http/openapi.js'
import { renderConfigDocs } from './docs.js'
import { renderLimitsDocs } from './limits.js'

const which = process.argv[2]
process.stdout.write(which === 'limits' ? renderLimitsDocs() : which === 'api' ? renderApiMarkdown() : renderConfigDocs())
