import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real kubectl / kube-apiserver shipped xz-compressed in shared/tools/kubernetes (beside the
 * repository in CI and on developer machines; KUBE_TOOLS_DIR overrides). Unpacked once per process
 * into a temp dir. null when absent (a user's machine): the test then skips, saying why.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const candidates = [process.env.KUBE_TOOLS_DIR, join(repoRoot, '..', 'shared', 'tools', 'kubernetes'), '/work/shared/tools/kubernetes'].filter(Boolean) as string[];
const unpacked = new Map<string, string>();

export function kubeToolsDir(): string | null {
  return candidates.find((d) => existsSync(join(d, 'kubectl.xz'))) ?? null;
}

export function kubeTool(name: 'kubectl' | 'kube-apiserver'): string | null {
  const hit = unpacked.get(name);
  if (hit) return hit;
  const dir = kubeToolsDir();
  if (!dir || !existsSync(join(dir, `${name}.xz`))) return null;
  const tmp = mkdtempSync(join(tmpdir(), 'kube-tools-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const out = join(tmp, name);
  writeFileSync(out, execFileSync('xz', ['-dc', join(dir, `${name}.xz`)], { maxBuffer: 512 * 1024 * 1024 }));
  chmodSync(out, 0o755);
  unpacked.set(name, out);
  return out;
}

export const KUBE_TOOLS_MISSING = `kubectl not found (shared/tools/kubernetes/kubectl.xz beside the repository, or KUBE_TOOLS_DIR)`;
