"""The faces of the platform: the hosted checkout, the merchant widget, the consumer account
and the sandbox's demo shop, as server-rendered pages (Jinja2) with a little JavaScript.

Pages change nothing themselves: every change (sign-up, login, a card, a confirmation, a
payment) is a call to the platform's own JSON API, made in-process through the whole ASGI
application, gateway included (`internal.py`), with the consumer's bearer token, which lives
only in an encrypted, HttpOnly cookie (`session.py`). Reads that the API has no endpoint for
(the hosted checkout before sign-in, the widget's offers) go through the facades of checkout,
installments and merchants. Nothing imports web; it exposes `router` (in `api.py`).
"""
