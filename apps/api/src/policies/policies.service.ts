import { Injectable } from '@nestjs/common';
import { PrismaClient, Prisma, type PolicyModel as Policy } from '@portcullis/db';
import { policyEngine } from '@portcullis/policy/loader';
import { BadRequestError, ConflictError, NotFoundError } from '../common/errors.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import type { ValidPolicyBody } from './policy-body.pipe.js';
import type { EvaluateBody, PolicyVersionView, PolicyView } from './dto/policy.dto.js';
import { isUniqueViolation } from '../common/prisma-errors.js';

function toView(p: Policy): PolicyView {
  return { name: p.name, version: p.version, document: p.document, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() };
}

const PG_TEXT_OID = 25;

/** A dry run has no result set: each named column is described as an untyped text column of no table. */
function asTextField(name: string) {
  return { name, tableOid: 0, columnAttr: 0, typeOid: PG_TEXT_OID, format: 0 as const };
}

@Injectable()
export class PoliciesService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
  ) {}

  async list(): Promise<PolicyView[]> {
    return (await this.prisma.policy.findMany({ orderBy: { name: 'asc' } })).map(toView);
  }

  async get(name: string, version?: number): Promise<PolicyView> {
    const p = await this.find(name);
    if (version === undefined || version === p.version) return toView(p);
    const v = await this.prisma.policyVersion.findUnique({ where: { policyId_version: { policyId: p.id, version } } });
    if (!v) throw new NotFoundError(`policy "${name}" has no version ${version}`, 'policy_version_not_found');
    return { name: p.name, version: v.version, document: v.document, createdAt: v.createdAt.toISOString(), updatedAt: v.createdAt.toISOString() };
  }

  async versions(name: string): Promise<PolicyVersionView[]> {
    const p = await this.find(name);
    const rows = await this.prisma.policyVersion.findMany({ where: { policyId: p.id }, orderBy: { version: 'desc' } });
    return rows.map((v) => ({ version: v.version, createdBy: v.createdBy, createdAt: v.createdAt.toISOString(), document: v.document }));
  }

  async create(body: ValidPolicyBody, actor: string): Promise<PolicyView> {
    let row: Policy;
    try {
      row = await this.prisma.$transaction(async (tx) => {
        const p = await tx.policy.create({ data: { name: body.name, version: 1, document: body.raw as Prisma.InputJsonObject } });
        await tx.policyVersion.create({ data: { policyId: p.id, version: 1, document: body.raw as Prisma.InputJsonObject, createdBy: actor } });
        return p;
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError(`policy "${body.name}" already exists; replace it with PUT /v1/policies/${body.name}`, 'policy_exists');
      }
      throw err;
    }
    const view = toView(row);
    await this.changed(actor, 'create', view.name, undefined, view);
    return view;
  }

  /** Creates or replaces (as a new version) the policy `name`; the document must carry the same name. */
  async put(name: string, body: ValidPolicyBody, actor: string): Promise<{ policy: PolicyView; created: boolean }> {
    if (body.name !== name) throw new BadRequestError(`name: the document is named "${body.name}" but the route names "${name}"`, 'validation_failed');
    const existing = await this.prisma.policy.findUnique({ where: { name } });
    if (!existing) {
      try {
        return { policy: await this.create(body, actor), created: true };
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err; // created concurrently: fall through to a new version
      }
    }
    const before = existing ? toView(existing) : undefined;
    const row = await this.prisma.$transaction(async (tx) => {
      const p = await tx.policy.update({ where: { name }, data: { version: { increment: 1 }, document: body.raw as Prisma.InputJsonObject } });
      await tx.policyVersion.create({ data: { policyId: p.id, version: p.version, document: body.raw as Prisma.InputJsonObject, createdBy: actor } });
      return p;
    });
    const after = toView(row);
    await this.changed(actor, 'update', name, before, after);
    return { policy: after, created: false };
  }

  async remove(name: string, actor: string): Promise<void> {
    const before = toView(await this.find(name));
    const users = await this.prisma.connection.findMany({ where: { policy: name }, select: { name: true } });
    if (users.length) {
      throw new ConflictError(`policy "${name}" is used by connection ${users.map((u) => `"${u.name}"`).join(', ')}; point them at another policy first`, 'policy_in_use');
    }
    await this.prisma.policy.delete({ where: { name } });
    await this.changed(actor, 'delete', name, before, undefined);
  }

  /** Dry run: the decision for `command` and the masking plan for `columns`; nothing is executed. */
  async evaluate(name: string, body: EvaluateBody): Promise<{ policy: string; version: number; decision: unknown; masking: unknown }> {
    const p = await this.find(name);
    const { explainMaskingPlan, parsePolicyDocument, PolicyEngine, StatementTooLargeError, evaluateCommand, evaluateFileOperation } = await policyEngine();
    const doc = parsePolicyDocument(p.document);
    if (body.file) {
      const decision = evaluateFileOperation({ ...body.file, cwd: body.cwd ?? null }, doc);
      return { policy: p.name, version: p.version, decision, masking: null };
    }
    if (body.protocol !== 'postgres') {
      const decision = evaluateCommand(body.command!, doc, { cwd: body.cwd ?? null, interactive: body.interactive });
      return { policy: p.name, version: p.version, decision, masking: null };
    }
    let decision: unknown;
    try {
      decision = new PolicyEngine(doc).evaluate(body.command!);
    } catch (err: unknown) {
      if (err instanceof StatementTooLargeError) throw new BadRequestError(`command: ${(err as Error).message}`, 'validation_failed');
      throw err;
    }
    return { policy: p.name, version: p.version, decision: withConsequenceNote(decision), masking: explainMaskingPlan(doc, (body.columns ?? []).map(asTextField)) };
  }

  private async find(name: string): Promise<Policy> {
    const row = await this.prisma.policy.findUnique({ where: { name } });
    if (!row) throw new NotFoundError(`policy "${name}" does not exist`, 'policy_not_found');
    return row;
  }

  private async changed(actor: string, action: string, target: string, before?: PolicyView, after?: PolicyView): Promise<void> {
    this.publisher.requestPublish();
    await this.events.record({ type: 'policy.changed', actor, data: { action, target, before, after } });
  }
}

/**
 * A dry run cannot know how many rows a write would change: a decision with consequence rules says
 * that they are measured at run time, and what each would do over its threshold.
 */
function withConsequenceNote(decision: unknown): unknown {
  const m = (decision as { measure?: { checks: { rule: string; action: string; over: number }[] } } | null)?.measure;
  if (!m) return decision;
  const rules = m.checks.map((c) => `${c.rule} (${c.action === 'block' ? 'blocked' : 'held for approval'} over ${c.over} rows)`).join(', ');
  return { ...(decision as object), measure: { ...m, note: `measured at run time: the gateway runs the write in a savepoint, counts the rows it changed and applies ${rules}` } };
}
