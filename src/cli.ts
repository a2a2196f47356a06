#!/usr/bin/env node
// The `sluice` command (package.json "bin"); the commands live in src/cli/.
import { main } from './cli/main.js'

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
