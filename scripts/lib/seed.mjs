// Seeds the demo through the api's REST surface with the bootstrap token. Every step is idempotent:
// an existing object is left alone (409 / found by GET) or updated in place (PUT / PATCH), so a second
// `pnpm start` converges on the same state.
import { ApiError } from './http.mjs';

export const DEMO_GROUPS = [
  { name: 'admins', description: 'Portcullis administrators', roles: ['admin'], idpGroups: ['admins'] },
  { name: 'approvers', description: 'Decide held commands and read audit', roles: ['approver', 'auditor'], idpGroups: ['approvers'] },
  { name: 'engineers', description: 'Connect to targets', roles: ['user'], idpGroups: ['engineers'] },
  { name: 'auditors', description: 'Read sessions and export audit', roles: ['auditor'], idpGroups: ['auditors'] },
];

export const DEMO_USERS = [
  { subject: 'alice', displayName: 'Alice Admin', email: 'alice@example.test', group: 'admins' },
  { subject: 'bob', displayName: 'Bob Approver', email: 'bob@example.test', group: 'approvers' },
  { subject: 'carol', displayName: 'Carol Engineer', email: 'carol@example.test', group: 'engineers' },
];

/** Block devices, as command guardrails name them (`/dev/sda`, `/dev/nvme0n1p1`, `/dev/mapper/vg-root`, …). */
const DISKS = ['/dev/sd*', '/dev/nvme*', '/dev/vd*', '/dev/xvd*', '/dev/hd*', '/dev/mmcblk*', '/dev/dm-*', '/dev/mapper/**', '/dev/disk/**'];

