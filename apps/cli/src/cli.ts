import { ApiRequestError } from './api-client.js';
import { parseArgs, UsageError } from './args.js';
import { ConfigFileError } from './config.js';
import { EXIT, NotLoggedInError, println, type CliContext } from './context.js';

export const HELP = `portcullis — the Portcullis command line

Usage: portcullis <command> [options]

  login                         log in through the browser (OIDC via the api; prints the URL)
  login --token <token>         keep a token you already have (e.g. .portcullis/bootstrap-token)
  login --client-credentials --issuer <url> --client-id <id> --client-secret <secret> [--audience <aud>]
                                log in as a workload: client_credentials at the IdP, then token exchange
  logout | whoami [--json]
  connect <connection> [--print | --json] [--fail-fast] [-- <psql args>]
                                get a short-lived credential and run psql with it (--print: just the URI;
                                --fail-fast: statements needing approval fail at once instead of waiting)
  ssh <connection> [--key <private key>] [--print] [--fail-fast] [ssh args…]
                                get a short-lived OpenSSH certificate for your key (made in ~/.portcullis/ssh
                                if you have none) and run ssh through the gateway with it
  kubeconfig <connection> [--static] [--namespace <ns>] [--output <file>]
                                a kubeconfig for the gateway (exec plugin below; --static: a token inside)
  kube-credential <connection>  kubectl's exec credential plugin (ExecCredential JSON, cached until near expiry)
  access-requests list [--status pending|approved|denied|expired|revoked|all] [--connection <name>] [--json]
  access-requests show <id> | request <connection> --duration <seconds> --reason <text>
  access-requests approve <id> [--comment <text>] | deny <id> [--comment <text>] | revoke <id> [--reason <text>]
                                time-boxed access to a connection; revoke ends a grant now (its sessions too)
  approvals list [--status pending|approved|denied|expired|all] [--json]
  approvals show <id> | approve <id> [--comment <text>] | deny <id> [--comment <text>]
  sessions list | show <id> | verify <id>   [--json]
  audit export [--format jsonl|ocsf|cef] [--cursor <c> | --cursor-file <path>] [--limit <n>] [--follow [--interval <s>]]

Options for every command: --help
Environment: PORTCULLIS_API (default http://127.0.0.1:8080), PORTCULLIS_TOKEN (overrides the saved login),
  PORTCULLIS_CLI_CONFIG (default ~/.portcullis/cli.json), PORTCULLIS_PSQL (default psql), PORTCULLIS_SSH (default ssh).
Exit codes: 0 ok, 1 failed, 2 usage, 3 not logged in / not allowed, 4 broken hash chain (sessions verify).
`;

const BOOLEANS = new Set(['help', 'print', 'json', 'follow', 'client-credentials', 'no-browser', 'fail-fast', 'static']);

type Command = (ctx: CliContext, args: ReturnType<typeof parseArgs>) => Promise<number>;

/**
 * Each command's module is loaded only when it runs: some bring heavy libraries (X.509 and SSH
 * certificates), and `kube-credential` runs on every kubectl invocation.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  login: async () => (await import('./commands/login.js')).login,
  logout: async () => (await import('./commands/login.js')).logout,
  whoami: async () => (await import('./commands/login.js')).whoami,
  connect: async () => (await import('./commands/connect.js')).connect,
  ssh: async () => (await import('./commands/ssh.js')).ssh,
  kubeconfig: async () => (await import('./commands/kube.js')).kubeconfig,
  'kube-credential': async () => (await import('./commands/kube.js')).kubeCredential,
  'access-requests': async () => (await import('./commands/access-requests.js')).accessRequests,
  approvals: async () => (await import('./commands/approvals.js')).approvals,
  sessions: async () => (await import('./commands/sessions.js')).sessions,
  audit: async () => (await import('./commands/audit.js')).audit,
};

/** Runs one CLI invocation; returns the exit code. Never throws. */
export async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    ctx.stdout.write(HELP);
    return command ? EXIT.ok : EXIT.usage;
  }
  const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!handler) {
    println(ctx.stderr, `portcullis: unknown command "${command}" (try \`portcullis help\`)`);
    return EXIT.usage;
  }
  try {
    const args = parseArgs(rest, BOOLEANS);
    if (args.flags.has('help')) {
      ctx.stdout.write(HELP);
      return EXIT.ok;
    }
    const commandFn = await handler();
    return await commandFn(ctx, args);
  } catch (err) {
    if (err instanceof UsageError) {
      println(ctx.stderr, `portcullis ${command}: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof NotLoggedInError) {
      println(ctx.stderr, `portcullis: ${err.message}`);
      return EXIT.auth;
    }
    if (err instanceof ApiRequestError) {
      const hint = err.status === 401 ? ' — run `portcullis login`' : '';
      println(ctx.stderr, `portcullis: ${err.message}${hint}`);
      return err.status === 401 || err.status === 403 ? EXIT.auth : EXIT.failed;
    }
    if (err instanceof ConfigFileError) {
      println(ctx.stderr, `portcullis: ${err.message}`);
      return EXIT.failed;
    }
    println(ctx.stderr, `portcullis: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.failed;
  }
}
