// Validates the app section of an iexec.json with the iExec SDK's own schema (iexec 9.0.1,
// the `appSchema` that `iexec app deploy` runs), then with the rules that schema does not
// enforce but a TDX deployment needs: a non-zero owner, a docker reference as multiaddr, and
// no mrenclave.
//
//   node tests/npm/validate-iexec-json.mjs iexec.json
//
// Prints VALID, or INVALID: <reasons>, and exits 0 or 1. No network is used.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

// appSchema is not exported by the package's entry points; import the SDK's module by path.
const entry = createRequire(import.meta.url).resolve('iexec');
const { appSchema } = await import(
  pathToFileURL(join(dirname(entry), '..', 'common', 'utils', 'validator.js')).href
);

const doc = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const app = doc.app ?? {};
const errors = [];
try {
  await appSchema().validate({ ...app }, { abortEarly: false });
} catch (e) {
  errors.push(...(e.errors ?? [String(e)]).map((m) => `SDK: ${m}`));
}
if (/^0x0{40}$/i.test(app.owner ?? '')) errors.push('owner is the zero address');
if (!/^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9._\/-]+:[A-Za-z0-9._-]+$/.test(app.multiaddr ?? '')) {
  errors.push(`multiaddr ${JSON.stringify(app.multiaddr)} is not REGISTRY/NAME:TAG`);
}
if ('mrenclave' in app) errors.push('a TDX app has no mrenclave');
if (errors.length) {
  console.log(`INVALID: ${errors.join('; ')}`);
  process.exit(1);
}
console.log('VALID');
