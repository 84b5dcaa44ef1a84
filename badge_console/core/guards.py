"""DDL beside the badge triggers that keeps the application safe from them.

The award-table guard removes, at commit, an award whose user was deleted later in the
same transaction; the migration recorder notes each ALTER TABLE of a table carrying our
triggers, so a badge a migration broke can say which statement broke it and when.
Built with psycopg.sql like everything in sqlgen; nothing here comes from badge.json.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import SCHEMA, AwardTable, dollar_quote
from .sqlgen_trigger import drop_trigger_ddl

AWARD_GUARD = "BC_award_user_gone"  # sorts before RI_ConstraintTrigger_*: see award_guard_ddl
MIGRATION_RECORDER = "badge_console_migrations"  # the event trigger's name
KEPT_MIGRATIONS = 1000


def migration_recorder_ddl() -> list[sql.Composed]:
    """An event trigger (superuser only) recording each ALTER TABLE of a table that carries
    one of our triggers, so that a badge broken by a migration says which statement broke it
    and when. Any error inside it is swallowed: it never fails the application's migration."""
    s = sql.Identifier(SCHEMA)
    body = sql.SQL(
        "BEGIN\n  INSERT INTO {s}.migrations (object, statement)\n"
        "  SELECT DISTINCT c.object_identity, left(current_query(), 2000)\n"
        "  FROM pg_event_trigger_ddl_commands() AS c\n"
        "  WHERE c.classid = 'pg_class'::regclass AND EXISTS (\n"
        "    SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid\n"
        "    WHERE t.tgrelid = c.objid AND p.pronamespace = {ns}::regnamespace);\n"
        "  DELETE FROM {s}.migrations WHERE id <= (SELECT max(id) - {kept} FROM {s}.migrations);\n"
        "EXCEPTION WHEN OTHERS THEN\n  NULL;  -- never break the application's migration\n"
        "END;\n").format(s=s, ns=sql.Literal(SCHEMA), kept=sql.Literal(KEPT_MIGRATIONS))
    fn = sql.Identifier(SCHEMA, "record_migration")
    return [
        sql.SQL("CREATE OR REPLACE FUNCTION {fn}() RETURNS event_trigger LANGUAGE plpgsql"
                " SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {body}").format(
            fn=fn, body=sql.SQL(dollar_quote(body.as_string(None)))),
        sql.SQL("CREATE EVENT TRIGGER {name} ON ddl_command_end WHEN TAG IN ('ALTER TABLE')"
                " EXECUTE FUNCTION {fn}()").format(name=sql.Identifier(MIGRATION_RECORDER),
                                                   fn=fn)]


def award_guard_ddl(award: AwardTable) -> list[sql.Composed]:
    """A deferred check on the award table that removes, at commit, an award whose user was
    deleted later in the same transaction (Django's user.delete() deletes awards, then the
    rows a delete badge watches, then the user), before the deferred foreign key is checked.

    Its name sorts before PostgreSQL's RI_ConstraintTrigger_* so that it runs first."""
    if award.users is None or not award.users_deferred:
        return []
    schema, table, column = award.users
    fn = sql.Identifier(SCHEMA, "award_user_gone")
    body = sql.SQL(
        "BEGIN\n  IF NOT EXISTS (SELECT 1 FROM {users} WHERE {col} = NEW.user_id) THEN\n"
        "    DELETE FROM {award} WHERE id = NEW.id;\n  END IF;\n  RETURN NULL;\nEND;\n").format(
        users=sql.Identifier(schema, table), col=sql.Identifier(column), award=award.ident)
    return [
        sql.SQL("CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql"
                " SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {body}").format(
            fn=fn, body=sql.SQL(dollar_quote(body.as_string(None)))),
        drop_trigger_ddl(award.schema, award.name, AWARD_GUARD),
        sql.SQL("CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON {award}"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {fn}()").format(
            name=sql.Identifier(AWARD_GUARD), award=award.ident, fn=fn)]
