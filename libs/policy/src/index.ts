export {
  PolicyError, PolicyValidationError, StatementTooLargeError, SqlAnalysisError, MaskingError, SqlSyntaxError,
  StatementTooComplexError, ParserFaultError, ParserUnavailableError, type PolicyIssue,
} from './errors.js';
export {
  initSqlParser, parseSql, parsePlPgSql, scanSql, parserHealth, SQLSTATE_STATEMENT_TOO_COMPLEX, SQLSTATE_PARSER_UNAVAILABLE,
  type ParserHealth,
} from './sql-parser.js';
export { statementDepth, assertNotTooComplex, DEFAULT_MAX_DEPTH } from './sql-complexity.js';
export {
  policyDocumentSchema, parsePolicyDocument, actionSchema, ACTIONS, MASKING_STRATEGIES, MEASURED_KINDS,
  resultRecordingOf, MAX_RECORDED_ROWS, MAX_RECORDED_BYTES,
  type PolicyDocument, type ResultRecording, type PolicyDocumentInput, type Action, type Guardrail, type MaskingRule, type CustomDetector,
} from './policy-document.js';
export {
  initPolicyEngine, PolicyEngine, evaluate, assertStatementSize, type PolicyEngineOptions, type FileOperationInput, type CommandRequest,
} from './policy-engine.js';
export {
  DEFAULT_MAX_STATEMENT_BYTES, DEFAULT_SAMPLE_ROWS, type Decision, type EvaluateContext, type ConsequenceCheck, type MeasurePlan,
} from './guardrails.js';
export {
  rowsOfTag, rowsFor, judgeConsequence, withinTolerance, sampleQuery, writesBetween, TRANSACTION_WRITES_SQL,
  type Measurement, type ConsequenceJudgement,
} from './consequence.js';
export { analyzeSql, type Analysis, type StatementUnit, type QualifiedName } from './sql-analyzer.js';
export { sqlShape } from './sql-scanner.js';
export {
  createMaskingPlan, explainMaskingPlan, maskText, partialMask,
  type ResultField, type MaskingPlan, type MaskingRefusal, type MaskingOptions,
} from './masking/index.js';
export { scrubServerMessage } from './server-messages.js';
export { BUILTIN_DETECTOR_NAMES, luhnValid, ibanChecksumValid } from './detectors.js';
export { TYPE_NAMES } from './pg-types.js';
export {
  CopyLineCodec, DEFAULT_COPY_FORMAT, copyFormatProblem, isDefaultCopyFormat,
  type CopyFormat, type CopyTextFormat, type CopyCsvFormat, type CopyLine,
} from './copy-format.js';
export { parseCopyToFormat, type CopyToFormat } from './copy-options.js';
export {
  SQL_TEXT_FUNCTIONS, sqlTextFunction, sqlOfCall,
  type SqlTextFunction, type SqlTextReads, type SqlTextCall,
} from './sql-text-functions.js';
export {
  parseRequestInfo, splitRequestTarget, describeRequest, KubeRequestError, type KubeRequestInfo,
} from './kubernetes/request-info.js';
export {
  evaluateKubeRequest, kubernetesMatches, impliedVerbs, globMatches, kubernetesSettings, kubernetesMatchSchema, kubernetesSettingsSchema,
  type KubeDecision, type KubernetesMatch, type KubernetesSettings,
} from './kubernetes/kube-guardrails.js';
export {
  KubeMasking, createKubeMasking, JsonDocumentSplitter, REDACTED, LAST_APPLIED, type KubeMaskMode, type KubeMaskStats,
} from './kubernetes/kube-masking.js';
export {
  FILE_OPERATIONS, UNRELIABLE_LINE_ACTIONS, guardrailKind,
  type FileOperation, type UnreliableLineAction, type GuardrailKind,
} from './policy-document.js';
export {
  analyzeShell, decodeAnsiC,
  type ShellAnalysis, type ShellAnalysisOptions, type ShellCommand, type ShellArg, type ShellRedirect, type ShellDynamic,
} from './shell-analyzer.js';
export { parseShell, shellNestingDepth, DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_SHELL_DEPTH, type ShellParseFailure } from './shell-parser.js';
export { globMatch, globsIntersect, normalisePathPattern, resolvePathPattern, escapeGlob, hasGlob, ANY_PATH } from './shell-paths.js';
export {
  evaluateCommand, evaluateArgv, evaluateFileOperation, evaluateShellLine, decideCommand, compileCommandPolicy, commandText, shellQuote, unreliableLineAction,
  type CommandDecision, type CommandContext, type FileOperationRequest, type CompiledCommandPolicy, type ShellLineInput,
} from './command-guardrails.js';
export { createStreamMasker, escapeEnd, TerminalStreamMasker, type StreamMaskerOptions, type StreamMaskFinding } from './stream-masker.js';
export { LineEditorModel, type EditedLine } from './line-editor.js';
export {
  SshSettingsEvaluator, sshSettingsSchema, parseDestinationPattern, destinationOf, DEFAULT_SSH_ENV, MAX_SSH_ENV_VALUE, MAX_SSH_ENV_VARS,
  type SshSettings, type SshSettingDecision,
} from './ssh-settings.js';
export { CommandAnalysisPool, type CommandAnalysisPoolOptions } from './command-analysis-pool.js';
