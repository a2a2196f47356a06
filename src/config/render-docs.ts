// Prints docs/configuration.md: node dist/src/config/render-docs.js > docs/configuration.md
// and docs/limits.md: node dist/src/config/render-docs.js limits > docs/limits.md
import { renderConfigDocs } from './docs.js'
import { renderLimitsDocs } from './limits.js'

process.stdout.write(process.argv[2] === 'limits' ? renderLimitsDocs() : renderConfigDocs())
