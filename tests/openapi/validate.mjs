// validate.mjs FILE — @apidevtools/swagger-parser's validate() on an OpenAPI document:
// prints "ok <version> <paths>" and exits 0, or prints the error and exits 1.
// (tests/blackbox/test_openapi.py runs it, with `redocly lint` and redocly.yaml.)
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  console.log("ok", api.openapi, Object.keys(api.paths).length);
} catch (err) {
  console.error(String(err && err.message ? err.message : err));
  process.exit(1);
}
