"""openapi.yaml is a valid OpenAPI 3.1 document and says what the code does:
its routes, error codes, run result, health body, request fields and limit
bounds are read from the C sources and compared. No server needed."""

import re

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from conftest import ROOT, need
from contract import DOCUMENT, Contract

DOC = Contract.load()
SCHEMAS = DOC.doc["components"]["schemas"]
# Served by nginx itself from static files (contrib/nginx/boxer.conf.in).
STATIC = {("GET", "/openapi.yaml"), ("GET", "/swagger"), ("GET", "/swagger/")}


def source(path):
    return (ROOT / path).read_text(encoding="utf-8")


def c_function(path, name):
    """The body of the C function name in path (from its name to the first
    closing brace at column 0)."""
    text = source(path)
    m = re.search(r"^%s \([^)]*\)\s*\n\{(.*?)\n\}" % re.escape(name), text, re.S | re.M)
    assert m, f"no function {name} in {path}"
    return m.group(1)


def test_document_validates():
    spec, url = read_from_filename(str(DOCUMENT))
    validate(spec, base_uri=url)
    assert DOC.doc["openapi"].startswith("3.1")


def test_every_ref_resolves():
    text = DOCUMENT.read_text(encoding="utf-8")
    for ref in set(re.findall(r"\$ref: '([^']+)'", text)):
        assert DOC.deref({"$ref": ref}) is not None, ref


def media_types():
    """(JSON pointer parts, media type object) of every request and response
    body of the document."""
    for template, item in DOC.doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "delete"):
                continue
            body = op.get("requestBody", {}).get("content", {})
            for ctype, media in body.items():
                yield ["paths", template, method, "requestBody", "content", ctype], media
            for status, resp in op["responses"].items():
                if "$ref" not in resp:
                    for ctype, media in resp.get("content", {}).items():
                        yield ["paths", template, method, "responses", status, "content",
                               ctype], media
    for name, resp in DOC.doc["components"]["responses"].items():
        for ctype, media in resp.get("content", {}).items():
            yield ["components", "responses", name, "content", ctype], media


def test_examples_match_their_schemas():
    seen = 0
    for parts, media in media_types():
        pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts + ["schema"])
        examples = [media["example"]] if "example" in media else []
        examples += [e["value"] for e in media.get("examples", {}).values()]
        for example in examples:
            DOC.validate(example, pointer, f"example of {'/'.join(parts)}")
            seen += 1
    assert seen >= 12


def test_version_matches_configure():
    version = re.search(r"AC_INIT\(\[boxer\], \[([^\]]+)\]", source("configure.ac")).group(1)
    assert DOC.doc["info"]["version"] == version


def routes():
    """(METHOD, pattern) of the routing table in fcgi/router.c, with the
    router's {} and {*} (a rest of the path, slashes included) both as {}:
    test_conformance.py checks which parameters take slashes."""
    table = re.search(r"routes\[\] = \{(.*?)\n\};", source("fcgi/router.c"), re.S).group(1)
    return {(m, p.replace("{*}", "{}"))
            for m, p in re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*\w+\s*\}', table)}


def as_route(template):
    """/runs/{id}/outputs/{path} -> /runs/{}/outputs/{}."""
    return re.sub(r"\{[^}]+\}", "{}", template)


def test_documented_operations_are_the_routes():
    routed = routes()
    documented = {(m, as_route(t)) for m, t in DOC.operations() - STATIC}
    assert routed - documented == set(), "routes openapi.yaml does not describe"
    assert documented - routed == set(), "operations of openapi.yaml that fcgi/router.c lacks"


def status_table():
    """(status, code) pairs of fcgi/response.c."""
    table = re.search(r"status_table\[\] = \{(.*?)\n\};", source("fcgi/response.c"), re.S).group(1)
    return {(int(s), c) for s, c in re.findall(
        r'\{\s*BOXER_ERR_\w+,\s*(\d+),\s*"(\w+)"(?:,\s*\d+)?\s*\}', table)}


