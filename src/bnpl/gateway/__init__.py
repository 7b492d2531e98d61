"""API gateway: principals, authentication, rate limits, idempotency keys, request ids."""

from bnpl.gateway.addresses import PerAddressLimit, client_address
from bnpl.gateway.auth import (
    AnyP,
    ConsumerP,
    MerchantP,
    MetricsReader,
    OperatorOrConsumerP,
    OperatorOrMerchantP,
    OperatorP,
    current_principal,
)
from bnpl.gateway.context import Command, command, follow_sandbox_clock, request_id, runtime
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
    "MetricsReader",
    "Operator",
    "OperatorOrConsumerP",
    "OperatorOrMerchantP",
    "OperatorP",
    "PerAddressLimit",
    "Principal",
    "RateLimiter",
    "Verdict",
    "client_address",
    "command",
    "current_principal",
    "follow_sandbox_clock",
    "request_id",
    "runtime",
]
