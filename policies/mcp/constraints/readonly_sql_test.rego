package mcp.constraints_readonly_sql_test

import data.mcp.constraints

# The shipped rule: query's "sql" argument is readonly_sql (policies/data.json).
refusals(sql) := {v.reason | some v in vs} if {
	vs := constraints.violations with input as {"request": {"method": "tools/call", "tool": "query", "arguments": {"sql": sql}}}
}

refused(why) := {concat("", ["argument sql fails readonly_sql constraint (", why, ")"])}

test_dangerous_functions_are_refused if {
	cases := [
		{"note": "terminates other sessions", "sql": "SELECT pg_terminate_backend(1)", "why": "call of pg_terminate_backend"},
		{"note": "writes a server file", "sql": "SELECT lo_export(16409, '/tmp/x')", "why": "call of lo_export"},
		{"note": "moves a sequence", "sql": "SELECT setval('s', 1)", "why": "call of setval"},
		{"note": "sleeps", "sql": "SELECT pg_sleep(100)", "why": "call of pg_sleep"},
		{"note": "space before the parenthesis", "sql": "select pg_sleep (1)", "why": "call of pg_sleep"},
		{"note": "newline before the parenthesis", "sql": "select pg_sleep\n(1)", "why": "call of pg_sleep"},
		{"note": "upper case", "sql": "SELECT PG_SLEEP(1)", "why": "call of PG_SLEEP"},
		{"note": "quoted name", "sql": `select "pg_sleep"(1)`, "why": `call of "pg_sleep"`},
		{"note": "schema-qualified", "sql": "select pg_catalog.pg_sleep(1)", "why": "schema-qualified call of pg_catalog.pg_sleep"},
		{"note": "a call after a listed call's comma", "sql": "select lower(a), pg_sleep(1) as x(y)", "why": "call of pg_sleep"},
		{"note": "listed name in another schema", "sql": "select app.lower(x) from t", "why": "schema-qualified call of app.lower"},
		{"note": "inside an allowed call", "sql": "select lower(pg_read_file('/etc/passwd'))", "why": "call of pg_read_file"},
		{"note": "in a subquery", "sql": "select * from t where id in (select nextval('s'))", "why": "call of nextval"},
		{"note": "table function", "sql": "select * from dblink('host=x', 'select 1') as t(a int)", "why": "call of dblink"},
		{"note": "in VALUES", "sql": "values (pg_sleep(1))", "why": "call of pg_sleep"},
		{"note": "in EXPLAIN ANALYZE", "sql": "explain analyze select pg_sleep(1)", "why": "call of pg_sleep"},
		{"note": "quotes inside quoted names do not open a string", "sql": `select "'", pg_sleep(1), "'" from t`, "why": "call of pg_sleep"},
		{"note": "non-breaking space is part of a PostgreSQL name", "sql": "select pg_sleep\u00a0(1)", "why": "call of pg_sleep\u00a0"},
		{"note": "parenthesis after a number", "sql": "select 1(2)", "why": "call of 1"},
		{"note": "quoted alias with a column list is not vouched for", "sql": `select * from t as "x"(a)`, "why": `call of "x"`},
		{"note": "Kelvin sign in an alias", "sql": "select * from t as \u212a(a)", "why": "call of \u212a"},
	]
	every case in cases {
		refusals(case.sql) == refused(case.why)
	}
}

test_text_that_could_hide_sql_is_refused if {
	cases := [
		{"note": "second statement", "sql": "select 1; drop table t", "why": "more than one statement"},
		{"note": "two trailing semicolons", "sql": "select 1;;", "why": "more than one statement"},
		{"note": "semicolon in a string", "sql": "select 'a;b'", "why": "more than one statement"},
		{"note": "line comment", "sql": "select 1 -- x", "why": "comment"},
		{"note": "block comment", "sql": "select lower/**/(x) from t", "why": "comment"},
		{"note": "MySQL comment", "sql": "select 1 # x", "why": "comment"},
		{"note": "dollar quoting", "sql": "select $$a$$", "why": "dollar quoting or parameter"},
		{"note": "tagged dollar quoting", "sql": "select $q$ ' $q$, pg_sleep(1)", "why": "call of pg_sleep; dollar quoting or parameter; unterminated quote"},
		{"note": "backslash escape", "sql": `select E'\'', 1`, "why": "backslash; unterminated quote"},
		{"note": "backtick", "sql": "select `a` from t", "why": "backtick"},
		{"note": "vertical tab", "sql": "select pg_sleep\u000b(1)", "why": "call of \u000b; control character"},
		{"note": "NUL", "sql": "select 1\u0000", "why": "control character"},
		{"note": "unterminated string", "sql": "select 'abc", "why": "unterminated quote"},
		{"note": "unterminated name", "sql": `select "abc`, "why": "unterminated quote"},
	]
	every case in cases {
		refusals(case.sql) == refused(case.why)
	}
}

