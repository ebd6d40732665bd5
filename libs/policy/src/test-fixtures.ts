import { parsePolicyDocument, type PolicyDocument } from './policy-document.js';

/** The CONTRACT.md example policy plus the extras the tests exercise. Not exported from index.ts. */
export function contractPolicy(extra: Partial<Record<string, unknown>> = {}): PolicyDocument {
  return parsePolicyDocument({
    name: 'default',
    guardrails: [
      { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
      { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
      { name: 'no-copy-program', action: 'block', match: { copy: 'program' } },
      { name: 'no-server-files', action: 'block', match: { copy: 'file' }, reason: 'server-side files are off limits' },
      { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
      { name: 'secrets-need-approval', action: 'require_approval', match: { tables: ['vault.secrets'] } },
      { name: 'payroll-is-read-only', action: 'block', match: { statements: ['INSERT', 'UPDATE', 'DELETE', 'MERGE'], tables: ['"HR"."Payroll"'] } },
    ],
    dynamicSql: 'block',
    masking: [
      { name: 'emails', columns: ['email'], strategy: 'partial' },
      { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT'], strategy: 'redact' },
    ],
    approval: { approvers: ['approvers'], timeoutSeconds: 300 },
    ...extra,
  });
}

const DISKS = ['/dev/sd*', '/dev/nvme*', '/dev/vd*', '/dev/xvd*', '/dev/hd*', '/dev/mmcblk*', '/dev/dm-*', '/dev/mapper/**', '/dev/disk/**'];

/** Command guardrails as the demo policy has them (scripts/lib/seed.mjs), plus file rules. */
export const SHELL_GUARDRAILS = [
  { name: 'no-recursive-delete-of-root', action: 'block', match: { commands: ['rm'], args: ['-r', '-R', '--recursive'], paths: ['/', '/*'] } },
  { name: 'no-find-delete-of-root', action: 'block', match: { commands: ['find'], args: ['-delete'], paths: ['/', '/*'] } },
  { name: 'no-mkfs', action: 'block', match: { commands: ['mkfs*', 'mke2fs', 'mkswap', 'wipefs'] } },
  { name: 'no-raw-disk-writes', action: 'block', match: { commands: ['dd'], args: DISKS.map((d) => `of=${d}`) } },
  { name: 'no-redirects-to-disks', action: 'block', match: { redirects: DISKS } },
  { name: 'no-copies-to-disks', action: 'block', match: { commands: ['cp', 'mv', 'tee', 'install', 'shred', 'pv'], paths: DISKS } },
  { name: 'no-power-off', action: 'block', match: { commands: ['shutdown', 'reboot', 'halt', 'poweroff', 'telinit'] } },
  { name: 'no-systemctl-power-off', action: 'block', match: { commands: ['systemctl'], args: ['poweroff', 'reboot', 'halt', 'kexec'] } },
  { name: 'no-fork-bombs', action: 'block', match: { recursiveFunction: true } },
  { name: 'no-download-to-shell', action: 'block', match: { commands: ['sh', 'bash', 'dash', 'zsh', 'ksh', 'fish', 'python*', 'perl', 'ruby', 'node', 'php'], pipedFrom: ['curl', 'wget'] } },
  { name: 'no-recursive-chmod-of-root', action: 'block', match: { commands: ['chmod', 'chown', 'chgrp'], args: ['-R', '--recursive'], paths: ['/', '/*'] } },
  { name: 'system-config-writes', action: 'require_approval', match: { redirects: ['/etc/**', '/boot/**'] } },
  { name: 'tee-into-system-config', action: 'require_approval', match: { commands: ['tee'], paths: ['/etc/**', '/boot/**'] } },
  { name: 'privilege-escalation', action: 'require_approval', match: { commands: ['sudo', 'su', 'doas', 'pkexec', 'runuser'] } },
  { name: 'no-etc-uploads', action: 'block', match: { files: { operations: ['write', 'remove', 'rename', 'mkdir', 'setstat', 'symlink'], paths: ['/etc/**'] } } },
  { name: 'no-key-downloads', action: 'block', match: { files: { operations: ['read'], paths: ['**/*.pem', '**/id_rsa', '**/id_ed25519'] } } },
] as const;

export function shellPolicy(extra: Partial<Record<string, unknown>> = {}): PolicyDocument {
  return contractPolicy({ guardrails: [...SHELL_GUARDRAILS], ...extra });
}
