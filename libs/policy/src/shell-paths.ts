/**
 * Paths and globs for command and file rules. A path the analyser knows is kept as a *pattern*
 * (literal characters escaped with `\`), so one comparison — do the two patterns have a path in
 * common? — covers a literal path (`/etc/passwd`), a path the shell will glob (`/e*`/`/*`), and a
 * path the gateway cannot know (`**`: anything), against the rule's glob. Matching is fail closed:
 * when the argument could be a path the rule names, the rule matches.
 *
 * Glob syntax of rules (and of shell words): `*` any characters but `/`, `?` one character but
 * `/`, `[…]` one character of a class (`[!…]`/`[^…]` negated), `**` any characters including `/`
 * (`/etc/**` covers `/etc` itself and everything under it), `\x` a literal x.
 */

/** One element of a compiled glob. */
type GlobToken =
  | { t: 'lit'; c: string }
  | { t: 'any' } // ?
  | { t: 'star' } // *
  | { t: 'globstar' } // **
  // either skip the next `skip` tokens or go on with them: `**/` and a final `/**` are optional
  | { t: 'opt'; skip: number }
  | { t: 'class'; negated: boolean; set: string; ranges: [string, string][] };

const MAX_GLOB = 4096;

export function tokenizeGlob(glob: string): GlobToken[] {
  const out: GlobToken[] = [];
  const s = glob.length > MAX_GLOB ? glob.slice(0, MAX_GLOB) : glob;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) { out.push({ t: 'lit', c: s[++i]! }); continue; }
    if (c === '?') { out.push({ t: 'any' }); continue; }
    if (c === '*') {
      if (s[i + 1] === '*') {
        while (s[i + 1] === '*') i++;
        const prev = out[out.length - 1];
        const afterSlash = prev === undefined || (prev.t === 'lit' && prev.c === '/');
        if (afterSlash && s[i + 1] === '/') {
          // `**/` is any number of directories, none included: `/**/x` matches `/x`
          out.push({ t: 'opt', skip: 2 }, { t: 'globstar' }, { t: 'lit', c: '/' });
          i++;
        } else if (afterSlash && i === s.length - 1 && out.length > 1) {
          // a final `/**` also covers the directory itself: `/etc/**` matches `/etc`, not `/etcd`
          out.pop();
          out.push({ t: 'opt', skip: 2 }, { t: 'lit', c: '/' }, { t: 'globstar' });
        } else out.push({ t: 'globstar' });
      } else out.push({ t: 'star' });
      continue;
    }
    if (c === '[') {
      const close = classEnd(s, i);
      if (close > 0) {
        let j = i + 1;
        let negated = false;
        if (s[j] === '!' || s[j] === '^') { negated = true; j++; }
        let set = '';
        const ranges: [string, string][] = [];
        for (; j < close; j++) {
          let a = s[j]!;
          if (a === '\\' && j + 1 < close) a = s[++j]!;
          if (s[j + 1] === '-' && j + 2 < close) { ranges.push([a, s[j + 2]!]); j += 2; } else set += a;
        }
        out.push({ t: 'class', negated, set, ranges });
        i = close;
        continue;
      }
    }
    out.push({ t: 'lit', c });
  }
  return out;
}

function classEnd(s: string, open: number): number {
  let j = open + 1;
  if (s[j] === '!' || s[j] === '^') j++;
  if (s[j] === ']') j++;
  for (; j < s.length; j++) {
    if (s[j] === '\\') { j++; continue; }
    if (s[j] === ']') return j;
  }
  return -1;
}

function classHas(t: Extract<GlobToken, { t: 'class' }>, c: string): boolean {
  const inSet = t.set.includes(c) || t.ranges.some(([a, b]) => c >= a && c <= b);
  return t.negated ? !inSet && c !== '/' : inSet && c !== '/';
}

/** Whether one token can stand for character `c` (a literal of the other side). */
function oneChar(t: GlobToken, c: string): boolean {
  if (t.t === 'lit') return t.c === c;
  if (t.t === 'any') return c !== '/';
  if (t.t === 'class') return classHas(t, c);
  return false;
}


/** Whether two single-character tokens (lit/any/class) can stand for one same character. */
function charsMeet(a: GlobToken, b: GlobToken): boolean {
  if (a.t === 'lit') return oneChar(b, a.c);
  if (b.t === 'lit') return oneChar(a, b.c);
  // any/class against any/class: some non-'/' character both take. A negated class takes almost
  // anything; two positive classes meet when they share a member. Approximated in the direction of
  // matching (fail closed) for exotic ranges.
  if (a.t === 'any' || b.t === 'any') return true;
  if (a.t === 'class' && b.t === 'class') {
    if (a.negated || b.negated) return true;
    for (const c of a.set) if (classHas(b, c)) return true;
    for (const [lo, hi] of a.ranges) {
      if (b.set.split('').some((c) => c >= lo && c <= hi)) return true;
      if (b.ranges.some(([blo, bhi]) => blo <= hi && lo <= bhi)) return true;
    }
    return false;
  }
  return true;
}

const isStar = (t: GlobToken | undefined) => t !== undefined && (t.t === 'star' || t.t === 'globstar');

/**
 * Whether some string matches both globs. Memoised over (i, j): O(|a|·|b|). A `*` cannot take a `/`,
 * a `**` can take anything; a `*` meeting a `**` consumes characters of neither crossing `/`.
 */
