// Prints docs/api.md: node dist/src/ingest/http/render-api.js > docs/api.md
import { renderApiMarkdown } from './openapi.js'

process.stdout.write(renderApiMarkdown())
