# readonly_sql: an allow-list of statement shapes (PostgreSQL's lexical rules), not a list of bad
# words. One SELECT, WITH … SELECT, EXPLAIN [options] SELECT, SHOW <name> or VALUES statement (one
# trailing ";" allowed) in which every "(" opens a group, a subquery, an SQL construct (IN (…),
# OVER (…), numeric(10, 2), …) or a call of a function listed in data.portcullis.sql_functions or
# the rule's own "functions". Anything that could hide text from this check (comments, dollar
# quotes, backslash escapes, backticks, control characters) is refused outright, and so are INTO,
# COPY, row locks and data-modifying words (a WITH may hold DELETE … RETURNING).
package mcp.constraints

satisfied("readonly_sql", rule, value) if count(sql_refusals(rule, value)) == 0

# METADATA
# description: Why a readonly_sql value is refused (empty when it is allowed).
sql_refusals(_, value) := {"not a string"} if not is_string(value)

sql_refusals(rule, value) := refusals if {
	is_string(value)
	body := trim_space(trim_suffix(trim_space(value), ";"))
	tokens := [match[0] | some match in regex.find_all_string_submatch_n(sql_token, body, -1)]
	words := [lower(token) | some token in tokens]
	ascii := not_matched(`[^\x00-\x7F]`, body)
	refusals := (((sql_text_refusals(body) | sql_shape_refusals(words)) | sql_word_refusals(words)) | sql_call_refusals(rule, tokens, ascii)) | sql_quote_refusals(tokens)
}

# Under wasm every regex.match compiles its pattern (~15 µs), so the common case takes few of them:
# one pattern for all text checks, one to learn whether the text is ASCII, one to tokenize.
not_matched(pattern, text) := false if regex.match(pattern, text)

else := true

# ------------------------------------------------------------------ text checks

# Refused anywhere, inside quotes too: a ";" ends the statement, the others hide text from the
# token checks below (MySQL also reads "#" as a comment and backslashes inside quotes) or are not
# whitespace to this check but may be to a database (vertical tab).
sql_refused_text := [
	[`;`, "more than one statement"],
	[`--|/\*|#`, "comment"],
	[`\$`, "dollar quoting or parameter"],
	[`\\`, "backslash"],
	[`\x60`, "backtick"],
	[`[\x00-\x08\x0b\x0e-\x1f\x7f]`, "control character"],
]

sql_refused_text_any := concat("|", [pattern | some [pattern, _] in sql_refused_text])

sql_text_refusals(body) := set() if not regex.match(sql_refused_text_any, body)

else := {reason |
	some [pattern, reason] in sql_refused_text
	regex.match(pattern, body)
}

# ------------------------------------------------------------------ tokens

# One token per match, left to right: a string literal ('' escapes a quote), a quoted identifier
# ("" escapes a quote), a word (non-ASCII letters count, as in PostgreSQL), a number, or any
# other single character. Quoted text is one token, so words inside it are never read as SQL;
# with backslashes and dollar quotes refused, these are exactly PostgreSQL's quoting rules.
sql_token := `'(?:[^']|'')*'|"(?:[^"]|"")*"|(?:[A-Za-z_]|[^\x00-\x7F])(?:[A-Za-z0-9_]|[^\x00-\x7F])*|[0-9]+|\S`

sql_quote_refusals(tokens) := {"unterminated quote" | some token in tokens; token in {"'", "\""}}

# ------------------------------------------------------------------ statement shape

sql_statement_words := {"select", "with", "values"}

sql_shape_refusals(words) := set() if sql_shape_allowed(words)

else := {"not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement"}

sql_shape_allowed(words) if words[0] in sql_statement_words

# SHOW <name>: words and dots only (show search_path, show transaction isolation level).
sql_shape_allowed(words) if {
	words[0] == "show"
	count(words) > 1
	every word in array.slice(words, 1, count(words)) {
		regex.match(`^([a-z_][a-z0-9_]*|\.)$`, word)
	}
}

