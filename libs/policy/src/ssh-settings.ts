import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

/**
 * The policy's `ssh` settings: which environment variables a client may set on the target
 * (`ssh -o SendEnv`/`SetEnv`) and which destinations port forwarding may reach (`ssh -L`/`-W`:
 * direct-tcpip, opened by the target; `ssh -R`: tcpip-forward, a listener on the target). What the
 * settings do not name is refused: forwarding reaches past the target, and a variable can change
 * what a decided command runs.
 */

/** Variables sshd passes by default (its stock `AcceptEnv`): the allow list when a policy names none. */
export const DEFAULT_SSH_ENV = ['LANG', 'LC_*', 'LANGUAGE', 'TZ'] as const;

/**
 * Variables that change what a decided command runs (a loader preload, a file a shell sources first,
 * the program search path, code a prompt runs, an interpreter's startup code or module path). A glob
 * never matches them: a policy allows one only by naming it exactly.
 */
const DANGEROUS_ENV = [
  /^LD_/, /^DYLD_/, /^BASH_ENV$/, /^ENV$/, /^BASH_FUNC_/, /^SHELLOPTS$/, /^BASHOPTS$/, /^PS[0-4]$/, /^PROMPT_COMMAND$/, /^IFS$/,
  /^PATH$/, /^CDPATH$/, /^HOME$/, /^SHELL$/, /^USER$/, /^LOGNAME$/, /^MAIL$/, /^GCONV_PATH$/, /^HOSTALIASES$/, /^LOCPATH$/, /^MALLOC_/,
  /^NLSPATH$/, /^RES_OPTIONS$/, /^TMPDIR$/, /^ZDOTDIR$/, /^INPUTRC$/, /^HISTFILE$/, /^EDITOR$/, /^VISUAL$/, /^PAGER$/, /^LESS/, /^GIT_/,
  /^SSH_/, /^SUDO_/, /^PYTHON/, /^PERL/, /^RUBY/, /^NODE_/, /^JAVA_TOOL_OPTIONS$/, /^_JAVA_OPTIONS$/, /^JDK_JAVA_OPTIONS$/, /^CLASSPATH$/,
  /^LUA_/, /^TCL/, /^PHPRC$/, /^KRB5/, /^OPENSSL_/, /^SSL_CERT_/, /^TERMINFO/, /^XDG_/,
];

/** A variable name the target's shell would take (anything else is refused before a policy is asked). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** The longest value passed (a locale or terminal name is short; a large value is a payload). */
export const MAX_SSH_ENV_VALUE = 4096;
/** The most variables one channel may set. */
export const MAX_SSH_ENV_VARS = 64;

const envPattern = z.string().regex(/^[A-Za-z_*][A-Za-z0-9_*]{0,127}$/, 'a variable name or a glob of one (letters, digits, _ and *)');

/** host:port destinations; see parseDestinationPattern. */
const destinationPattern = z.string().min(1).max(300).superRefine((s, ctx) => {
  const r = parseDestinationPattern(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

export const sshSettingsSchema = z.strictObject({
  /** `allow`: names and globs (`LC_*`) of the variables a client may set (default: LANG, LC_*, LANGUAGE, TZ) */
  env: z.strictObject({ allow: z.array(envPattern).max(200) }).optional(),
  forwarding: z
    .strictObject({
      /** `ssh -L` / `-W` destinations the target may connect to: `host:port` patterns */
      local: z.array(destinationPattern).max(500).default([]),
      /** `ssh -R` listeners the target may open: `address:port` patterns (the address the client asks to bind) */
      remote: z.array(destinationPattern).max(500).default([]),
    })
    .optional(),
});
export type SshSettings = z.infer<typeof sshSettingsSchema>;

/** A parsed `host:port` pattern. */
interface DestinationPattern {
  text: string;
  /** an address block (IP literal or CIDR): matches IP-literal destinations only */
  block: BlockList | null;
  /** a host name glob, lower case: matches host name destinations only */
  host: RegExp | null;
  ports: [number, number];
}

const HOST_GLOB = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$|^\*$/;

/**
 * `host:port`: host is an IP address (`10.0.4.21`, `[fd00::5]`), a CIDR block (`10.0.0.0/8`,
 * `[fd00::/64]`), a host name (`db.internal`) or a name glob whose `*` is a leading label
 * (`*.svc.cluster.local`, any depth) or `*` alone (any name, never an address); port is a number, a
 * range `8000-8999` or `*`. Returns the reason when the pattern is not one.
 */
export function parseDestinationPattern(text: string): DestinationPattern | string {
  const m = /^(\[[^\]]+\]|[^:]+):(\*|\d{1,5}(?:-\d{1,5})?)$/.exec(text.trim());
  if (!m) return `"${text}" is not host:port (IPv6 in brackets: [fd00::5]:22)`;
  const [, rawHost, rawPort] = m;
  let ports: [number, number];
  if (rawPort === '*') ports = [1, 65535];
  else {
    const [a, b = a] = rawPort!.split('-').map(Number) as [number, number?];
    if (!(a! >= 1 && b! <= 65535 && a! <= b!)) return `"${text}": ports are 1–65535, a range low-high, or *`;
    ports = [a!, b!];
  }
  const host = rawHost!.startsWith('[') ? rawHost!.slice(1, -1) : rawHost!;
  const [addr, prefix, extra] = host.split('/');
  const family = isIP(addr!);
  if (family) {
    if (extra !== undefined) return `"${text}": a CIDR block is address/prefix`;
    const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return `"${text}": prefix out of range`;
    const block = new BlockList();
    block.addSubnet(addr!, bits, family === 4 ? 'ipv4' : 'ipv6');
    return { text, block, host: null, ports };
  }
  const name = host.toLowerCase();
  if (prefix !== undefined || !HOST_GLOB.test(name) || looksNumeric(name)) return `"${text}": the host is an IP address, a CIDR block, a host name, *.name or *`;
  const re = name === '*' ? /^.+$/ : new RegExp(`^${name.startsWith('*.') ? '(?:[a-z0-9-]+\\.)+' + escape(name.slice(2)) : escape(name)}$`);
  return { text, block: null, host: re, ports };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A name whose resolver reading is an address (`127.1`, `0x7f.0.0.1`, `2130706433`, `017700000001`):
 * inet_aton takes these, so they are refused as names — an address is only ever matched as one.
 */
function looksNumeric(name: string): boolean {
  const last = name.split('.').pop() ?? '';
  return /^(0x[0-9a-f]*|[0-9]+)$/.test(last);
}

export interface SshSettingDecision {
  allowed: boolean;
  /** the setting that decided, for the record (`ssh.forwarding.local[2]`, `ssh.env.allow`) */
  rule: string | null;
  /** what the client is told when refused */
  reason: string | null;
}

/** A destination as a client names it: a canonical IP literal, or a host name (lower case), or null when neither. */
export function destinationOf(host: string): { ip: string; family: 'ipv4' | 'ipv6' } | { name: string } | null {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(h);
  if (family) return { ip: h, family: family === 4 ? 'ipv4' : 'ipv6' };
  const name = h.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253 || looksNumeric(name)) return null;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name)) return null;
  return { name };
}

