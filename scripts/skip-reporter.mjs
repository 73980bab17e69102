// node:test reporter used by scripts/run-tests.mjs next to `spec`: writes one JSON line per skipped test or
// suite ({file, name, reason, suite}) to its destination, so the runner can end with what was skipped and why.
// It reports nothing else; `spec` prints the run.
export default async function* skipReporter(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, file, name, details } = event.data;
    if (skip === undefined || skip === false) continue;
    yield `${JSON.stringify({ file, name, reason: skip === true ? '' : String(skip), suite: details?.type === 'suite' })}\n`;
  }
}
