// Shell command policy and terminal masking benchmark. Build first: pnpm build (or pnpm exec tsc -b libs/policy)
//   pnpm bench:shell [--seconds 1]
// Prints, in one run:
//  - decisions/s for typical exec commands and shell lines (uncached, and through PolicyEngine's cache);
//  - the worst case a client can ask for within the default bounds (16 KiB of words, of statements,
//    of nesting just below the limit): milliseconds per decision, and how the refusal of an input
//    over the bounds costs;
//  - the stream masker's throughput on terminal output against maskText over the same text in one
//    piece (the ratio is the cost of streaming: cuts, hold-back, escape handling), and against a
//    plain copy;
//  - the line editor model's keystrokes/s.
import { LineEditorModel, PolicyEngine, createStreamMasker, evaluateCommand, maskText, parsePolicyDocument } from '../libs/policy/dist/index.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SECONDS = opt('seconds', 1);

const doc = parsePolicyDocument({
  name: 'bench',
  guardrails: [
    { name: 'rm-root', action: 'block', match: { commands: ['rm'], args: ['-r', '-R', '--recursive'], paths: ['/', '/*'] } },
    { name: 'mkfs', action: 'block', match: { commands: ['mkfs*'] } },
    { name: 'disks', action: 'block', match: { redirects: ['/dev/sd*', '/dev/nvme*'] } },
    { name: 'pipe-to-shell', action: 'block', match: { commands: ['sh', 'bash'], pipedFrom: ['curl', 'wget'] } },
    { name: 'sudo', action: 'require_approval', match: { commands: ['sudo', 'su'] } },
    { name: 'etc', action: 'require_approval', match: { redirects: ['/etc/**'] } },
  ],
  masking: [{ name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT'], strategy: 'redact' }],
});

function rate(fn) {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  while (performance.now() < end) { fn(n); n++; }
  return n / SECONDS;
}
const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2));

const TYPICAL = [
  'ls -la /var/log',
  'tail -n 200 /var/log/syslog | grep -i error',
  "sudo systemctl restart nginx && curl -fsS http://127.0.0.1/healthz",
  "find /srv/app -name '*.log' -mtime +7 -exec rm -f {} \\;",
  'for f in *.csv; do wc -l "$f"; done > /tmp/counts.txt',
  "bash -c 'cd /srv/app && git pull && npm ci --omit=dev'",
];
evaluateCommand('warm up', doc);
let i = 0;
const uncached = rate(() => evaluateCommand(`${TYPICAL[i++ % TYPICAL.length]} # ${i}`, doc));
const engine = new PolicyEngine(doc);
const cached = rate(() => engine.evaluateCommand(TYPICAL[i++ % TYPICAL.length]));
console.log(`typical commands (${TYPICAL.length} shapes, ~60 chars): ${fmt(uncached)} decisions/s uncached, ${fmt(cached)}/s cached (${fmt(cached / uncached)}x)`);

const worst = {
  '16 KiB of words': `echo ${'ab '.repeat(5400)}`,
  '1,000 statements': 'ls;'.repeat(1000),
  'nesting 60 deep': `${'$('.repeat(60)}x${')'.repeat(60)}`,
  'bash -c 8 levels': 'eval '.repeat(8) + 'ls',
};
for (const [name, text] of Object.entries(worst)) {
  const t = performance.now();
  const d = evaluateCommand(text, doc);
  const first = performance.now() - t;
  const per = 1000 / rate(() => evaluateCommand(text, doc));
  console.log(`worst case ${name} (${text.length} chars): ${per.toFixed(1)} ms per decision (first ${first.toFixed(1)} ms), ${d.action}${d.rule ? ` (${d.rule})` : ''}`);
}
const over = `${'('.repeat(5000)}x`;
console.log(`over the bounds (5,000 nested parentheses): ${(1000 / rate(() => evaluateCommand(over, doc))).toFixed(3)} ms per refusal (${evaluateCommand(over, doc).rule})`);

// terminal output: log lines with some values to mask and colour codes
const lines = [];
for (let k = 0; k < 2000; k++) {
  lines.push(k % 10 === 0
    ? `\x1b[32m2026-12-07T12:00:${String(k % 60).padStart(2, '0')}Z\x1b[0m user alice${k}@example.com paid with 4111 1111 1111 1111 ssn 123-45-6789\r\n`
    : `\x1b[32m2026-12-07T12:00:${String(k % 60).padStart(2, '0')}Z\x1b[0m GET /api/items/${k} 200 ${k % 97}ms bytes=${k * 31}\r\n`);
}
const text = lines.join('');
const bytes = Buffer.from(text);
const hmacKey = Buffer.alloc(32, 1);
const mb = bytes.length / 1e6;
for (const chunk of [64, 4096, 16384]) {
  const r = rate(() => {
    const m = createStreamMasker(doc, { hmacKey });
    for (let o = 0; o < bytes.length; o += chunk) m.push(bytes.subarray(o, o + chunk));
    m.flush();
  });
  const whole = rate(() => maskText(text, doc, { hmacKey }));
  console.log(`stream masker, ${chunk}-byte chunks: ${fmt(r * mb)} MB/s; maskText of the same text in one piece ${fmt(whole * mb)} MB/s (streaming ${fmt(whole / r)}x the cost)`);
}
const copy = rate(() => Buffer.from(bytes.toString('utf8')));
console.log(`plain decode+copy of the same output: ${fmt(copy * mb)} MB/s`);

const keys = Buffer.from('sudo systemctl restart nginx\x1b[D\x1b[Dx\x7f\x7f\x05\r'.repeat(100));
const keyRate = rate(() => {
  const m = new LineEditorModel();
  for (let o = 0; o < keys.length; ) {
    const at = m.feedUntilEnter(keys, o);
    if (at < 0) break;
    m.take();
    o = at + 1;
  }
});
console.log(`line editor model: ${fmt(keyRate * keys.length)} keystrokes/s`);
