// Fetches @iexec/poco 6.1.0 from the npm registry with `npm pack`, checks the tarball's
// integrity against the pin below and unpacks it into DEST (argv[2]). Only its shipped files
// are used (artifacts/, deployments/, abis/): `npm install @iexec/poco` would also try to
// clone two GitHub dependencies, which the tests neither need nor can reach.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const SPEC = '@iexec/poco@6.1.0';
const INTEGRITY =
  'sha512-BPbDtf2fgQuotr6rf74ACVdwlKqkErEZ8qLbTWM+2CIBj2EX3+6KBGWsFoudoOGjgT7vUJ3jeNX8SWvHzSHg6A==';
const dest = path.resolve(process.argv[2] || 'poco');
if (fs.existsSync(path.join(dest, 'package.json'))) {
  process.stdout.write(`${dest}\n`);
  process.exit(0);
}
const work = `${dest}.download`;
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const info = JSON.parse(
  execFileSync('npm', ['pack', SPEC, '--json', '--pack-destination', work], { encoding: 'utf8' }),
)[0];
if (info.integrity !== INTEGRITY) {
  throw new Error(`${SPEC}: integrity ${info.integrity}, expected ${INTEGRITY}`);
}
const unpacked = path.join(work, 'package');
execFileSync('tar', ['xzf', path.join(work, info.filename), '-C', work]);
fs.renameSync(unpacked, dest);
fs.rmSync(work, { recursive: true, force: true });
process.stdout.write(`${dest}\n`);
