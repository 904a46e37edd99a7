"""openapi.yaml as a checker of real responses.

    doc = Contract.load()
    doc.check("POST", "/run", status, headers, raw_body)

check () finds the operation whose path template matches the request path,
requires the status to be one the operation documents, the Content-Type to
be the documented one, documented headers to match their schemas, and a JSON
body to validate against the documented schema (JSON Schema 2020-12, the
dialect of OpenAPI 3.1, with formats checked). It raises AssertionError
saying what differs. Responses that belong to no operation (an unknown path,
a method a path does not take) must still be an Error body.

Every check is recorded (operation, status), so a test can require that
every documented operation was seen answering.
"""

import json
import re
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi.yaml"
BASE_URI = "urn:boxer:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _pointer(*parts):
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    def __init__(self, doc):
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE_URI, resource)
        self.seen = set()   # (METHOD, template, status)
        # Longest literal prefix first, so /images/pull wins over /images/{reference}.
        self.templates = sorted(doc["paths"],
                                key=lambda t: (t.count("{"), -len(t)))

    @classmethod
    def load(cls, path=DOCUMENT):
        with open(path, encoding="utf-8") as f:
            return cls(yaml.safe_load(f))

    def operations(self):
        """Every (METHOD, template) the document describes."""
        return {(m.upper(), t) for t, item in self.doc["paths"].items()
                for m in item if m in METHODS}

    def deref(self, obj):
        """Resolve a $ref to a component (responses, parameters): not a schema."""
        while isinstance(obj, dict) and "$ref" in obj:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj

    def match(self, path):
        """The path template a raw request path (query removed) falls under.
        A parameter named path (an output file's) may hold slashes."""
        for t in self.templates:
            regex = re.sub(r"\\\{([^}]+)\\\}",
                           lambda m: ".+" if m.group(1) == "path" else "[^/]+", re.escape(t))
            if re.match("^" + regex + "$", path):
                return t
        return None

    def validate(self, instance, pointer, what):
        schema = {"$ref": f"{BASE_URI}#/{pointer}"}
        validator = jsonschema.Draft202012Validator(
            schema, registry=self.registry, format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            lines = [f"- at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                     for e in errors[:10]]
            raise AssertionError(f"{what} does not match openapi.yaml:\n" + "\n".join(lines)
                                 + f"\nbody: {json.dumps(instance)[:1000]}")

    def check_error(self, status, headers, raw, what):
        """Any error body, with the code table's status."""
        ctype = headers.get("content-type", "")
        assert ctype.startswith("application/json"), f"{what}: error Content-Type {ctype!r}"
        body = json.loads(raw)
        self.validate(body, "components/schemas/Error", what)
        return body

    def check(self, method, path, status, headers, raw):
        """Check one response; headers: a dict with lower-case names."""
        path = path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in dict(headers).items()}
        template = self.match(path)
        what = f"{method} {path} -> {status}"
        if template is None:
            assert status >= 400, f"{what}: a path openapi.yaml does not describe answered"
            return self.check_error(status, headers, raw, what)
        item = self.doc["paths"][template]
        op = item.get(method.lower())
        if op is None:
            assert status in (404, 405), f"{what}: an undocumented method answered"
            return self.check_error(status, headers, raw, what)

        responses = op["responses"]
        key = str(status)
        if key not in responses:
            key = f"{str(status)[0]}XX" if f"{str(status)[0]}XX" in responses else "default"
        assert key in responses, (f"{what}: status {status} is not documented for "
                                  f"{method} {template} (documented: {sorted(responses)}); "
                                  f"body: {raw[:300]!r}")
        self.seen.add((method.upper(), template, status))
        resp = self.deref(responses[key])
        resp_pointer = self._response_pointer(responses[key], template, method, key)

        for name, spec in (resp.get("headers") or {}).items():
            spec = self.deref(spec)
            value = headers.get(name.lower())
            if value is None:
                continue
            inst = int(value) if spec.get("schema", {}).get("type") == "integer" else value
            self.validate(inst, _pointer(*resp_pointer, "headers", name, "schema"),
                          f"{what}: header {name}")

        content = resp.get("content")
        if not content:
            assert not raw, f"{what}: documented without a body, but answered {raw[:200]!r}"
            return None
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        assert ctype in content, (f"{what}: Content-Type {ctype!r}, documented: "
                                  f"{sorted(content)}")
        if ctype == "application/json":
            body = json.loads(raw)
            self.validate(body, _pointer(*resp_pointer, "content", ctype, "schema"), what)
            return body
        if ctype == "text/event-stream":
            return self.check_events(raw, content[ctype], resp_pointer, what)
        return raw

    def check_events(self, raw, media, resp_pointer, what):
        """A whole event stream: every event one the document names in
        x-events, its data valid against that event's schema, and the
        last event one that ends a stream.  The events as (name, data)."""
        events = []
        for block in raw.decode("utf-8").split("\n\n"):
            lines = [ln for ln in block.split("\n") if ln and not ln.startswith(":")]
            if not lines:
                continue
            fields = dict(ln.split(": ", 1) for ln in lines)
            assert set(fields) == {"event", "data"}, f"{what}: an event of {lines!r}"
            name, data = fields["event"], json.loads(fields["data"])
            assert name in media["x-events"], f"{what}: undocumented event {name!r}"
            self.validate(data, _pointer(*resp_pointer, "content", "text/event-stream",
                                         "x-events", name), f"{what}: event {name}")
            events.append((name, data))
        assert events and events[-1][0] in media["x-last-events"], f"{what}: ends with {events[-1:]}"
        return events

    def _response_pointer(self, ref_or_resp, template, method, key):
        if isinstance(ref_or_resp, dict) and "$ref" in ref_or_resp:
            return ref_or_resp["$ref"].lstrip("#/").split("/")
        return ["paths", template, method.lower(), "responses", key]