def test_error_codes_are_the_servers():
    assert set(SCHEMAS["ErrorCode"]["enum"]) == {c for _, c in status_table()}
    # The table in the description says the same.
    table = dict(re.findall(r"\| (\d{3}) \| (.*?) \|", SCHEMAS["ErrorCode"]["description"]))
    described = {(int(s), c) for s, codes in table.items() for c in re.findall(r"`(\w+)`", codes)}
    assert described == status_table()


def test_error_codes_match_api_md():
    api_md = ROOT.parent / "shared" / "API.md"
    need(api_md.exists(), f"{api_md} (the prose contract) is beside the checkout")
    rows = re.findall(r"^\| (\d{3}) \| (.*?) \|", api_md.read_text(encoding="utf-8"), re.M)
    pairs = {(int(s), c) for s, codes in rows for c in re.findall(r"`(\w+)`", codes)}
    # The contract also names the codes of endpoints still to come (keys,
    # sessions): every code the server sends must be in it, with its status.
    assert status_table() <= pairs, status_table() - pairs


def codes_allowed(schema):
    """The error codes an error schema of the document lets through."""
    schema = DOC.deref(schema)
    if "allOf" in schema:
        part = schema["allOf"][1]["properties"]["error"]["properties"]["code"]
        return set(part.get("enum", [part.get("const")]))
    return set(SCHEMAS["ErrorCode"]["enum"])


def nginx_errors():
    """(status, code) of the error bodies nginx answers itself."""
    conf = source("contrib/nginx/boxer.conf.in")
    return {(int(s), c) for s, c in re.findall(
        r"return (\d{3}) '\{\"error\":\{\"code\":\"(\w+)\"", conf)}


def test_every_error_response_has_the_status_of_its_codes():
    allowed = status_table() | nginx_errors()
    for method, template in DOC.operations():
        for status, resp in DOC.doc["paths"][template][method.lower()]["responses"].items():
            if int(status) < 400:
                continue
            schema = DOC.deref(resp)["content"]["application/json"]["schema"]
            for c in codes_allowed(schema):
                assert (int(status), c) in allowed, (method, template, status, c)


def test_nginx_errors_use_the_codes():
    codes = set(SCHEMAS["ErrorCode"]["enum"])
    assert {414, 502, 504} <= {s for s, _ in nginx_errors()}
    for status, c in nginx_errors():
        assert c in codes, (status, c)


def json_keys(body):
    """Keys a C function adds to a JSON object, with the json-c constructor."""
    return dict(re.findall(r'json_object_object_add\s*\(\s*\w+,\s*"(\w+)",\s*([^\n;]*)', body))


KIND = [("json_object_new_boolean", "boolean"), ("json_object_new_int", "integer"),
        ("json_object_new_array", "array"), ("json_object_new_string", "string"),
        ("text (", "string"), ("timestamp (", "string"),
        ("boxer_run_outputs_to_json", "array")]


def kind(expr):
    for needle, t in KIND:
        if needle in expr:
            return t
    raise AssertionError(f"unknown JSON constructor in {expr!r}")


def schema_type(schema):
    schema = DOC.deref(schema)
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t}


def test_run_result_is_what_response_c_emits():
    emitted = json_keys(c_function("fcgi/response.c", "boxer_run_result_to_json"))
    result = SCHEMAS["RunResult"]
    assert set(result["properties"]) == set(emitted)
    assert set(result["required"]) == set(emitted)
    assert result["additionalProperties"] is False
    for key, expr in emitted.items():
        types = schema_type(result["properties"][key])
        assert kind(expr) in types, (key, expr, types)
        # A value that may be NULL in C is null in JSON.
        assert ("NULL" in expr) == ("null" in types), (key, expr, types)


def test_outputs_are_what_response_c_emits():
    emitted = json_keys(c_function("fcgi/response.c", "boxer_run_outputs_to_json"))
    output = SCHEMAS["OutputFile"]
    assert set(output["properties"]) == set(output["required"]) == set(emitted)
    for key, expr in emitted.items():
        assert kind(expr) in schema_type(output["properties"][key]), (key, expr)


