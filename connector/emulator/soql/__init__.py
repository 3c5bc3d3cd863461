"""SOQL for the org emulator: parse query text with lark and compile it against a schema
into predicates, sort keys and REST/Bulk projections over in-memory wire-format records."""

from .compiler import CompiledQuery, compile_query
from .errors import SoqlError
from .parser import parse
from .schema import FieldInfo, ObjectInfo, SchemaLookup

__all__ = ["CompiledQuery", "FieldInfo", "ObjectInfo", "SchemaLookup", "SoqlError", "compile_query", "parse"]
