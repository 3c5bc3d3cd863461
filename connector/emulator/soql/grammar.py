"""The lark grammar (LALR) for the subset of SOQL the org emulator understands.

Kept as a Python string so the package has no data files; parser.py turns the tree into nodes."""

from __future__ import annotations

from .dates import N_LITERALS, PLAIN_LITERALS


# Words SOQL refuses as identifiers. ORDER, OFFSET and friends are absent on purpose:
# Order and Group are standard objects; the contextual lexer tells those apart by position.
RESERVED = (
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
)


def _alternation(names: tuple[str, ...]) -> str:
    # Longest first: a regex alternation takes the first branch that matches.
    return "|".join(sorted(names, key=len, reverse=True))


GRAMMAR = r"""
start: _SELECT select_list _FROM name where? group_by? order_by? limit? offset? all_rows?

select_list: select_item ("," select_item)*
?select_item: field_path
            | NAME "(" [field_path] ")" [NAME]   -> function_item

field_path: name ("." name)*
name: NAME

where: _WHERE condition
?condition: unary
          | unary (_AND unary)+                 -> and_
          | unary (_OR unary)+                  -> or_
?unary: _NOT unary                              -> not_
      | "(" condition ")"
      | comparison

comparison: field_path COMPARE value            -> compare
          | field_path LIKE value               -> compare
          | field_path IN value_list            -> compare
          | field_path _NOT IN value_list        -> compare_not_in
          | field_path INCLUDES value_list      -> compare
          | field_path EXCLUDES value_list      -> compare

value_list: "(" value ("," value)* ")"
value: STRING | NUMBER | DATE | DATETIME | DATE_LITERAL | TRUE | FALSE | NULL

group_by: _GROUP _BY field_path ("," field_path)*
order_by: _ORDER _BY order_item ("," order_item)*
order_item: field_path [ASC | DESC] [_NULLS (FIRST | LAST)]

limit: LIMIT NUMBER
offset: OFFSET NUMBER
all_rows: _ALL _ROWS

_SELECT: "select"i
_FROM: "from"i
_WHERE: "where"i
_AND: "and"i
_OR: "or"i
_NOT: "not"i
LIKE: "like"i
IN: "in"i
INCLUDES: "includes"i
EXCLUDES: "excludes"i
TRUE: "true"i
FALSE: "false"i
NULL: "null"i
_ORDER: "order"i
_GROUP: "group"i
_BY: "by"i
ASC: "asc"i
DESC: "desc"i
_NULLS: "nulls"i
FIRST: "first"i
LAST: "last"i
LIMIT: "limit"i
OFFSET: "offset"i
_ALL: "all"i
_ROWS: "rows"i

COMPARE: /<=|>=|!=|<>|=|<|>/

// Reserved words never lex as NAME, so "SELECT a, FROM b" fails at FROM as in Salesforce.
// Other keywords (ORDER, OFFSET, ...) stay usable as names ("FROM Order"): the case-insensitive
// flag lets lark demote a NAME to the keyword only where the keyword is acceptable.
NAME: /(?!(?:@RESERVED@)(?![a-z0-9_]))[a-z][a-z0-9_]*/i
STRING: /'(?:[^'\\\n]|\\.)*'/
// Priorities keep a date from being read as a number followed by two negative numbers.
DATETIME.4: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)/i
DATE.3: /\d{4}-\d\d-\d\d/
NUMBER.2: /[+-]?(?:\d+(?:\.\d*)?|\.\d+)/
DATE_LITERAL.1: /(?:(?:@N_ARG@):\d+|(?:@PLAIN@))(?![a-z0-9_])/i

%ignore /\s+/
""".replace("@N_ARG@", _alternation(N_LITERALS)).replace("@PLAIN@", _alternation(PLAIN_LITERALS)).replace(
    "@RESERVED@", _alternation(RESERVED))
