#!/bin/sh
# The portal's two database roles (README.md, "The database roles"). The postgres image runs this
# once, when it initialises an empty pgdata volume, as the bootstrap superuser POSTGRES_USER.
#   changecontrol_owner  owns the database and every table; only `manage.py migrate` logs in as it
#   changecontrol_app    what web, worker and beat use; owns nothing, is granted its privileges by
#                        migrate (INSERT and SELECT only on the audit table)
# Neither is a superuser, so neither can SET session_replication_role to switch off the audit
# table's append-only triggers.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=owner_password="$POSTGRES_OWNER_PASSWORD" --set=app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE changecontrol_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
CREATE ROLE changecontrol_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';
ALTER DATABASE :"DBNAME" OWNER TO changecontrol_owner;
ALTER SCHEMA public OWNER TO changecontrol_owner;
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO changecontrol_app;
SQL
