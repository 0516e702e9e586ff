// Protected-data zips made by the real DataProtector packages, and what the official reader
// (@iexec/dataprotector-deserializer) decodes from them. Used by the app's tests and the
// replay tests (tests/replay.rs):
//
//   node tests/npm/protected-data.mjs OUT_DIR
//
// writes OUT_DIR/<case>.zip for every case and OUT_DIR/cases.json: for each case, the fields
// the official reader returns (values as JSON; bigints as decimal strings).
// createZipFromObject is not exported by the packages' entry points, so its module is
// imported by path (the packages' own code, unchanged).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createZipFromObject as zip2 } from './node_modules/@iexec/dataprotector/dist/src/utils/data.js';
import { createZipFromObject as zip053 } from './node_modules/@iexec/dataprotector-053/dist/utils/data.js';
import { IExecDataProtectorDeserializer } from '@iexec/dataprotector-deserializer';

const out = process.argv[2];
if (!out) {
  console.error('usage: node protected-data.mjs OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const PROMPT = 'What is the capital of France?';
const cases = {};

/// Writes a zip and reads the named fields back with the official reader.
async function record(name, bytes, reads) {
  const path = join(out, `${name}.zip`);
  writeFileSync(path, bytes);
  const fields = {};
  const reader = new IExecDataProtectorDeserializer({ protectedDataPath: path });
  for (const [field, schema] of reads) {
    try {
      const v = await reader.getValue(field, schema);
      fields[field] = typeof v === 'bigint' ? v.toString() : v;
    } catch (e) {
      fields[field] = { error: String(e.message || e) };
    }
  }
  cases[name] = { file: `${name}.zip`, fields };
}

// 2.x (borsh) and 0.5.3 (raw text, decimal numbers), as users make them.
await record('v2-prompt', await zip2({ prompt: PROMPT }), [['prompt', 'string']]);
await record(
  'v2-full',
  await zip2({
    prompt: PROMPT,
    system: 'Answer in one word.',
    max_tokens: 16,
    temperature: 0,
    top_p: 0.5,
    seed: 12345678901234567890n,
    template: 'chat',
  }),
  [['prompt', 'string'], ['system', 'string'], ['max_tokens', 'f64'], ['temperature', 'f64'],
   ['top_p', 'f64'], ['seed', 'i128'], ['template', 'string']],
);
await record('v053-prompt', await zip053({ prompt: PROMPT }), [['prompt', 'string']]);
await record(
  'v053-full',
  await zip053({ prompt: PROMPT, system: 'Answer in one word.', max_tokens: 16, seed: 7 }),
  [['prompt', 'string'], ['system', 'string'], ['max_tokens', 'number'], ['seed', 'number']],
);
await record('v2-unicode', await zip2({ prompt: 'Quelle est la capitale de la France ? 首都は？ 😀' }),
  [['prompt', 'string']]);

// Parameters the replay must set itself when the dataset carries them: a time budget too
// short to count this far, and a length that the clock reaches first.
const COUNTING = '1, 2, 3, 4, 5, 6, 7, 8, 9, 10,';
const CLOCK = { prompt: COUNTING, max_tokens: 32768, time_budget: 4, template: 'raw', temperature: 0 };
const CLOCK_READS = [['prompt', 'string'], ['max_tokens', 'f64'], ['time_budget', 'f64'],
  ['template', 'string'], ['temperature', 'f64']];
await record('v2-clock', await zip2(CLOCK), CLOCK_READS);
await record('v053-clock', await zip053(CLOCK),
  CLOCK_READS.map(([f, t]) => [f, t === 'f64' ? 'number' : t]));

// A zip whose every byte is valid UTF-8: a plain-text reader would take the zip itself for
// the prompt. Made by the real package; its DOS timestamps (the only bytes that vary from run
// to run) are set to 1980-01-01 00:00, and the prompt's padding is chosen so that the CRC and
// sizes are ASCII.
{
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let found = null;
  for (let i = 0; i < 100000 && !found; i += 1) {
    const z = Buffer.from(await zip2({ prompt: `${PROMPT}${' '.repeat(i % 7)}${'!'.repeat(Math.floor(i / 7))}` }));
    for (const [sig, at] of [[0x04034b50, 10], [0x02014b50, 12]]) {
      for (let p = z.indexOf(Buffer.from(new Uint32Array([sig]).buffer)); p >= 0;
        p = z.indexOf(Buffer.from(new Uint32Array([sig]).buffer), p + 4)) {
        z.writeUInt16LE(0, p + at); // time
        z.writeUInt16LE(0x21, p + at + 2); // date: 1980-01-01
      }
    }
    try {
      utf8.decode(z);
      found = z;
    } catch {
      // not this one
    }
  }
  if (!found) throw new Error('no UTF-8 zip found');
  await record('v2-valid-utf8', found, [['prompt', 'string']]);
}

// Bad datasets: each must get a clear error naming the problem.
await record('no-prompt', await zip2({ system: 'Answer in one word.' }), [['prompt', 'string']]);
await record('prompt-number', await zip2({ prompt: 42 }), [['prompt', 'string']]);
await record('prompt-bool', await zip2({ prompt: true }), [['prompt', 'string']]);
await record('prompt-bytes', await zip2({ prompt: new Uint8Array([1, 2, 3]) }), [['prompt', 'string']]);
await record('nested', await zip2({ prompt: PROMPT, options: { max_tokens: 16 } }),
  [['prompt', 'string'], ['options.max_tokens', 'f64']]);
await record('unknown-field', await zip2({ prompt: PROMPT, max_token: 16 }), [['prompt', 'string']]);
await record('escape', await zip2({ prompt: PROMPT, '../x': 'a' }), [['prompt', 'string']]);
await record('max-tokens-string', await zip2({ prompt: PROMPT, max_tokens: 'sixteen' }),
  [['max_tokens', 'f64']]);

writeFileSync(join(out, 'cases.json'), JSON.stringify(cases, null, 1));
