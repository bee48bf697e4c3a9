// check_responses.mjs DOC SAMPLES — validates real responses against the OpenAPI document:
// SAMPLES is a JSON list of {method, path (the document's template), status, media, body}
// or {schema (a component name), body};
// each body must match the schema the document gives for that operation, status and media
// type (JSON Schema 2020-12, ajv; formats and discriminators are not checked).
// Prints "ok N" and exits 0, or one line per mismatch and exits 1.
import Ajv2020 from "ajv/dist/2020.js";
import fs from "node:fs";

const doc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const samples = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const ID = "https://genpulse.invalid/openapi.json";
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ ...doc, $id: ID });

const esc = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");
function resolve(obj) {
  while (obj && obj.$ref && obj.$ref.startsWith("#/")) {
    obj = obj.$ref.slice(2).split("/").reduce((o, k) => o[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return obj;
}

let bad = 0;
for (const s of samples) {
  if (s.schema) { // a body checked against a component schema (an SSE event's data)
    const validate = ajv.compile({ $ref: ID + "#/components/schemas/" + s.schema });
    if (!validate(s.body)) {
      bad++;
      console.log(`${s.schema}: ${ajv.errorsText(validate.errors, { separator: "; " }).slice(0, 1500)}`);
    }
    continue;
  }
  const what = `${s.method} ${s.path} ${s.status} ${s.media}`;
  const op = doc.paths[s.path] && doc.paths[s.path][s.method.toLowerCase()];
  if (!op) { console.log(`${what}: no such operation in the document`); bad++; continue; }
  const resp = op.responses[String(s.status)];
  if (!resp) { console.log(`${what}: status not documented`); bad++; continue; }
  const r = resolve(resp);
  const key = r.$ref ? null : Object.keys(r.content || {}).find((m) => m === s.media);
  if (!key) { console.log(`${what}: media type not documented (${Object.keys(r.content || {})})`); bad++; continue; }
  // The schema by reference into the document, so its own $refs resolve.
  let pointer;
  if (resp.$ref) pointer = resp.$ref.slice(1) + `/content/${esc(key)}/schema`;
  else pointer = `/paths/${esc(s.path)}/${s.method.toLowerCase()}/responses/${s.status}/content/${esc(key)}/schema`;
  const validate = ajv.compile({ $ref: ID + "#" + pointer });
  if (!validate(s.body)) {
    bad++;
    console.log(`${what}: ${ajv.errorsText(validate.errors, { separator: "; " }).slice(0, 1500)}`);
  }
}
if (bad) process.exit(1);
console.log("ok", samples.length);
