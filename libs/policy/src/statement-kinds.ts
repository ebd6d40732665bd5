/**
 * Statement kinds: the words a guardrail's `match.statements` uses. Every analysed statement gets
 * one canonical kind such as `DELETE`, `DROP TABLE`, `ALTER ROLE`, `COPY TO`. A rule entry matches
 * a kind equal to it or starting with it and a space, so `DROP` matches `DROP TABLE` and
 * `DROP ROLE`, `ALTER` matches `ALTER ROLE`, `COPY` matches `COPY FROM` and `COPY TO`.
 */

/** First words a kind can start with; a rule entry whose first word is not here is a typo. */
export const STATEMENT_VERBS: ReadonlySet<string> = new Set([
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'GRANT', 'REVOKE',
  'COPY', 'EXPLAIN', 'PREPARE', 'EXECUTE', 'DEALLOCATE', 'DO', 'CALL', 'SET', 'RESET', 'SHOW', 'BEGIN',
  'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'VACUUM', 'ANALYZE', 'LOCK', 'DECLARE', 'FETCH', 'MOVE',
  'CLOSE', 'LISTEN', 'NOTIFY', 'UNLISTEN', 'LOAD', 'DISCARD', 'CHECKPOINT', 'REINDEX', 'CLUSTER', 'REFRESH',
  'REASSIGN', 'COMMENT', 'SECURITY', 'IMPORT', 'VALUES', 'RETURN',
]);

/** Canonical spelling of a rule entry: upper case, single spaces. */
export function normalizeKind(s: string): string {
  return s.trim().replace(/\s+/g, ' ').toUpperCase();
}

/** Whether the rule entry `pattern` (normalized) covers the statement kind `kind`. */
export function kindMatches(pattern: string, kind: string): boolean {
  return kind === pattern || (kind.length > pattern.length && kind.startsWith(pattern) && kind.charCodeAt(pattern.length) === 32);
}

const OBJECT_WORDS: Record<string, string> = {
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_FDW: 'FOREIGN DATA WRAPPER',
  OBJECT_FOREIGN_SERVER: 'SERVER',
  OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPFAMILY: 'OPERATOR FAMILY',
  OBJECT_EVENT_TRIGGER: 'EVENT TRIGGER',
  OBJECT_USER_MAPPING: 'USER MAPPING',
  OBJECT_TABCONSTRAINT: 'TABLE',
  OBJECT_COLUMN: 'TABLE',
};

/** `OBJECT_FOREIGN_TABLE` → `FOREIGN TABLE`. */
export function objectWords(objtype: unknown): string {
  if (typeof objtype !== 'string') return 'OBJECT';
  return OBJECT_WORDS[objtype] ?? objtype.replace(/^OBJECT_/, '').replace(/_/g, ' ');
}