test_statements_that_write_or_lock_are_refused if {
	cases := [
		{"note": "select into", "sql": "select * into t2 from t", "why": "keyword INTO"},
		{"note": "for update", "sql": "select * from t for update", "why": "keyword UPDATE"},
		{"note": "for share", "sql": "select * from t for share", "why": "FOR SHARE / FOR KEY SHARE / FOR NO KEY UPDATE row lock"},
		{"note": "for key share", "sql": "select * from t for key share", "why": "FOR SHARE / FOR KEY SHARE / FOR NO KEY UPDATE row lock"},
		{"note": "MySQL lock in share mode", "sql": "select * from t lock in share mode", "why": "keyword LOCK"},
		{"note": "writing CTE", "sql": "with x as (delete from t returning *) select * from x", "why": "keyword DELETE"},
		{"note": "copy", "sql": "copy t to '/tmp/x'", "why": "keyword COPY; not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "copy to program", "sql": "COPY (select 1) TO PROGRAM 'id'", "why": "call of COPY; keyword COPY; not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "delete", "sql": "DELETE FROM t", "why": "keyword DELETE; not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "drop", "sql": "drop table t", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "table shorthand", "sql": "table t", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "explain a write", "sql": "explain analyze insert into t values (1)", "why": "keyword INSERT; keyword INTO; not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "explain execute", "sql": "explain execute p", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "show then more", "sql": "show x = 1", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "show alone", "sql": "show", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
		{"note": "empty", "sql": "  ; ", "why": "not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"},
	]
	every case in cases {
		refusals(case.sql) == refused(case.why)
	}
}

test_not_a_string_is_refused if {
	every value in [1, null, ["select 1"], {"sql": "select 1"}] {
		refusals(value) == refused("not a string")
	}
}

test_read_only_queries_are_allowed if {
	cases := [
		"SELECT id, name FROM users WHERE created_at > now() - interval '1 day' ORDER BY id LIMIT 10",
		"select count(*), avg(price) from orders group by date_trunc('day', created_at);",
		"with recent as (select * from orders where ts > now()) select coalesce(sum(total), 0) from recent",
		"select cast(x as numeric(10, 2)), x::varchar(10), upper(name) from \"Users\"",
		"select * from t where action = 'delete' and note = 'pg_sleep(1)' and s = 'it''s'",
		"select substring(name from 1 for 3), length(name) from t",
		"select count(*) filter (where x > 1) over (partition by y order by z) from t",
		"select * from t where exists (select 1 from u where u.id = t.id) and id in (1, 2)",
		"select round(abs(x), 2), min(y), max(y) from t group by rollup (a, b)",
		"select v.x from (values (1), (2)) as v(x)",
		"explain select * from t",
		"explain (analyze, format json) select count(*) from t",
		"show search_path",
		"show transaction isolation level",
		"values (1, 'a'), (2, 'b')",
		"select lower\n(name) from t",
		"SELECT 1",
	]
	every sql in cases {
		refusals(sql) == set()
	}
}

test_functions_can_be_added_in_data_or_per_rule if {
	sql := "select * from generate_series(1, 3)"
	refusals(sql) == refused("call of generate_series")
	in_data := refusals(sql) with data.portcullis.sql_functions as ["generate_series"]
	in_data == set()
	rule := {"argument": "sql", "kind": "readonly_sql", "functions": ["Generate_Series"]}
	per_rule := refusals(sql) with data.portcullis.argument_constraints.query as [rule]
	per_rule == set()
}

test_listed_names_match_in_ascii_only if {
	# U+212A KELVIN SIGN lowers to "k": the database would call another function.
	sql := "select \u212aelvin(1)"
	refusals(sql) == refused("call of \u212aelvin") with data.portcullis.sql_functions as ["kelvin"]
}
