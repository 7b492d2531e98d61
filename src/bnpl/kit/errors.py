"""Errors rendered as RFC 9457 problem details with the machine-readable codes of API.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

PROBLEM_TYPE_BASE = "https://docs.bnpl.example/errors/"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


@dataclass
class ProblemError(Exception):
    """A failure the client can act on; the gateway renders it as problem+json."""

    status: int
    code: str
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.code, self.detail, self.errors)


def problem_body(
    status: int, code: str, detail: str = "", errors: list[FieldError] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail or HTTPStatus(status).description or HTTPStatus(status).phrase,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


# The error vocabulary shared by every context.
def validation_error(detail: str, field_name: str | None = None) -> ProblemError:
    errors = [FieldError(field_name, detail)] if field_name else []
    return ProblemError(422, "validation_error", detail, errors)


def not_found(what: str = "resource") -> ProblemError:
    return ProblemError(404, "not_found", f"No such {what}.")


def conflict(code: str, detail: str) -> ProblemError:
    return ProblemError(409, code, detail)


def unprocessable(code: str, detail: str, field_name: str | None = None) -> ProblemError:
    errors = [FieldError(field_name, detail)] if field_name else []
    return ProblemError(422, code, detail, errors)


def unauthenticated(detail: str = "Missing or invalid credentials.") -> ProblemError:
    return ProblemError(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str = "This endpoint is not for this kind of principal.") -> ProblemError:
    return ProblemError(403, "forbidden", detail)
