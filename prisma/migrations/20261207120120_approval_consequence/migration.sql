-- A write held by a consequence rule: rows it would change, tables, masked sample (issue 20)
ALTER TABLE "Approval" ADD COLUMN "consequence" JSONB;
