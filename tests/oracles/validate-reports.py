# Validates a SARIF log against the SARIF 2.1.0 schema, and a CycloneDX document with the
# CycloneDX project's own strict validator and schema; prints every error, exits 1 on any.
#
#   validate-reports.py SARIF_SCHEMA SARIF_LOG CYCLONEDX_BOM
import json, sys
from jsonschema import validators
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
sarif_schema, sarif_log, bom = sys.argv[1:4]
schema = json.load(open(sarif_schema))
validator = validators.validator_for(schema)
errors = ["SARIF %s: %s" % (list(e.absolute_path), e.message)
          for e in validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(json.load(open(sarif_log)))]
errors += ["CycloneDX %s: %s" % (list(e.data.absolute_path), e.data.message)
           for e in JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(bom).read(), all_errors=True) or []]
print("\n".join(errors))
sys.exit(1 if errors else 0)
