"""Text to `nodes.Query`: the lark LALR parser plus a transformer that decodes literals.

Only syntax is checked here; names are resolved against a schema in compiler.py."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from . import nodes
from .errors import SoqlError, error_at
from .grammar import GRAMMAR

_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b",
            "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=True)


def _pos(token: Token) -> nodes.Pos:
    return (token.line, token.column)


def _unexpected(text: str, pos: nodes.Pos, what: str) -> SoqlError:
    return error_at("MALFORMED_QUERY", text, pos, f"unexpected token: '{what}'")


def _eof_pos(text: str) -> nodes.Pos:
    lines = text.rstrip().split("\n")
    return (len(lines), len(lines[-1].rstrip("\r")) + 1)


def decode_string(text: str, token_text: str, pos: nodes.Pos, *, like: bool = False) -> str:
    """The value of a quoted literal; with like=True, `\\%` and `\\_` stay escaped for the LIKE matcher."""
    body = token_text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "%_":
            out.append(body[i:i + 2] if like else nxt)
            i += 2
        elif nxt == "u" and len(body) >= i + 6 and all(c in "0123456789abcdefABCDEF" for c in body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        else:
            raise error_at("MALFORMED_QUERY", text, pos,
                           f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal.")
    return "".join(out)


def _parse_datetime(raw: str) -> dt.datetime:
    raw = raw.upper()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    elif raw[-5] in "+-" and raw[-3] != ":":
        raw = raw[:-2] + ":" + raw[-2:]
    return dt.datetime.fromisoformat(raw).astimezone(dt.timezone.utc)


AGGREGATE_FUNCTIONS = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})


class _ToNodes(Transformer):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def name(self, children):
        (tok,) = children
        return nodes.Name(str(tok), _pos(tok))

    def field_path(self, children):
        return nodes.FieldPath(tuple(children))

    def function_item(self, children):
        tok, arg, alias = children
        return ("function", tok, arg, alias)

    def group_by(self, children):
        return ("group_by", tuple(children))

    def select_list(self, children):
        return list(children)

    @v_args(inline=True)
    def value(self, tok):
        kind = tok.type
        pos = _pos(tok)
        if kind == "STRING":
            return nodes.Literal("string", decode_string(self.text, tok, pos), str(tok), pos)
        if kind == "NUMBER":
            # Decimal, not float: stored currency and percent values are Decimals, and 0.1 must equal 0.1.
            number = Decimal(str(tok)) if "." in tok else int(tok)
            return nodes.Literal("number", number, str(tok), pos)
        if kind == "DATE":
            try:
                day = dt.date.fromisoformat(tok)
            except ValueError:
                raise _unexpected(self.text, pos, str(tok)) from None
            return nodes.Literal("date", day, str(tok), pos)
        if kind == "DATETIME":
            try:
                moment = _parse_datetime(str(tok))
            except ValueError:
                raise _unexpected(self.text, pos, str(tok)) from None
            return nodes.Literal("datetime", moment, str(tok), pos)
        if kind == "DATE_LITERAL":
            name, _, n = tok.upper().partition(":")
            return nodes.Literal("date_literal", (name, int(n) if n else None), str(tok), pos)
        if kind in ("TRUE", "FALSE"):
            return nodes.Literal("boolean", kind == "TRUE", str(tok), pos)
        return nodes.Literal("null", None, str(tok), pos)

    def value_list(self, children):
        return tuple(children)

    @v_args(inline=True)
    def compare(self, field, op, value):
        name = "!=" if op == "<>" else str(op).upper()
        return nodes.Comparison(field, name, value, _pos(op))

    @v_args(inline=True)
    def compare_not_in(self, field, op, value):
        return nodes.Comparison(field, "NOT IN", value, _pos(op))

    def and_(self, children):
        return nodes.And(tuple(children))

    def or_(self, children):
        return nodes.Or(tuple(children))

    @v_args(inline=True)
    def not_(self, item):
        return nodes.Not(item)

    @v_args(inline=True)
    def where(self, condition):
        return ("where", condition)

    @v_args(inline=True)
    def order_item(self, field, direction, nulls):
        descending = direction is not None and direction.type == "DESC"
        nulls_last = None if nulls is None else nulls.type == "LAST"
        return nodes.OrderItem(field, descending, nulls_last)

    def order_by(self, children):
        return ("order_by", tuple(children))

    def _count(self, number):
        if "." in number or number.startswith(("+", "-")):
            raise _unexpected(self.text, _pos(number), str(number))
        return int(number)

    @v_args(inline=True)
    def limit(self, keyword, number):
        return ("limit", self._count(number), _pos(keyword))

    @v_args(inline=True)
    def offset(self, keyword, number):
        return ("offset", self._count(number), _pos(keyword))

    def all_rows(self, children):
        return ("all_rows", None, None)

    def start(self, children):
        items, sobject, *clauses = children
        fields: list[nodes.FieldPath] = []
        selected: list[nodes.FieldPath | nodes.Aggregate] = []
        is_count = False
        for item in items:
            if isinstance(item, tuple):
                _, tok, arg, alias = item
                function = tok.upper()
                if function == "COUNT" and arg is None and len(items) == 1 and alias is None:
                    is_count = True
                    continue
                if function == "COUNT" and arg is None:
                    raise error_at("MALFORMED_QUERY", self.text, _pos(tok),
                                   "COUNT() can not be selected together with other fields")
                if function not in AGGREGATE_FUNCTIONS or arg is None:
                    raise error_at("MALFORMED_QUERY", self.text, _pos(tok),
                                   f"Function {tok} in the select list is not supported by the org emulator")
                selected.append(nodes.Aggregate(function, arg, str(alias) if alias else None, _pos(tok)))
                continue
            fields.append(item)
            selected.append(item)
        where = limit = offset = offset_pos = None
        order_by: tuple = ()
        group_by: tuple = ()
        for clause in clauses:
            if clause is None:
                continue
            if clause[0] == "where":
                where = clause[1]
            elif clause[0] == "group_by":
                group_by = clause[1]
            elif clause[0] == "order_by":
                order_by = clause[1]
            elif clause[0] == "limit":
                limit = clause[1]
            elif clause[0] == "offset":
                offset, offset_pos = clause[1], clause[2]
        aggregate = group_by or any(isinstance(item, nodes.Aggregate) for item in selected)
        return nodes.Query(self.text, tuple(fields), is_count, sobject, where, order_by, limit, offset, offset_pos,
                           tuple(selected) if aggregate else (), group_by)


@functools.lru_cache(maxsize=512)
def parse(text: str) -> nodes.Query:
    """Parse SOQL text; raises SoqlError(MALFORMED_QUERY) with Salesforce's caret message."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            raise _unexpected(text, _eof_pos(text), "<EOF>") from None
        raise _unexpected(text, _pos(tok), str(tok)) from None
    except UnexpectedCharacters as exc:
        raise _unexpected(text, (exc.line, exc.column), _word_at(text, exc.pos_in_stream)) from None
    except UnexpectedEOF:
        raise _unexpected(text, _eof_pos(text), "<EOF>") from None
    try:
        return _ToNodes(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise


def _word_at(text: str, index: int) -> str:
    """What Salesforce's tokenizer would report at `index`: an identifier-ish run, or one character."""
    end = index
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[index:end] if end > index else text[index]
