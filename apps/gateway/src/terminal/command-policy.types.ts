import type { LineEditorModel } from '@portcullis/policy';

/**
 * What a terminal session asks policy — SSH sessions and Kubernetes exec/attach: commands, shell lines,
 * file operations, masking of output. One object per session, built from the session's policy document
 * (command-policy.ts); tests may supply their own to exercise the transport without the classifier.
 */

export type CommandAction = 'allow' | 'block' | 'require_approval';

export interface CommandVerdict {
  action: CommandAction;
  rule: string | null;
  /** what the client is told (the admin's words) */
  reason: string | null;
  /** commands as analysed (for the record) */
  commands?: string[];
  /** true when the text could not be fully analysed (dynamicCommand decided) */
  dynamic?: boolean;
  /** the text is incomplete shell input (open quote, here-doc, `if` without `fi`): a shell runs nothing yet */
  incomplete?: boolean;
}

/** A file operation as SFTP and SCP present it; paths are absolute and normalised. */
export type FileOp =
  | { op: 'read' | 'write' | 'remove' | 'mkdir' | 'rmdir' | 'setstat' | 'list'; path: string }
  | { op: 'rename' | 'symlink' | 'link'; path: string; target: string };

/** Where the line of an interactive shell came from (the line model's confidence). */
export interface ShellLine {
  text: string;
  /** false: history recall, completion or editing the model does not follow changed the line */
  reliable: boolean;
  /** why it is not reliable */
  reasons?: string[];
}

/** Masks a terminal's output as a stream: a value split across chunks is still masked. */
export interface StreamMasker {
  /** masked text that is safe to send now (some input may be held back until the next chunk) */
  push(chunk: string): string;
  /** the rest, at the end of the stream or when the stream goes idle */
  flush(): string;
  /** values masked so far */
  readonly masked?: number;
}

export interface TerminalPolicy {
  readonly name: string | null;
  readonly version: number | null;
  /**
   * an exec's command line, before it reaches the host. `unseenInput`: its input is not decided line by
   * line (no terminal), so a shell reading it (`ssh host bash`) runs commands nobody decided
   */
  command(text: string, opts?: { unseenInput?: boolean }): CommandVerdict;
  /** a line typed at an interactive shell, when its Enter is pressed */
  line(line: ShellLine): CommandVerdict;
  /**
   * command() and line() as SSH sessions and Kubernetes exec use them: the same decisions, a long text
   * analysed off the event loop (the core's CommandAnalysis: a worker thread) so one client's
   * pathological lines cannot stall every other session
   */
  commandAsync?(text: string, opts?: { unseenInput?: boolean }): Promise<CommandVerdict>;
  lineAsync?(line: ShellLine): Promise<CommandVerdict>;
  file(op: FileOp): CommandVerdict;
  /** true when file rules name paths: SFTP paths are then resolved on the target (symlinks) before deciding */
  readonly filePathRules?: boolean;
  /** an environment variable the client asks to set (`ssh -o SetEnv`, `SendEnv`); `reason` says why not */
  env(name: string, value: string): { allowed: boolean; reason: string | null };
  /** a direct-tcpip (`ssh -L`, `-W`) destination: the target opens the connection */
  forward(host: string, port: number): CommandVerdict;
  /** a tcpip-forward (`ssh -R`) listener the target would open */
  remoteForward(address: string, port: number): CommandVerdict;
  /** a fresh masker per output stream; null when the policy masks nothing */
  masker(): StreamMasker | null;
  /** a fresh line editor model for an interactive shell (null: no policy, lines are not held) */
  lineModel(): LineEditorModel | null;
}
