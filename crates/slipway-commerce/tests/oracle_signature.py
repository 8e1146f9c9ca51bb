"""The oracle of tests/signature_oracle.rs: Stripe's own Python library signs and verifies
webhook signatures. Reads {"cases": [...]} as JSON on stdin, writes one answer per case.

  {"op": "sign", "payload", "secret", "timestamp"}  -> {"header"}
  {"op": "verify", "payload", "header", "secret", "tolerance"}  -> {"ok", "error"}

verify_header checks the tolerance against the wall clock (time.time()), and only for
timestamps too old.
"""

import json
import sys

import stripe
from stripe import WebhookSignature

assert stripe.VERSION == "16.1.0", f"stripe {stripe.VERSION} installed, 16.1.0 expected: run scripts/install-test-deps"


def answer(case):
    if case["op"] == "sign":
        header = WebhookSignature.generate_signature_header(case["payload"], case["secret"], case["timestamp"])
        return {"header": header}
    if case["op"] == "verify":
        try:
            WebhookSignature.verify_header(case["payload"], case["header"], case["secret"], case["tolerance"])
            return {"ok": True, "error": None}
        except stripe.SignatureVerificationError as e:
            return {"ok": False, "error": str(e)}
    raise ValueError(f"unknown op {case['op']!r}")


json.dump([answer(case) for case in json.load(sys.stdin)["cases"]], sys.stdout)