const TRANSACTION_KINDS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN', TRANS_STMT_START: 'BEGIN', TRANS_STMT_COMMIT: 'COMMIT', TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT', TRANS_STMT_RELEASE: 'RELEASE', TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION', TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const FIXED: Record<string, string> = {
  SelectStmt: 'SELECT', InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE',
  TruncateStmt: 'TRUNCATE', CreateStmt: 'CREATE TABLE', CreateRoleStmt: 'CREATE ROLE', AlterRoleStmt: 'ALTER ROLE',
  AlterRoleSetStmt: 'ALTER ROLE', DropRoleStmt: 'DROP ROLE', CreatedbStmt: 'CREATE DATABASE', DropdbStmt: 'DROP DATABASE',
  AlterDatabaseStmt: 'ALTER DATABASE', AlterDatabaseSetStmt: 'ALTER DATABASE', AlterDatabaseRefreshCollStmt: 'ALTER DATABASE',
  CreateSchemaStmt: 'CREATE SCHEMA', IndexStmt: 'CREATE INDEX', ViewStmt: 'CREATE VIEW', CreateTrigStmt: 'CREATE TRIGGER',
  CreateSeqStmt: 'CREATE SEQUENCE', AlterSeqStmt: 'ALTER SEQUENCE', CreateExtensionStmt: 'CREATE EXTENSION',
  AlterExtensionStmt: 'ALTER EXTENSION', AlterExtensionContentsStmt: 'ALTER EXTENSION', AlterSystemStmt: 'ALTER SYSTEM',
  CreatePolicyStmt: 'CREATE POLICY', AlterPolicyStmt: 'ALTER POLICY', CompositeTypeStmt: 'CREATE TYPE',
  CreateEnumStmt: 'CREATE TYPE', CreateRangeStmt: 'CREATE TYPE', AlterEnumStmt: 'ALTER TYPE', CreateDomainStmt: 'CREATE DOMAIN',
  AlterDomainStmt: 'ALTER DOMAIN', CommentStmt: 'COMMENT', SecLabelStmt: 'SECURITY LABEL', VariableShowStmt: 'SHOW',
  ExplainStmt: 'EXPLAIN', PrepareStmt: 'PREPARE', ExecuteStmt: 'EXECUTE', DeallocateStmt: 'DEALLOCATE', DoStmt: 'DO',
  CallStmt: 'CALL', DeclareCursorStmt: 'DECLARE', ClosePortalStmt: 'CLOSE', ListenStmt: 'LISTEN',
  NotifyStmt: 'NOTIFY', UnlistenStmt: 'UNLISTEN', LoadStmt: 'LOAD', DiscardStmt: 'DISCARD', CheckPointStmt: 'CHECKPOINT',
  ReindexStmt: 'REINDEX', ClusterStmt: 'CLUSTER', RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW',
  ReassignOwnedStmt: 'REASSIGN OWNED', DropOwnedStmt: 'DROP OWNED', AlterFunctionStmt: 'ALTER FUNCTION',
  CreateForeignServerStmt: 'CREATE SERVER', AlterForeignServerStmt: 'ALTER SERVER', CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER',
  AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER', CreateUserMappingStmt: 'CREATE USER MAPPING', AlterUserMappingStmt: 'ALTER USER MAPPING',
  DropUserMappingStmt: 'DROP USER MAPPING', CreateForeignTableStmt: 'CREATE FOREIGN TABLE', ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER', AlterEventTrigStmt: 'ALTER EVENT TRIGGER', RuleStmt: 'CREATE RULE',
  CreatePublicationStmt: 'CREATE PUBLICATION', AlterPublicationStmt: 'ALTER PUBLICATION', CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
  AlterSubscriptionStmt: 'ALTER SUBSCRIPTION', DropSubscriptionStmt: 'DROP SUBSCRIPTION', AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  ConstraintsSetStmt: 'SET CONSTRAINTS', CreateTableSpaceStmt: 'CREATE TABLESPACE', DropTableSpaceStmt: 'DROP TABLESPACE',
  AlterTableSpaceOptionsStmt: 'ALTER TABLESPACE', AlterTableMoveAllStmt: 'ALTER TABLE', CreateCastStmt: 'CREATE CAST',
  CreateConversionStmt: 'CREATE CONVERSION', CreateOpClassStmt: 'CREATE OPERATOR CLASS', CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
  AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY', AlterOperatorStmt: 'ALTER OPERATOR', AlterTypeStmt: 'ALTER TYPE',
  CreateTransformStmt: 'CREATE TRANSFORM', CreatePLangStmt: 'CREATE LANGUAGE', CreateAmStmt: 'CREATE ACCESS METHOD',
  CreateStatsStmt: 'CREATE STATISTICS', AlterStatsStmt: 'ALTER STATISTICS', AlterCollationStmt: 'ALTER COLLATION',
  AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY', AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
  ReturnStmt: 'RETURN', PLAssignStmt: 'SELECT',
};

/** LOCK's modes, by LockStmt.mode (lockdefs.h: AccessShareLock = 1 … AccessExclusiveLock = 8). */
const LOCK_MODES = ['', 'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'];

