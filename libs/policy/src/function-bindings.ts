import { only, stringsOf, type ParseNode } from './parse-tree.js';

/**
 * DDL that binds a function by name. Operators, casts, aggregates, triggers, event triggers, base
 * types' I/O, ranges, conversions, procedural languages, access methods, FDW handlers, operator
 * classes, transforms, text-search parsers and templates, planner support functions all resolve to
 * functions that the server calls later — on `a ### b`, on `x::t`, on every row a trigger fires for,
 * on every DDL command. The parse tree of that later statement names none of them, so the binding
 * is decided when it is made: creating (or altering) one over a function counts as calling it, for
 * every function guardrail. `CREATE OPERATOR ### (FUNCTION = pg_cancel_backend, …)` is a call to
 * pg_cancel_backend.
 *
 * Expressions a DDL statement stores (column DEFAULTs, generated columns, CHECK constraints of
 * tables and domains, index and statistics expressions, RLS policies, trigger WHEN, rule actions,
 * publication row filters, ALTER COLUMN … USING) are ordinary parse-tree expressions: their
 * function calls are already the statement's.
 */

export interface Binding {
  /** functions the statement binds, as named (lower-cased) */
  functions: { schema: string | null; name: string }[];
  /** operators it binds (operator classes and families), as `[op]` or `[schema, op]` */
  operators: string[][];
}

/**
 * DefElem names whose value is a function, across CREATE OPERATOR / AGGREGATE / TYPE (base and
 * range) / TEXT SEARCH PARSER / TEMPLATE, ALTER OPERATOR / TYPE … SET, FOREIGN DATA WRAPPER and
 * CREATE/ALTER FUNCTION's SUPPORT.
 */
const FUNCTION_OPTIONS = new Set([
  'function', 'procedure', 'restrict', 'join',
  'sfunc', 'finalfunc', 'combinefunc', 'serialfunc', 'deserialfunc', 'msfunc', 'minvfunc', 'mfinalfunc',
  'input', 'output', 'receive', 'send', 'typmod_in', 'typmod_out', 'analyze', 'subscript',
  'subtype_diff', 'canonical',
  'start', 'gettoken', 'end', 'headline', 'lextypes', 'init', 'lexize',
  'handler', 'validator', 'support',
]);

/** DefineStmt kinds whose definition names functions (a dictionary's or collation's options are free text). */
const DEFINE_KINDS = new Set(['OBJECT_OPERATOR', 'OBJECT_AGGREGATE', 'OBJECT_TYPE', 'OBJECT_TSPARSER', 'OBJECT_TSTEMPLATE']);

/** OPCLASS_ITEM_OPERATOR / OPCLASS_ITEM_FUNCTION of CreateOpClassItem.itemtype (nodes/parsenodes.h). */
const OPCLASS_ITEM_OPERATOR = 1;
const OPCLASS_ITEM_FUNCTION = 2;

function qualifiedName(parts: string[]): { schema: string | null; name: string } {
  return {
    schema: parts.length >= 2 ? parts[parts.length - 2]!.toLowerCase() : null,
    name: (parts[parts.length - 1] ?? '').toLowerCase(),
  };
}

/** The name a DefElem value or a name field holds: `f`, `s.f`, `f(int)`, as TypeName, List, String or ObjectWithArgs. */
function namesOf(value: unknown): string[] {
  if (Array.isArray(value)) return stringsOf(value);
  // a struct field (ObjectWithArgs, TypeName) comes without its type key
  const v = value as ParseNode | null;
  if (v && typeof v === 'object' && Array.isArray(v.objname)) return stringsOf(v.objname);
  if (v && typeof v === 'object' && Array.isArray(v.names)) return stringsOf(v.names);
  const e = only(value);
  if (!e) return [];
  const [t, n] = e;
  if (t === 'TypeName') return stringsOf(n.names);
  if (t === 'List') return stringsOf(n.items);
  if (t === 'String') return [String(n.sval ?? '')];
  if (t === 'ObjectWithArgs') return stringsOf(n.objname);
  return [];
}

function fromOptions(options: unknown, out: Binding): void {
  for (const o of (options as unknown[]) ?? []) {
    const e = only(o);
    if (!e || e[0] !== 'DefElem' || !FUNCTION_OPTIONS.has(String(e[1].defname).toLowerCase())) continue;
    const names = namesOf(e[1].arg);
    if (names.length) out.functions.push(qualifiedName(names));
  }
}

