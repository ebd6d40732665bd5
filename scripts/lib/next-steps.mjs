// What to type next, printed once the stack is up. Every command is complete: copy, paste, run.
import { relative } from 'node:path';

const json = (field) => `node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).${field}'`;

export function nextSteps(cfg, { bold = (s) => s, dim = (s) => s, sshDemo = null } = {}) {
  const rel = relative(process.cwd(), cfg.home);
  const home = rel && !rel.startsWith('..') ? rel : cfg.home;
  const api = cfg.apiUrl;
  const cli = api === 'http://127.0.0.1:8080' ? 'pnpm portcullis' : `PORTCULLIS_API=${api} pnpm portcullis`;
  const conn = cfg.demo.connection;
  return [
    '',
    bold('Next steps'),
    '',
    bold(' 1. Be the demo agent') + dim(' — a workload identity: an IdP token, exchanged for a short-lived Portcullis token'),
    `    JWT=$(curl -s -u demo-agent:demo-agent-secret -d grant_type=client_credentials ${cfg.idpIssuer}/token | ${json('access_token')})`,
    `    TOKEN=$(curl -s ${api}/v1/auth/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\`,
    `      -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d subject_token=$JWT | ${json('access_token')})`,
    `    URI=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" ${api}/v1/connections/${conn}/credentials | ${json('uri')})`,
    '',
    bold(' 2. Connect through the gateway') + dim(' — the token is the password; the target\'s own password never leaves the gateway'),
    `    psql "$URI" -c 'SELECT name, email, phone, card_number, ssn FROM customers LIMIT 5'   ${dim('# masked')}`,
    `    psql "$URI" -c 'DROP TABLE customers'                                                ${dim('# blocked: no-destructive-ddl')}`,
    `    psql "$URI" -c 'DELETE FROM customers'                                               ${dim('# held: bulk-writes needs approval')}`,
    `    ${dim('As a person instead:')} ${cli} login ${dim('(carol / carol)')}, then ${cli} connect ${conn}`,
    '',
    bold(' 3. Approve the held DELETE as bob') + dim(' — in the web console, or in another terminal, while psql waits'),
    `    ${dim('Web console:')} ${api}/console   ${dim('# sign in as bob / bob: the inbox shows it within a second')}`,
    `    ${cli} login                         ${dim('# sign in as bob / bob in the browser')}`,
    `    ${cli} approvals list`,
    `    ${cli} approvals approve <id> --comment "one-off cleanup"`,
    '',
    bold(' 4. Export the audit trail') + dim(' — every session, decision and control-plane change, hash-chained'),
    `    curl -s -H "Authorization: Bearer $(cat ${home}/bootstrap-token)" '${api}/v1/audit/events?format=jsonl'`,
    `    ${cli} audit export --format ocsf     ${dim('# as alice or bob; --follow keeps pulling')}`,
    `    ${cli} sessions list, then ${cli} sessions verify <id>`,
    '',
    ...(sshDemo
      ? [
        bold(` 5. SSH through the gateway`) + dim(` — ${sshDemo.connection}: a private sshd (login ${sshDemo.user}) whose key only the gateway holds`),
        `    CRED=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" ${api}/v1/connections/${sshDemo.connection}/credentials | ${json('token')})`,
        `    ssh -p ${sshDemo.port} ${sshDemo.connection}@127.0.0.1      ${dim('# password: paste $CRED (echo $CRED)')}`,
        `    ${dim('Or with a certificate:')} ${cli} ssh ${sshDemo.connection} ${dim('(signs your key, writes known_hosts, runs ssh)')}`,
        '',
      ]
      : [dim(' 5. SSH demo: off here (no /usr/sbin/sshd; apt-get install -y openssh-server, then pnpm start again)'), '']),
    `${dim('Web console:')} ${api}/console   ${dim('API docs:')} ${api}/docs   ${dim('Dev IdP:')} ${cfg.idpIssuer} ${dim('(alice/alice admin, bob/bob approver, carol/carol engineer)')}`,
    `${dim('Secrets:')} ${home}/ ${dim('— Ctrl-C stops everything; the next `pnpm start` reuses them.')}`,
    '',
  ];
}
