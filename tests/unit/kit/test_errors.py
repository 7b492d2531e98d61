from __future__ import annotations

from bnpl.kit.errors import (
    PROBLEM_TYPE_BASE,
    FieldError,
    ProblemError,
    conflict,
    forbidden,
    not_found,
    problem_body,
    unauthenticated,
    unprocessable,
    validation_error,
)


def test_problem_body_fields() -> None:
    body = problem_body(409, "checkout_not_open", "The checkout is not open.")
    assert body == {
        "type": PROBLEM_TYPE_BASE + "checkout_not_open",
        "title": "Conflict",
        "status": 409,
        "code": "checkout_not_open",
        "detail": "The checkout is not open.",
    }


def test_problem_body_defaults_and_field_errors() -> None:
    body = problem_body(422, "validation_error", errors=[FieldError("amount", "too big")])
    assert body["title"] in ("Unprocessable Entity", "Unprocessable Content")
    assert body["detail"]  # a default from the status
    assert body["errors"] == [{"field": "amount", "message": "too big"}]
    assert "errors" not in problem_body(404, "not_found")


def test_problem_error() -> None:
    error = ProblemError(
        422,
        "invalid_card",
        "Card number fails the Luhn check.",
        [FieldError("card.number", "invalid")],
    )
    assert str(error) == "422 invalid_card: Card number fails the Luhn check."
    assert error.body()["errors"] == [{"field": "card.number", "message": "invalid"}]
    assert isinstance(error, Exception)


def test_vocabulary() -> None:
    assert (not_found("plan").status, not_found("plan").code) == (404, "not_found")
    assert not_found("plan").detail == "No such plan."
    assert (conflict("email_taken", "x").status, conflict("email_taken", "x").code) == (
        409,
        "email_taken",
    )
    error = validation_error("must be positive", "amount")
    assert (error.status, error.code) == (422, "validation_error")
    assert error.errors == [FieldError("amount", "must be positive")]
    assert validation_error("bad").errors == []
    error = unprocessable("amount_mismatch", "items do not add up", "items")
    assert (error.status, error.code, error.errors[0].field) == (422, "amount_mismatch", "items")
    error = unauthenticated()
    assert (error.status, error.code) == (401, "unauthenticated")
    assert error.headers == {"WWW-Authenticate": "Bearer"}
    assert (forbidden().status, forbidden().code) == (403, "forbidden")
