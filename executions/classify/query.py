"""Reading a query-evaluation failure: a JSONata or JSONPath expression that could not be used.

Step Functions words these causes in a handful of fixed ways (reference §8, recorded on AWS):

- JSONata "… returned nothing (undefined)": a value the expression reads is missing from the
  input (missing_parameter);
- JSONata "… threw an error during evaluation. T1006: …": the expression itself is broken
  (invalid_request, with JSONata's error code);
- JSONata "… returned an unexpected result type. Expected 'array', but was 'object'": the
  expression yields the wrong kind of value (invalid_request);
- JSONPath "… could not be found in the input …" and "The SecondsPath parameter does not
  reference an input value: $.x": the input lacks the value (missing_parameter);
- JSONPath "Invalid path '$.x' : No results for path: $['x']": an InputPath/ResultPath/OutputPath
  in the definition selects nothing from the data it is applied to (invalid_request: the
  definition does not match the data's shape, typically a task's result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The kinds, and the category each one means.
MISSING_VALUE = "missing_value"
EVALUATION_ERROR = "evaluation_error"
RESULT_TYPE = "result_type"
PATH_MATCHES_NOTHING = "path_matches_nothing"
KINDS = (MISSING_VALUE, EVALUATION_ERROR, RESULT_TYPE, PATH_MATCHES_NOTHING)

_JSONATA = re.compile(
    r"JSONata expression '(?P<expression>.{0,600}?)' specified for the field "
    r"'(?P<field>[^']{1,200})' (?P<rest>returned nothing|threw an error|returned an unexpected)",
    re.DOTALL,
)
_JSONATA_CODE = re.compile(r"threw an error during evaluation\.?\s*(?P<code>[TDSU]\d{4})\b")
_RESULT_TYPE = re.compile(r"Expected '(?P<expected>[^']{1,40})', but was '(?P<actual>[^']{1,40})'")
_JSONPATH_NOT_FOUND = re.compile(
    r"JSONPath '(?P<expression>.{0,300}?)' specified for the field '(?P<field>[^']{1,200})'"
    r" could not be found",
    re.DOTALL,
)
_JSONPATH_NO_REFERENCE = re.compile(
    r"The (?P<field>\w{1,60}) parameter does not reference an input value: (?P<expression>\S{1,300})"
)
_JSONPATH_INVALID = re.compile(
    r"Invalid path '(?P<expression>[^']{1,300})'\s*:\s*No results for path"
)
# Older or emulator wordings that name a JSONPath without the sentence around it.
_ANY_JSONPATH = re.compile(r"JSONPath\s+'([^']{1,300})'", re.IGNORECASE)
_ANY_FIELD = re.compile(r"for the field\s+'([^']{1,200})'", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QueryFailure:
    """What a cause says about the expression that failed, and how it failed."""

    language: str  # jsonata | jsonpath
    kind: str  # MISSING_VALUE | EVALUATION_ERROR | RESULT_TYPE | PATH_MATCHES_NOTHING
    expression: str
    field: str = ""  # the field (JSONata `location`, e.g. Arguments/ApiEndpoint) it was for
    code: str = ""  # JSONata's error code (T1006, D3001…)
    expected: str = ""
    actual: str = ""

    @property
    def missing(self) -> bool:
        return self.kind == MISSING_VALUE

    def evidence(self) -> dict[str, str]:
        """The named fields, for a classification's evidence (empty ones left out)."""
        named = {
            "query_language": self.language,
            "expression": self.expression,
            "location" if self.language == "jsonata" else "field": self.field,
            "jsonata_error": self.code,
            "expected": self.expected,
            "actual": self.actual,
        }
        if self.language == "jsonpath":
            named["jsonpath"] = self.expression  # the name earlier rule versions used
        return {k: v for k, v in named.items() if v}


def read_query_failure(text: str) -> QueryFailure | None:
    """The query failure a cause describes, or None when it describes none."""
    if "JSONata" in text:
        found = _jsonata(text)
        if found is not None:
            return found
    if "ath" not in text:  # JSONPath, Invalid path, SecondsPath…: all contain it
        return None
    match = _JSONPATH_NOT_FOUND.search(text)
    if match:
        return QueryFailure("jsonpath", MISSING_VALUE, match["expression"], match["field"])
    match = _JSONPATH_NO_REFERENCE.search(text)
    if match:
        return QueryFailure("jsonpath", MISSING_VALUE, match["expression"], match["field"])
    match = _JSONPATH_INVALID.search(text)
    if match:
        return QueryFailure("jsonpath", PATH_MATCHES_NOTHING, match["expression"])
    match = _ANY_JSONPATH.search(text)
    if match:
        field = _ANY_FIELD.search(text)
        return QueryFailure("jsonpath", MISSING_VALUE, match[1], field[1] if field else "")
    return None


def _jsonata(text: str) -> QueryFailure | None:
    match = _JSONATA.search(text)
    if match is None:
        return None
    expression, field, rest = match["expression"], match["field"], match["rest"]
    if rest == "returned nothing":
        return QueryFailure("jsonata", MISSING_VALUE, expression, field)
    if rest == "threw an error":
        code = _JSONATA_CODE.search(text, match.start("rest"))
        return QueryFailure(
            "jsonata", EVALUATION_ERROR, expression, field, code=code["code"] if code else ""
        )
    types = _RESULT_TYPE.search(text, match.start("rest"))
    return QueryFailure(
        "jsonata",
        RESULT_TYPE,
        expression,
        field,
        expected=types["expected"] if types else "",
        actual=types["actual"] if types else "",
    )
