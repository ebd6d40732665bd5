/** Plain-text tables for list commands (no colour: output is often piped). */
export function table(rows: Record<string, unknown>[], columns: { key: string; title: string; max?: number }[]): string {
  const cell = (v: unknown, max?: number): string => {
    let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : JSON.stringify(v);
    s = s.replace(/\s+/g, ' ');
    if (max && s.length > max) s = `${s.slice(0, max - 1)}…`;
    return s;
  };
  const cells = rows.map((r) => columns.map((c) => cell(r[c.key], c.max)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]): string => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n');
}

/** "2026-11-26T23:59:01.123Z" → "2026-11-26 23:59:01" (UTC, as the api sends it). */
export function shortTime(v: unknown): string {
  if (typeof v !== 'string') return '';
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(v);
  return m ? `${m[1]} ${m[2]}` : v;
}