export function globsIntersect(a: string | GlobToken[], b: string | GlobToken[]): boolean {
  const A = typeof a === 'string' ? tokenizeGlob(a) : a;
  const B = typeof b === 'string' ? tokenizeGlob(b) : b;
  const memo = new Map<number, boolean>();
  const W = B.length + 1;
  const go = (i: number, j: number): boolean => {
    const key = i * W + j;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    memo.set(key, false);
    let r: boolean;
    const x = A[i];
    const y = B[j];
    if (x?.t === 'opt') r = go(i + 1 + x.skip, j) || go(i + 1, j);
    else if (y?.t === 'opt') r = go(i, j + 1 + y.skip) || go(i, j + 1);
    else if (x === undefined && y === undefined) r = true;
    else if (x === undefined) r = isStar(y) && go(i, j + 1);
    else if (y === undefined) r = isStar(x) && go(i + 1, j);
    else if (isStar(x) || isStar(y)) {
      // a star may take nothing, or one character the other side can give, staying where it is
      r = (isStar(x) && go(i + 1, j)) || (isStar(y) && go(i, j + 1));
      if (!r) {
        if (isStar(x) && isStar(y)) {
          // both stars: take one common character (not '/' unless both are **)
          r = go(i, j + 1) || go(i + 1, j);
        } else if (isStar(x)) {
          // x (star) takes y's character
          r = (x.t === 'globstar' || oneCharNotSlash(y)) && go(i, j + 1);
        } else {
          r = (y.t === 'globstar' || oneCharNotSlash(x)) && go(i + 1, j);
        }
      }
    } else r = charsMeet(x, y) && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

function oneCharNotSlash(t: GlobToken): boolean {
  return !(t.t === 'lit' && t.c === '/');
}

/** Whether the literal text matches the glob. */
export function globMatch(glob: string, text: string): boolean {
  return globsIntersect(tokenizeGlob(glob), [...text].map((c) => ({ t: 'lit' as const, c })));
}

/** Escapes glob characters so the text is a literal pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, '\\$&');
}

/** Whether a (shell word) pattern has unescaped glob characters. */
export function hasGlob(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') { i++; continue; }
    if (c === '*' || c === '?') return true;
    if (c === '[' && classEnd(pattern, i) > 0) return true;
  }
  return false;
}

/** A pattern standing for any path at all (an argument the gateway cannot know). */
export const ANY_PATH = '**';

/**
 * Normalises an absolute path pattern: `//` and `/./` collapse, `a/../` goes up (never above `/`),
 * a trailing `/` goes. A `..` after a glob component cannot be resolved without the file system:
 * the path becomes `**` (anything).
 */
export function normalisePathPattern(pattern: string): string {
  if (!pattern.startsWith('/')) throw new Error('normalisePathPattern wants an absolute path');
  const parts: string[] = [];
  for (const p of splitSlashes(pattern)) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      const up = parts.pop();
      if (up !== undefined && hasGlob(up)) return ANY_PATH;
      continue;
    }
    parts.push(p);
  }
  return '/' + parts.join('/');
}

/** Splits on `/` outside `[…]` classes (a class never holds `/` in a path glob, but be exact). */
function splitSlashes(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) { cur += c + s[++i]; continue; }
    if (c === '/') { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * Resolves a path pattern against a working directory. `cwd` null means unknown; `**` means it may
 * be anything (after a `cd` to an unknown place). With an unknown cwd a relative path stays relative
 * — `./build`, which no absolute rule path matches and `**\/build` does — when `unknownCwd` is
 * `relative` (command rules: `rm -r build` in an unknown directory is not a top-level directory);
 * a relative path that climbs with `..`, or any relative path when `unknownCwd` is `anywhere` (file
 * rules), may be anywhere: `/**\/rest`.
 */
export function resolvePathPattern(pattern: string, cwd: string | null, unknownCwd: 'anywhere' | 'relative'): string {
  if (pattern === ANY_PATH) return ANY_PATH;
  if (pattern.startsWith('/')) return normalisePathPattern(pattern);
  if (cwd !== null && cwd !== ANY_PATH && cwd.startsWith('/')) return normalisePathPattern(`${cwd}/${pattern}`);
  if (cwd === ANY_PATH) return anywhere(pattern);
  if (pattern.startsWith(ANY_PATH)) return pattern; // an unknown word with a known tail: anything
  const parts = splitSlashes(pattern).filter((p) => p !== '' && p !== '.');
  const climbs = parts.includes('..');
  if (unknownCwd === 'relative' && !climbs) return parts.length ? `./${parts.join('/')}` : '.';
  return anywhere(pattern);
}

function anywhere(rel: string): string {
  // the unknown directory may be `/`; what stays after `..` is still under some directory
  const parts = splitSlashes(rel).filter((p) => p !== '' && p !== '.' && p !== '..');
  return parts.length ? `/**/${parts.join('/')}` : ANY_PATH;
}

/**
 * A rule's path glob, normalised like the paths it is compared with: absolute globs are normalised,
 * a glob starting with `**` is kept, any other relative glob means "anywhere": `*.pem` → `**\/*.pem`.
 */
export function normaliseRuleGlob(glob: string): string {
  if (glob.startsWith('/')) return normalisePathPattern(glob);
  if (glob.startsWith('**')) return glob;
  return `**/${glob.replace(/^(\.\/)+/, '')}`;
}