function fromNames(value: unknown, out: Binding): void {
  const names = namesOf(value);
  if (names.length) out.functions.push(qualifiedName(names));
}

function fromOpClassItems(items: unknown, out: Binding): void {
  for (const i of (items as unknown[]) ?? []) {
    const e = only(i);
    if (!e || e[0] !== 'CreateOpClassItem') continue;
    const names = namesOf(e[1].name);
    if (!names.length) continue;
    if (e[1].itemtype === OPCLASS_ITEM_FUNCTION) out.functions.push(qualifiedName(names));
    else if (e[1].itemtype === OPCLASS_ITEM_OPERATOR) out.operators.push(names);
  }
}

/**
 * Operators an operator or aggregate definition refers to: the planner may run a COMMUTATOR or
 * NEGATOR instead of the operator being defined, and MIN/MAX-like aggregates their SORTOP. The
 * operator's own name (`COMMUTATOR = ###` on ###) is the one whose function this statement binds.
 */
function operatorOptions(body: ParseNode, out: Binding): void {
  const own = stringsOf(body.defnames);
  for (const o of (body.definition as unknown[]) ?? []) {
    const e = only(o);
    if (!e || e[0] !== 'DefElem' || !OPERATOR_OPTIONS.has(String(e[1].defname).toLowerCase())) continue;
    const names = namesOf(e[1].arg);
    if (names.length && !(body.kind === 'OBJECT_OPERATOR' && names[names.length - 1] === own[own.length - 1])) out.operators.push(names);
  }
}

const OPERATOR_OPTIONS = new Set(['commutator', 'negator', 'sortop']);

/** A function in LANGUAGE internal is a built-in under a new name: `AS 'pg_cancel_backend'` is that function. */
function internalSymbol(options: unknown, out: Binding): void {
  let language: string | null = null;
  let symbol: string | null = null;
  for (const o of (options as unknown[]) ?? []) {
    const e = only(o);
    if (!e || e[0] !== 'DefElem') continue;
    if (e[1].defname === 'language') language = namesOf(e[1].arg)[0]?.toLowerCase() ?? null;
    if (e[1].defname === 'as') symbol = namesOf(e[1].arg)[0] ?? null;
  }
  if (language === 'internal' && symbol) out.functions.push({ schema: null, name: symbol.trim().toLowerCase() });
}

/** The functions and operators a statement node (`type`, `body`) binds; empty for any statement that binds none. */
export function functionBindings(type: string, body: ParseNode): Binding {
  const out: Binding = { functions: [], operators: [] };
  switch (type) {
    case 'DefineStmt':
      if (DEFINE_KINDS.has(String(body.kind))) fromOptions(body.definition, out);
      operatorOptions(body, out);
      break;
    case 'AlterOperatorStmt':
    case 'AlterTypeStmt':
      fromOptions(body.options, out);
      break;
    case 'CreateRangeStmt':
      fromOptions(body.params, out);
      break;
    case 'CreateFdwStmt':
    case 'AlterFdwStmt':
      fromOptions(body.func_options, out);
      break;
    case 'CreateFunctionStmt':
      fromOptions(body.options, out);
      internalSymbol(body.options, out);
      break;
    case 'AlterFunctionStmt':
      fromOptions(body.actions, out);
      break;
    case 'CreateTrigStmt':
    case 'CreateEventTrigStmt':
      fromNames(body.funcname, out);
      break;
    case 'CreateConversionStmt':
      fromNames(body.func_name, out);
      break;
    case 'CreatePLangStmt':
      fromNames(body.plhandler, out);
      fromNames(body.plinline, out);
      fromNames(body.plvalidator, out);
      break;
    case 'CreateAmStmt':
      fromNames(body.handler_name, out);
      break;
    case 'CreateCastStmt':
      fromNames(body.func, out);
      break;
    case 'CreateTransformStmt':
      fromNames(body.fromsql, out);
      fromNames(body.tosql, out);
      break;
    case 'CreateOpClassStmt':
    case 'AlterOpFamilyStmt':
      fromOpClassItems(body.items, out);
      break;
  }
  return out;
}
