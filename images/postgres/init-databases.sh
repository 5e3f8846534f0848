#!/usr/bin/env bash
# First start of the compose PostgreSQL (docker-compose.yaml mounts this into /docker-entrypoint-initdb.d/):
# one server, two databases, each owned by its own login role, so neither Airflow nor the warehouse's tasks
# hold the superuser's password. The image runs it only while the data directory is empty: changing a
# password later is an `alter role`, not an edit here.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env (see .env.example)}"
: "${WAREHOUSE_DB_PASSWORD:?set WAREHOUSE_DB_PASSWORD in .env (see .env.example)}"

# Passwords travel as psql variables and are quoted by psql (:'name'), so any character is safe in SQL.
# The owner of a database may create schemas in it: the warehouse creates raw, marts, monitoring and the rest.
psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set airflow_password="$AIRFLOW_DB_PASSWORD" \
    --set warehouse_password="$WAREHOUSE_DB_PASSWORD" <<'SQL'
create role airflow login password :'airflow_password';
create database airflow owner airflow;
create role flywheel login password :'warehouse_password';
create database flywheel owner flywheel;
SQL
