-- The kind of job an execution runs (longrun.Registry). Rows written before
-- kinds existed ran the deployment's only job, the default kind: '' says so.
ALTER TABLE executions ADD COLUMN job TEXT NOT NULL DEFAULT '';

-- ListExecutions with ?job=: newest first per tenant and kind.
CREATE INDEX executions_tenant_job_id ON executions (tenant, job, id DESC);