/** The policy of CONTRACT.md: guardrails, masking and approval rules. */
export function demoPolicy(name = 'default') {
  return {
    name,
    guardrails: [
      {
        name: 'no-destructive-ddl', action: 'block',
        reason: 'Schema, role, ownership, extension and server changes go through migrations, not ad-hoc sessions.',
        match: {
          statements: [
            'DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE', 'REASSIGN OWNED', 'SECURITY LABEL',
            // code and connections that run as the server: extensions, languages, foreign servers, event triggers
            'CREATE EXTENSION', 'CREATE LANGUAGE', 'LOAD', 'CREATE FOREIGN DATA WRAPPER', 'CREATE SERVER', 'CREATE USER MAPPING',
            'IMPORT FOREIGN SCHEMA', 'CREATE SUBSCRIPTION', 'CREATE PUBLICATION', 'CREATE EVENT TRIGGER', 'CREATE ACCESS METHOD',
            'CREATE DATABASE', 'CREATE TABLESPACE',
            // locks that stall other sessions' writes or reads (pg_dump's ACCESS SHARE stays allowed)
            'LOCK TABLE IN SHARE MODE', 'LOCK TABLE IN SHARE ROW EXCLUSIVE MODE', 'LOCK TABLE IN EXCLUSIVE MODE', 'LOCK TABLE IN ACCESS EXCLUSIVE MODE',
          ],
        },
      },
      {
        name: 'no-session-killing', action: 'block',
        reason: 'Terminating other backends is not allowed through the gateway.',
        match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] },
      },
      { name: 'no-copy-program', action: 'block', reason: 'COPY ... PROGRAM runs commands on the database host.', match: { copy: 'program' } },
      {
        name: 'bulk-writes', action: 'require_approval',
        reason: 'DELETE or UPDATE without a WHERE clause needs a second pair of eyes.',
        match: { statements: ['DELETE', 'UPDATE'], unbounded: true },
      },
      // Approval by consequence: each write is run in a savepoint and counted; over 10 rows it is rolled
      // back and held, the approver shown the count and a masked sample (however its WHERE is dressed up)
      {
        name: 'big-writes', action: 'require_approval',
        match: { statements: ['DELETE', 'UPDATE', 'MERGE', 'INSERT'], rowsAffectedOver: 10 },
        sampleRows: 5,
        tolerance: '10%',
      },
      // Shell commands (SSH exec and shell lines, kubectl exec), decided from a real parse of the line:
      // wrappers (sudo, env, xargs, bash -c, find -exec, …) are unwrapped, quoting and paths normalised.
      {
        name: 'no-recursive-delete-of-root', action: 'block',
        reason: 'Recursive deletes of / or a top-level directory are not allowed through the gateway.',
        match: { commands: ['rm'], args: ['-r', '-R', '--recursive'], paths: ['/', '/*'] },
      },
      {
        name: 'no-find-delete-of-root', action: 'block',
        reason: 'find -delete on / or a top-level directory is not allowed through the gateway.',
        match: { commands: ['find'], args: ['-delete'], paths: ['/', '/*'] },
      },
      { name: 'no-mkfs', action: 'block', reason: 'Formatting file systems is not allowed through the gateway.', match: { commands: ['mkfs*', 'mke2fs', 'mkswap', 'wipefs'] } },
      { name: 'no-raw-disk-writes', action: 'block', reason: 'Writing to block devices is not allowed through the gateway.', match: { commands: ['dd'], args: DISKS.map((d) => `of=${d}`) } },
      { name: 'no-redirects-to-disks', action: 'block', reason: 'Writing to block devices is not allowed through the gateway.', match: { redirects: DISKS } },
      {
        name: 'no-copies-to-disks', action: 'block', reason: 'Writing to block devices is not allowed through the gateway.',
        match: { commands: ['cp', 'mv', 'tee', 'install', 'shred', 'pv'], paths: DISKS },
      },
      { name: 'no-power-off', action: 'block', reason: 'Shutting hosts down goes through change management.', match: { commands: ['shutdown', 'reboot', 'halt', 'poweroff', 'telinit'] } },
      { name: 'no-systemctl-power-off', action: 'block', reason: 'Shutting hosts down goes through change management.', match: { commands: ['systemctl'], args: ['poweroff', 'reboot', 'halt', 'kexec'] } },
      { name: 'no-fork-bombs', action: 'block', reason: 'A function that calls itself (a fork bomb) is not allowed.', match: { recursiveFunction: true } },
      {
        name: 'no-download-to-shell', action: 'block', reason: 'Piping a download into a shell or interpreter is not allowed.',
        match: { commands: ['sh', 'bash', 'dash', 'zsh', 'ksh', 'fish', 'python*', 'perl', 'ruby', 'node', 'php'], pipedFrom: ['curl', 'wget'] },
      },
      {
        name: 'no-recursive-chmod-of-root', action: 'block', reason: 'Recursive permission changes of / or a top-level directory are not allowed.',
        match: { commands: ['chmod', 'chown', 'chgrp'], args: ['-R', '--recursive'], paths: ['/', '/*'] },
      },
      { name: 'system-config-writes', action: 'require_approval', reason: 'Writes to /etc and /boot need a second pair of eyes.', match: { redirects: ['/etc/**', '/boot/**'] } },
      { name: 'tee-into-system-config', action: 'require_approval', reason: 'Writes to /etc and /boot need a second pair of eyes.', match: { commands: ['tee'], paths: ['/etc/**', '/boot/**'] } },
      { name: 'privilege-escalation', action: 'require_approval', reason: 'sudo and su need a second pair of eyes.', match: { commands: ['sudo', 'su', 'doas', 'pkexec', 'runuser'] } },
      // SFTP and SCP file operations, by normalised path
      {
        name: 'no-system-config-uploads', action: 'block', reason: 'Files under /etc and /boot are changed by configuration management, not by hand.',
        match: { files: { operations: ['write', 'remove', 'rename', 'mkdir', 'setstat', 'symlink'], paths: ['/etc/**', '/boot/**'] } },
      },
      { name: 'no-key-downloads', action: 'block', reason: 'Private keys stay on the host.', match: { files: { operations: ['read'], paths: ['**/*.pem', '**/*.key', '**/id_rsa', '**/id_ecdsa', '**/id_ed25519'] } } },
    ],
    dynamicSql: 'block',
    // shell commands that cannot be analysed (eval of built text, a command name from a variable, source)
    dynamicCommand: 'block',
    // an interactive line the gateway could not reconstruct from the keystrokes (history, tab completion)
    interactive: { unreliableLine: 'require_approval' },
    masking: [
      // Columns known to hold secrets get column rules: a detector only sees values that still look
      // like what it knows (translate(card_number, '0123456789', 'abcdefghij') does not).
      { name: 'emails', columns: ['email'], strategy: 'partial' },
      { name: 'ssns', columns: ['ssn'], strategy: 'partial' },
      { name: 'cards', columns: ['card_number'], strategy: 'partial' },
      { name: 'phones', columns: ['phone'], strategy: 'partial' },
      // The net for free text (notes): the demo's never-issued 9xx SSNs are caught by their "SSN" label.
      { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT'], strategy: 'redact' },
    ],
    approval: { approvers: ['approvers'], timeoutSeconds: 300 },
    // what each statement returned, as the client got it (after masking), kept in the session record
    recording: { results: { rows: 20, bytes: 64 * 1024 } },
  };
}

function isStatus(err, ...statuses) {
  return err instanceof ApiError && statuses.includes(err.status);
}

/** POST, treating 409 (already there) as success. Returns 'created' | 'exists'. */
async function createOnce(api, path, body) {
  try {
    await api.post(path, body);
    return 'created';
  } catch (err) {
    if (isStatus(err, 409)) return 'exists';
    throw err;
  }
}

async function getOrNull(api, path) {
  try {
    return await api.get(path);
  } catch (err) {
    if (isStatus(err, 404)) return null;
    throw err;
  }
}

