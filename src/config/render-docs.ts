// Prints docs/configuration.md: node dist/src/config/render-docs.js > docs/configuration.md
import { renderConfigDocs } from './docs.js'

process.stdout.write(renderConfigDocs())