/**
 * `LOCK TABLE IN <mode> MODE`, so a rule can match `LOCK` (any), `LOCK TABLE`, or one mode: pg_dump
 * takes ACCESS SHARE, while `LOCK t` (ACCESS EXCLUSIVE) stalls every other session's reads.
 */
function lockKind(node: Record<string, unknown>): string {
  const mode = LOCK_MODES[Number(node.mode ?? 8)] || 'ACCESS EXCLUSIVE';
  return `LOCK TABLE IN ${mode} MODE`;
}

/** Turns an unknown `FooBarStmt` node name into `FOO BAR` so new node types still get a readable kind. */
function fallbackKind(nodeType: string): string {
  return nodeType.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** The canonical kind of a statement node (`node` is the node's body, `nodeType` its key). */
export function statementKind(nodeType: string, node: Record<string, unknown>): string {
  switch (nodeType) {
    case 'DropStmt': return `DROP ${objectWords(node.removeType)}`;
    case 'AlterTableStmt': return `ALTER ${objectWords(node.objtype)}`;
    case 'RenameStmt': return `ALTER ${objectWords(node.renameType === 'OBJECT_COLUMN' || node.renameType === 'OBJECT_TABCONSTRAINT' ? node.relationType : node.renameType)}`;
    case 'AlterObjectSchemaStmt': return `ALTER ${objectWords(node.objectType)}`;
    case 'AlterOwnerStmt': return `ALTER ${objectWords(node.objectType)}`;
    case 'AlterObjectDependsStmt': return `ALTER ${objectWords(node.objectType)}`;
    case 'DefineStmt': return `CREATE ${objectWords(node.kind)}`;
    case 'CreateTableAsStmt': return node.objtype === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS';
    case 'CreateFunctionStmt': return node.is_procedure ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
    case 'GrantStmt':
    case 'GrantRoleStmt': return node.is_grant ? 'GRANT' : 'REVOKE';
    case 'VariableSetStmt': return typeof node.kind === 'string' && node.kind.startsWith('VAR_RESET') ? 'RESET' : 'SET';
    case 'TransactionStmt': return TRANSACTION_KINDS[String(node.kind)] ?? 'BEGIN';
    case 'CopyStmt': return node.is_from ? 'COPY FROM' : 'COPY TO';
    case 'VacuumStmt': return node.is_vacuumcmd ? 'VACUUM' : 'ANALYZE';
    case 'FetchStmt': return node.ismove ? 'MOVE' : 'FETCH';
    case 'LockStmt': return lockKind(node);
    default: return FIXED[nodeType] ?? fallbackKind(nodeType);
  }
}

/** Node types the switch of statementKind maps (the rest are in FIXED). */
const SWITCHED = [
  'DropStmt', 'AlterTableStmt', 'RenameStmt', 'AlterObjectSchemaStmt', 'AlterOwnerStmt', 'AlterObjectDependsStmt', 'DefineStmt',
  'CreateTableAsStmt', 'CreateFunctionStmt', 'GrantStmt', 'GrantRoleStmt', 'VariableSetStmt', 'TransactionStmt', 'CopyStmt',
  'VacuumStmt', 'FetchStmt', 'LockStmt',
];

/** Every statement node type with a kind of its own (statement-kinds.spec.ts checks it against the parser's node types). */
export const MAPPED_STATEMENT_NODES: ReadonlySet<string> = new Set([...Object.keys(FIXED), ...SWITCHED]);

/**
 * Node types named `…Stmt` that are parts of a statement, not statements: RawStmt wraps each
 * statement of a parse, ReplicaIdentityStmt is `ALTER TABLE … REPLICA IDENTITY`'s argument, and
 * SetOperationStmt only exists after analysis (a raw UNION is a SelectStmt).
 */
export const NOT_STATEMENT_NODES: ReadonlySet<string> = new Set(['RawStmt', 'ReplicaIdentityStmt', 'SetOperationStmt']);

/** Whether an AST node type is a statement (it gets its own unit in the analysis). */
export function isStatementNode(nodeType: string): boolean {
  return nodeType.endsWith('Stmt') && !NOT_STATEMENT_NODES.has(nodeType);
}