# EXPLAIN, then only option words (ANALYZE runs the statement, which is itself checked here),
# then the statement explained.
sql_shape_allowed(words) if {
	words[0] == "explain"
	first := min({i | some i, word in words; word in sql_statement_words})
	every word in array.slice(words, 1, first) {
		word in sql_explain_options
	}
}

sql_explain_options := {
	"analyze", "analyse", "verbose", "costs", "buffers", "timing", "summary", "settings", "wal",
	"memory", "generic_plan", "serialize", "format", "text", "json", "xml", "yaml", "binary",
	"none", "true", "false", "on", "off", "0", "1", "(", ")", ",",
}

# ------------------------------------------------------------------ words

# Data-modifying and locking words, anywhere outside quotes.
sql_refused_words := {"into", "copy", "insert", "update", "delete", "merge", "lock"}

sql_word_refusals(words) := {concat("", ["keyword ", upper(word)]) | some word in words; word in sql_refused_words} | {"FOR SHARE / FOR KEY SHARE / FOR NO KEY UPDATE row lock" |
	some i, word in words
	word == "for"
	words[i + 1] in {"share", "key", "no"}
}

# ------------------------------------------------------------------ parentheses

# Every "(" must follow one of these, an SQL keyword below or an allowed function name; anything
# else (a quoted name, a number, ")", ".", a backtick, …) is a call this check cannot vouch for.
sql_before_group := {"(", ",", "=", "<", ">", "+", "-", "*", "/", "%", "|", "&", "^", "~", "!", "@"}

# Keywords a "(" may follow that call nothing: subqueries, lists, window and grouping clauses,
# and type names with a modifier (cast(x as numeric(10, 2)), x::varchar(10)).
sql_keywords_before_group := {
	"select", "from", "where", "and", "or", "not", "in", "exists", "as", "on", "join", "using",
	"values", "over", "filter", "any", "all", "some", "by", "when", "then", "else", "case", "is",
	"like", "ilike", "between", "having", "union", "intersect", "except", "lateral", "rollup",
	"cube", "sets", "group", "distinct", "array", "row", "materialized", "explain", "to", "limit",
	"offset", "numeric", "decimal", "varchar", "char", "character", "varying", "timestamp", "time",
	"float",
}

sql_call_refusals(rule, tokens, ascii) := {sql_call_name(tokens, i) |
	some i, token in tokens
	token == "("
	i > 0
	not sql_group_allowed(rule, tokens, i, ascii)
}

sql_group_allowed(_, tokens, i, _) if tokens[i - 1] in sql_before_group

sql_group_allowed(_, tokens, i, ascii) if {
	sql_plain_word(tokens[i - 1], ascii)
	lower(tokens[i - 1]) in sql_keywords_before_group
}

# An alias's column list: FROM (VALUES (1)) AS v(x). After AS PostgreSQL reads a label, an alias
# or a type name (whose modifier is handed to the type's own parser), never a function call.
sql_group_allowed(_, tokens, i, _) if {
	lower(tokens[i - 2]) == "as"
	sql_plain_word(tokens[i - 1], false) # any name, listed or not: check its spelling
}

# A listed function, unqualified: "pg_catalog.count(" or "app.lower(" names another function.
sql_group_allowed(rule, tokens, i, ascii) if {
	sql_plain_word(tokens[i - 1], ascii)
	lower(tokens[i - 1]) in sql_functions(rule)
	not tokens[i - 2] == "."
}

# ASCII only, so that no Unicode case mapping (the Kelvin sign lowers to "k") turns another
# name into a listed one. In ASCII text any token whose lower case is a listed (ASCII) name is
# a plain word, so only text with other characters pays for a regex per name.
sql_plain_word(_, true)

sql_plain_word(token, false) if regex.match(`^[A-Za-z_][A-Za-z0-9_]*$`, token)

sql_functions(rule) := {lower(name) |
	some name in array.concat(object.get(data.portcullis, "sql_functions", []), object.get(rule, "functions", []))
}

sql_call_name(tokens, i) := concat("", ["schema-qualified call of ", tokens[i - 3], ".", tokens[i - 1]]) if {
	tokens[i - 2] == "."
} else := concat("", ["call of ", tokens[i - 1]])
