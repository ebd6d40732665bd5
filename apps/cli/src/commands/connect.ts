import { spawn } from 'node:child_process';
import { formatIssues, gatewayCredentialSchema } from '@portcullis/protocol';
import { ApiRequestError } from '../api-client.js';
import { allowOnly, boolFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';

/** Gets a short-lived gateway credential for a connection and runs psql with it (or prints the URI). */
export async function connect(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['print', 'json', 'fail-fast']);
  const name = args.positionals[0];
  if (!name || args.positionals.length > 1) throw new UsageError('usage: portcullis connect <connection> [--print | --json] [--fail-fast] [-- psql args…]');
  const api = authedClient(ctx);
  // --fail-fast: statements that need approval fail at once instead of waiting (scripts, agents).
  const body = boolFlag(args, 'fail-fast') ? { mode: 'fail-fast' } : {};
  const path = `/v1/connections/${encodeURIComponent(name)}/credentials`;
  const sent = await api.json<unknown>('POST', path, body);
  const parsed = gatewayCredentialSchema.safeParse(sent);
  if (!parsed.success) {
    throw new ApiRequestError(`the api sent an unexpected credential for POST ${path}: ${formatIssues(parsed.error).join('; ')}`, undefined, 'bad_response');
  }
  const cred = parsed.data;
  if (boolFlag(args, 'json')) {
    println(ctx.stdout, JSON.stringify(sent, null, 2));
    return EXIT.ok;
  }
  if (boolFlag(args, 'print')) {
    println(ctx.stdout, cred.uri);
    println(ctx.stderr, `valid until ${cred.expiresAt}: psql "${cred.uri}"`);
    return EXIT.ok;
  }
  const psql = ctx.env.PORTCULLIS_PSQL?.trim() || 'psql';
  println(ctx.stderr, `Connecting to ${name} through the gateway at ${cred.host}:${cred.port} (credential valid until ${cred.expiresAt})`);
  return await new Promise<number>((resolve) => {
    const child = spawn(psql, [cred.uri, ...args.rest], { stdio: 'inherit', env: ctx.env });
    // psql handles Ctrl-C itself (cancels the query); keep the CLI alive until psql exits.
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.off('SIGINT', ignore);
      if (err.code === 'ENOENT') {
        println(ctx.stderr, `portcullis: ${psql} not found; connect with any Postgres client using:`);
        println(ctx.stdout, cred.uri);
      } else {
        println(ctx.stderr, `portcullis: could not run ${psql}: ${err.message}`);
      }
      resolve(EXIT.failed);
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? EXIT.failed : EXIT.ok));
    });
  });
}