def test_health_is_what_the_handler_emits():
    emitted = set(json_keys(c_function("fcgi/run.c", "boxer_handle_health")))
    # warm_pool, only with a configured pool, holds objects of their own.
    pool = SCHEMAS["Health"]["properties"]["warm_pool"]["items"]
    assert set(pool["properties"]) == set(pool["required"]) == {"image", "network", "size",
                                                                 "ready"}
    assert set(SCHEMAS["Health"]["properties"]) | set(pool["properties"]) == emitted
    assert set(SCHEMAS["Health"]["required"]) == emitted - set(pool["properties"]) - {"warm_pool"}


def test_run_request_fields_are_the_parsers():
    table = re.search(r"run_fields\[\] = \{(.*?)\n\};", source("fcgi/request.c"), re.S).group(1)
    fields = set(re.findall(r'\{\s*"(\w+)",\s*\w+\s*\}', table))
    assert set(SCHEMAS["RunRequest"]["properties"]) == fields
    assert SCHEMAS["RunRequest"]["additionalProperties"] is False


def test_batch_fields_are_the_parsers():
    text = source("fcgi/request.c")
    table = re.search(r"batch_run_fields\[\] = \{(.*?)\n\};", text, re.S).group(1)
    # limits has a parser of its own (a run's two limits).
    fields = set(re.findall(r'\{\s*"(\w+)",\s*\w+\s*\}', table)) | {"limits"}
    assert set(SCHEMAS["BatchRun"]["properties"]) == fields
    limits = re.search(r"batch_run_limit_table\[\] = \{(.*?)\n\};", text, re.S).group(1)
    assert set(SCHEMAS["BatchRunLimits"]["properties"]) == set(re.findall(r'LIMIT \("(\w+)"', limits))
    top = c_function("fcgi/request.c", "parse_batch")
    assert set(SCHEMAS["BatchRequest"]["properties"]) == set(re.findall(r'strcmp \(key, "(\w+)"\)', top))
    for name in ("BatchRequest", "BatchRun", "BatchRunLimits", "BatchFileMount", "BatchResult",
                 "BatchRunResult"):
        assert SCHEMAS[name]["additionalProperties"] is False, name


def test_batch_run_result_is_a_run_result():
    run, batch = SCHEMAS["RunResult"], SCHEMAS["BatchRunResult"]
    assert set(batch["properties"]) == set(run["properties"]) | {"index", "error"}
    assert set(batch["required"]) == set(run["required"]) | {"index"}
    handler = source("fcgi/batch.c")
    for key in ("id", "index", "error"):
        assert f'"{key}"' in handler, key


def c_limits(text):
    return {k: float(v) for k, v in re.findall(r"\.(\w+) = ([0-9.]+)", text)}


def test_limit_bounds_are_the_config_defaults():
    config_c = source("common/config.c")
    floor = c_limits(re.search(r"boxer_limits_floor = \{(.*?)\};", config_c, re.S).group(1))
    defaults = c_limits(re.search(r"cfg->defaults = \(struct boxer_limits\) \{(.*?)\};",
                                  config_c, re.S).group(1))
    maxima = c_limits(re.search(r"cfg->max_limits = \(struct boxer_limits\) \{(.*?)\};",
                                config_c, re.S).group(1))
    props = SCHEMAS["Limits"]["properties"]
    assert set(props) == set(floor) == set(defaults) == set(maxima)
    for name, p in props.items():
        assert (p["minimum"], p["default"], p["maximum"]) == \
            (floor[name], defaults[name], maxima[name]), name
        assert p["type"] == ("number" if name == "cpu_cores" else "integer"), name


def test_nginx_serves_the_document_and_swagger():
    conf = source("contrib/nginx/boxer.conf.in")
    for location in ("location = /openapi.yaml", "location = /swagger ", "location = /swagger/ ",
                     "location ^~ /swagger/"):
        assert location in conf
    apache = source("contrib/apache/boxer.conf")
    assert "/openapi.yaml" in apache and "/swagger" in apache


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_are_used(name):
    text = DOCUMENT.read_text(encoding="utf-8")
    assert f"#/components/schemas/{name}'" in text, f"schema {name} is never referenced"


def test_document_is_one_plain_yaml_document():
    # safe_load: no tags that only some readers understand.
    text = DOCUMENT.read_text(encoding="utf-8")
    assert list(yaml.safe_load_all(text)) == [DOC.doc]
