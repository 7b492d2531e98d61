"""API gateway: principals, authentication, rate limits, idempotency keys, request ids."""

from bnpl.gateway.auth import (
    AnyP,
    ConsumerP,
    MerchantP,
    OperatorOrConsumerP,
    OperatorOrMerchantP,
    OperatorP,
    current_principal,
)
from bnpl.gateway.context import Command, command, request_id, runtime
from bnpl.gateway.principals import (
    Anonymous,
    Consumer,
    CredentialResolvers,
    Merchant,
    Operator,
    Principal,
)
from bnpl.gateway.ratelimit import RateLimiter, Verdict

__all__ = [
    "Anonymous",
    "AnyP",
    "Command",
    "Consumer",
    "ConsumerP",
    "CredentialResolvers",
    "Merchant",
    "MerchantP",
    "Operator",
    "OperatorOrConsumerP",
    "OperatorOrMerchantP",
    "OperatorP",
    "Principal",
    "RateLimiter",
    "Verdict",
    "command",
    "current_principal",
    "request_id",
    "runtime",
]