/** Stable JSON for comparing documents regardless of key order. */
function stable(v) {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * @param {ReturnType<import('./http.mjs').apiClient>} api  bootstrap-token client
 * @param {{pool: string, poolPublicKey: string, idpIssuer: string, connection: string, policy?: string,
 *   target: {host: string, port: number, database: string, username: string, password: string}}} demo
 * @param {(line: string) => void} log
 */
export async function seedDemo(api, demo, log = () => undefined) {
  const policyName = demo.policy ?? 'default';

  for (const g of DEMO_GROUPS) {
    const r = await createOnce(api, '/v1/groups', g);
    log(`group ${g.name}: ${r}`);
  }

  for (const u of DEMO_USERS) {
    const r = await createOnce(api, '/v1/identities', { kind: 'person', subject: u.subject, displayName: u.displayName, email: u.email });
    log(`identity ${u.subject}: ${r}`);
  }
  for (const g of DEMO_GROUPS) {
    const members = DEMO_USERS.filter((u) => u.group === g.name).map((u) => u.subject);
    if (members.length === 0) continue;
    await api.put(`/v1/groups/${encodeURIComponent(g.name)}/members`, { members });
  }

  await api.put(`/v1/gateway-pools/${encodeURIComponent(demo.pool)}`, { publicKey: demo.poolPublicKey });
  log(`pool ${demo.pool}: public key registered`);

  const document = demoPolicy(policyName);
  const existing = await getOrNull(api, `/v1/policies/${encodeURIComponent(policyName)}`);
  if (!existing) {
    const r = await createOnce(api, '/v1/policies', document);
    log(`policy ${policyName}: ${r}`);
  } else if (stable(existing.document ?? existing) !== stable(document)) {
    // Leave an admin's edits alone: only fill in a policy that is missing. Say so.
    log(`policy ${policyName}: exists (version ${existing.version ?? '?'}), left as it is`);
  } else {
    log(`policy ${policyName}: up to date`);
  }

  const connection = {
    name: demo.connection,
    kind: 'postgres',
    pool: demo.pool,
    host: demo.target.host,
    port: demo.target.port,
    database: demo.target.database,
    username: demo.target.username,
    password: demo.target.password,
    tls: 'disable',
    allowedGroups: ['engineers', 'admins'],
    policy: policyName,
    recording: 'required',
  };
  const r = await createOnce(api, '/v1/connections', connection);
  if (r === 'exists') {
    // The stored password may be stale (a new .portcullis/): write the current one; secrets are write-only.
    const { name: _name, kind: _kind, ...patch } = connection;
    await api.patch(`/v1/connections/${encodeURIComponent(demo.connection)}`, patch);
    log(`connection ${demo.connection}: updated`);
  } else {
    log(`connection ${demo.connection}: created`);
  }

  const trust = {
    name: 'demo-agent',
    issuer: demo.idpIssuer,
    audience: 'portcullis',
    subjectPattern: 'demo-agent',
    identity: 'agent:demo',
    groups: ['engineers'],
  };
  const current = await getOrNull(api, `/v1/trust-policies/${encodeURIComponent(trust.name)}`);
  if (current && current.issuer !== trust.issuer) {
    // The dev IdP moved (another DEV_IDP_PORT): trust policies have no PATCH, so replace it.
    await api.del(`/v1/trust-policies/${encodeURIComponent(trust.name)}`);
  }
  const t = current && current.issuer === trust.issuer ? 'exists' : await createOnce(api, '/v1/trust-policies', trust);
  log(`trust policy ${trust.name}: ${t}`);
}

/**
 * The SSH demo connection (`demo-ssh`) to the private sshd of `pnpm start`: its host key pinned, the
 * login key as the write-only secret. Created, or updated in place (the sshd port changes every start).
 * @param {{pool: string, connection?: string, policy?: string, target: {host: string, port: number, user: string, hostPublicKey: string, privateKey: string}}} demo
 */
export async function seedSshDemo(api, demo, log = () => undefined) {
  const name = demo.connection ?? 'demo-ssh';
  const target = {
    host: demo.target.host,
    port: demo.target.port,
    username: demo.target.user,
    secret: { privateKey: demo.target.privateKey },
    hostKeys: [demo.target.hostPublicKey],
  };
  const r = await createOnce(api, '/v1/connections', {
    name, type: 'ssh', pool: demo.pool, ...target, allowedGroups: ['engineers', 'admins'], policy: demo.policy ?? 'default', recording: 'required',
  });
  if (r === 'exists') {
    await api.patch(`/v1/connections/${encodeURIComponent(name)}`, target);
    log(`connection ${name}: updated`);
  } else {
    log(`connection ${name}: created`);
  }
  return name;
}
