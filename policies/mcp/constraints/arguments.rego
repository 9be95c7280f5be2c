# METADATA
# title: Argument constraints
# description: |
#   Checks the arguments of a tools/call against data.portcullis.argument_constraints[<tool>]: a
#   list of rules, each naming an argument and a kind (path, url, readonly_sql, number, pattern;
#   readonly_sql is in readonly_sql.rego).
#   A rule applies when the argument is present, or always when "required" is true. Each broken
#   rule is one violation {reason, message}; mcp.authz denies on any. Lookups are by tool name, so
#   a tool without rules costs one missed lookup.
package mcp.constraints

default arguments := {}

arguments := input.request.arguments if is_object(input.request.arguments)

# METADATA
# description: One {reason, message} per broken rule of the called tool.
violations contains {"reason": reason, "message": object.get(rule, "message", default_message(rule))} if {
	input.request.method == "tools/call"
	some rule in data.portcullis.argument_constraints[input.request.tool]
	reason := broken(rule)
}

default_message(rule) := concat("", ["argument ", rule.argument, " of ", input.request.tool, " is not allowed"])

broken(rule) := concat("", ["argument ", rule.argument, " is required"]) if {
	object.get(rule, "required", false) == true
	not rule.argument in object.keys(arguments)
}

broken(rule) := concat("", ["argument ", rule.argument, " fails ", rule.kind, " constraint", failure_detail(rule, value)]) if {
	value := arguments[rule.argument]
	not satisfied(rule.kind, rule, value)
}

# What exactly a readonly_sql value broke, for the audited reason (which function to allow-list).
failure_detail(rule, value) := concat("", [" (", concat("; ", sort(sql_refusals(rule, value))), ")"]) if {
	rule.kind == "readonly_sql"
} else := ""

# ------------------------------------------------------------------ path: under one of the roots

satisfied("path", rule, value) if {
	some root in rule.roots
	safe_path(value, root)
}

# METADATA
# description: |
#   A path is under root (which ends in "/") only if, as written, it has no ".", ".." or empty
#   segment, no "%" (encoded dots or slashes: the tool may decode them), no backslash and no NUL.
#   Refusing such spellings, rather than normalising them, leaves nothing for a decoder to undo.
#   Symlinks cannot be seen from here: the tool must not follow links out of its root.
safe_path(path, root) if {
	is_string(path)
	startswith(path, root)
	not contains(path, "%")
	not contains(path, "\\")
	not contains(path, "\u0000")
	rest := trim_prefix(path, root)
	not startswith(rest, "/") # an empty segment ("//") right after the root
	not contains(rest, "//")
	segments := split(rest, "/")
	not "." in segments
	not ".." in segments
}

# ------------------------------------------------------------------ url: scheme and host allow-lists

satisfied("url", rule, value) if {
	is_string(value)

	# userinfo ("user@host") is refused outright: "https://good.example@evil.example/" tricks readers.
	parts := regex.find_all_string_submatch_n(`^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#@\\:]+)(:[0-9]+)?([/?#].*)?$`, value, 1)[0]
	lower(parts[1]) in object.get(rule, "schemes", ["https"])
	host := lower(parts[2])
	some pattern in rule.hosts
	glob.match(pattern, ["."], host)
}

# ------------------------------------------------------------------ readonly_sql: see readonly_sql.rego

# ------------------------------------------------------------------ number: bounds, optionally integer

satisfied("number", rule, value) if {
	is_number(value)
	value >= object.get(rule, "min", value)
	value <= object.get(rule, "max", value)
	integer_if_asked(rule, value)
}

integer_if_asked(rule, _) if not rule.integer

integer_if_asked(rule, value) if {
	rule.integer
	value == floor(value)
}

# ------------------------------------------------------------------ pattern: a regex over a string

satisfied("pattern", rule, value) if {
	is_string(value)
	count(value) <= object.get(rule, "max_length", count(value))
	regex.match(rule.regex, value)
}
