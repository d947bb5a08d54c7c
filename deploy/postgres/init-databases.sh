#!/usr/bin/env bash
# Creates one login role and one database per OpenV service that owns tables (idempotent; sets
# the passwords on every run, so changing them in the env file takes effect on the next start).
# Runs in the postgres image (compose: postgres-init) as the superuser, against $PGHOST.
#   JOBS_DB_PASSWORD    password of role openv_jobs   (owner of database openv_jobs)
#   BRIDGE_DB_PASSWORD  password of role openv_bridge (owner of database openv_bridge)
#   WEBHOOKS_DB_PASSWORD password of role openv_webhooks (owner of database openv_webhooks)
# Each role can connect to its own database only; the services' migrations create the tables.
set -euo pipefail

: "${JOBS_DB_PASSWORD:?JOBS_DB_PASSWORD is required}"
: "${BRIDGE_DB_PASSWORD:?BRIDGE_DB_PASSWORD is required}"
: "${WEBHOOKS_DB_PASSWORD:?WEBHOOKS_DB_PASSWORD is required}"

# Passwords travel as psql variables (:'name' quotes them as SQL literals), never in the SQL.
psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "${PGDATABASE:-postgres}" \
  -v jobs_password="$JOBS_DB_PASSWORD" -v bridge_password="$BRIDGE_DB_PASSWORD" \
  -v webhooks_password="$WEBHOOKS_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE openv_jobs LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openv_jobs') \gexec
SELECT 'CREATE ROLE openv_bridge LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openv_bridge') \gexec
SELECT 'CREATE ROLE openv_webhooks LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openv_webhooks') \gexec
ALTER ROLE openv_jobs WITH LOGIN PASSWORD :'jobs_password';
ALTER ROLE openv_bridge WITH LOGIN PASSWORD :'bridge_password';
ALTER ROLE openv_webhooks WITH LOGIN PASSWORD :'webhooks_password';

SELECT 'CREATE DATABASE openv_jobs OWNER openv_jobs'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'openv_jobs') \gexec
SELECT 'CREATE DATABASE openv_bridge OWNER openv_bridge'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'openv_bridge') \gexec
SELECT 'CREATE DATABASE openv_webhooks OWNER openv_webhooks'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'openv_webhooks') \gexec
REVOKE ALL ON DATABASE openv_jobs FROM PUBLIC;
REVOKE ALL ON DATABASE openv_bridge FROM PUBLIC;
REVOKE ALL ON DATABASE openv_webhooks FROM PUBLIC;
GRANT ALL ON DATABASE openv_jobs TO openv_jobs;
GRANT ALL ON DATABASE openv_bridge TO openv_bridge;
GRANT ALL ON DATABASE openv_webhooks TO openv_webhooks;
SQL
echo "databases openv_jobs, openv_bridge and openv_webhooks are ready"