/** The compiled `ssh` settings of a policy (or the defaults of a connection with none). */
export class SshSettingsEvaluator {
  private readonly envExact: Set<string>;
  private readonly envGlobs: RegExp[];
  private readonly local: DestinationPattern[];
  private readonly remote: DestinationPattern[];

  constructor(settings: SshSettings | undefined) {
    const allow = settings?.env?.allow ?? [...DEFAULT_SSH_ENV];
    this.envExact = new Set(allow.filter((p) => !p.includes('*')));
    this.envGlobs = allow.filter((p) => p.includes('*')).map((p) => new RegExp(`^${p.split('*').map(escape).join('[A-Za-z0-9_]*')}$`));
    const compile = (list: string[] | undefined): DestinationPattern[] => (list ?? []).map((p) => parseDestinationPattern(p)).filter((p): p is DestinationPattern => typeof p !== 'string');
    this.local = compile(settings?.forwarding?.local);
    this.remote = compile(settings?.forwarding?.remote);
  }

  /** An environment variable the client asks to set on the target. */
  env(name: string, value: string): SshSettingDecision {
    if (!ENV_NAME.test(name)) return { allowed: false, rule: null, reason: `environment variable name ${JSON.stringify(name.slice(0, 64))} is not a shell variable name` };
    if (value.length > MAX_SSH_ENV_VALUE || value.includes('\0')) return { allowed: false, rule: null, reason: `environment variable ${name}: value longer than ${MAX_SSH_ENV_VALUE} bytes or with a NUL byte` };
    if (this.envExact.has(name)) return { allowed: true, rule: 'ssh.env.allow', reason: null };
    if (!DANGEROUS_ENV.some((d) => d.test(name)) && this.envGlobs.some((g) => g.test(name))) return { allowed: true, rule: 'ssh.env.allow', reason: null };
    return { allowed: false, rule: 'ssh.env.allow', reason: `environment variable ${name} is not allowed by the policy (ssh.env.allow)` };
  }

  /** A direct-tcpip destination (`ssh -L`, `-W`): the target opens it. */
  forward(host: string, port: number): SshSettingDecision {
    return this.match(this.local, 'local', host, port, 'port forwarding to');
  }

  /** A tcpip-forward request (`ssh -R`): a listener the target would open. */
  remoteForward(address: string, port: number): SshSettingDecision {
    return this.match(this.remote, 'remote', address, port, 'remote forwarding on');
  }

  private match(list: DestinationPattern[], which: 'local' | 'remote', host: string, port: number, what: string): SshSettingDecision {
    const shown = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const refused = (why: string): SshSettingDecision => ({ allowed: false, rule: null, reason: `${what} ${shown} ${why}` });
    if (!list.length) return refused(`is refused: the policy allows no destination (ssh.forwarding.${which})`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) return refused('is refused: not a port');
    const dest = destinationOf(host);
    if (!dest) return refused('is refused: the host is neither an IP address nor a host name');
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (port < p.ports[0] || port > p.ports[1]) continue;
      const hit = 'ip' in dest ? p.block?.check(dest.ip, dest.family) : p.host?.test(dest.name);
      if (hit) return { allowed: true, rule: `ssh.forwarding.${which}[${i}]`, reason: null };
    }
    return refused(`is not allowed by the policy (ssh.forwarding.${which})`);
  }
}
