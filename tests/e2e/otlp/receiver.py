"""An OTLP/HTTP traces receiver for tests/e2e/observability.sh: accepts
POST /v1/traces (protobuf ExportTraceServiceRequest, as OpenTelemetry's exporters send
it), decodes it with OTLP's own message definitions (opentelemetry-proto) and appends
one JSON line per span to the file named on the command line.

    python receiver.py PORT OUT.jsonl
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MAX_BODY = 16 << 20


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the http.server API)
        length = int(self.headers.get("content-length", "0"))
        if self.path != "/v1/traces" or length > MAX_BODY:
            self.send_error(404 if self.path != "/v1/traces" else 413)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(length))
        with open(sys.argv[2], "a", encoding="utf-8") as out:
            for resource_spans in request.resource_spans:
                resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.write(json.dumps({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "attributes": {a.key: value(a.value) for a in span.attributes},
                            "resource": resource,
                        }) + "\n")
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
