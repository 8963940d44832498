"""Custom resources against their CRD's OpenAPI v3 schema: 422s naming the field, defaults,
pruning, strict field validation. Messages are kube-apiserver's."""

from __future__ import annotations

import pytest


def _post(http, namespace, spec, name="w", params=None):
    return http("POST", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets", params=params,
                json={"apiVersion": "kubesim.test/v1", "kind": "Widget",
                      "metadata": {"name": name}, "spec": spec})


def _error(rsp) -> str:
    assert rsp.status_code == 422, rsp.text
    body = rsp.json()
    assert body["reason"] == "Invalid" and body["code"] == 422
    assert body["details"]["kind"] == "Widget" and body["details"]["group"] == "kubesim.test"
    return body["message"]


@pytest.mark.parametrize(("spec", "message"), [
    ({"size": 0}, 'Widget.kubesim.test "w" is invalid: spec.size: Invalid value: 0: '
                  'spec.size in body should be greater than or equal to 1'),
    ({"size": 11}, 'Widget.kubesim.test "w" is invalid: spec.size: Invalid value: 11: '
                   'spec.size in body should be less than or equal to 10'),
    ({"size": "two"}, 'Widget.kubesim.test "w" is invalid: spec.size: Invalid value: "string": '
                      'spec.size in body must be of type integer: "string"'),
    ({"size": 1, "color": "green"}, 'Widget.kubesim.test "w" is invalid: spec.color: '
                                    'Unsupported value: "green": supported values: "red", "blue"'),
    ({"size": 1, "name": "ABC"}, 'Widget.kubesim.test "w" is invalid: spec.name: Invalid value: '
                                 '"ABC": spec.name in body should match \'^[a-z]+$\''),
    ({"size": 1, "name": "abcdefghij"}, 'Widget.kubesim.test "w" is invalid: spec.name: '
                                        'Too long: may not be more than 8 bytes'),
    ({"size": 1, "tags": ["a", "b", "c"]}, 'Widget.kubesim.test "w" is invalid: spec.tags: '
                                           'Too many: 3: must have at most 2 items'),
    ({}, 'Widget.kubesim.test "w" is invalid: spec.size: Required value'),
    ({"size": 1, "ratio": 0}, 'Widget.kubesim.test "w" is invalid: spec.ratio: Invalid value: 0: '
                              'spec.ratio in body should be greater than 0'),
    ({"size": 1, "port": True}, 'Widget.kubesim.test "w" is invalid: spec.port: Invalid value: '
                                '"boolean": spec.port in body must be of type integer,string: '
                                '"boolean"'),
])
def test_invalid_values_are_422_naming_the_field(http, namespace, widget_crd, spec, message):
    assert _error(_post(http, namespace, spec)) == message


def test_several_errors_are_listed_in_brackets(http, namespace, widget_crd):
    message = _error(_post(http, namespace, {"size": -1, "color": "pink"}))
    assert message.startswith('Widget.kubesim.test "w" is invalid: [')
    assert "spec.size: Invalid value: -1" in message and "spec.color: Unsupported value" in message


def test_causes_name_fields(http, namespace, widget_crd):
    rsp = _post(http, namespace, {"size": -1})
    causes = rsp.json()["details"]["causes"]
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.size",
                       "message": "Invalid value: -1: spec.size in body should be greater than "
                                  "or equal to 1"}]


def test_defaults_are_applied(http, namespace, widget_crd):
    rsp = _post(http, namespace, {"size": 2})
    assert rsp.status_code == 201
    assert rsp.json()["spec"] == {"size": 2, "color": "red"}


def test_unknown_fields_are_pruned_and_preserved_where_declared(http, namespace, widget_crd):
    rsp = _post(http, namespace, {"size": 2, "bogus": 1, "extra": {"anything": {"x": 1}}})
    assert rsp.status_code == 201
    spec = rsp.json()["spec"]
    assert "bogus" not in spec
    assert spec["extra"] == {"anything": {"x": 1}}
    top = http("GET", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/w").json()
    assert "bogus" not in top["spec"]


def test_strict_field_validation_rejects_unknown_fields(http, namespace, widget_crd):
    rsp = _post(http, namespace, {"size": 2, "bogus": 1}, params={"fieldValidation": "Strict"})
    assert rsp.status_code == 400
    assert rsp.json()["message"] == ('Widget in version "v1" cannot be handled as a Widget: '
                                     'strict decoding error: unknown field "spec.bogus"')


def test_unknown_fields_warn_by_default_and_with_warn(http, namespace, widget_crd):
    for name, params in (("a", None), ("b", {"fieldValidation": "Warn"})):
        rsp = _post(http, namespace, {"size": 2, "bogus": 1}, name=name, params=params)
        assert rsp.status_code == 201
        assert rsp.headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
    quiet = _post(http, namespace, {"size": 2, "bogus": 1}, name="c",
                  params={"fieldValidation": "Ignore"})
    assert quiet.status_code == 201 and "Warning" not in quiet.headers


def test_kubectl_prints_the_warning(kubectl, namespace, widget_crd):
    manifest = ("apiVersion: kubesim.test/v1\nkind: Widget\nmetadata: {name: k}\n"
                "spec: {size: 1, bogus: 1}\n")
    result = kubectl("create", "--validate=warn", "-n", namespace, "-f", "-", input=manifest)
    assert 'Warning: unknown field "spec.bogus"' in result.stderr


def test_nullable_and_int_or_string(http, namespace, widget_crd):
    assert _post(http, namespace, {"size": 1, "note": None, "port": "http"},
                 name="a").status_code == 201
    assert _post(http, namespace, {"size": 1, "port": 8080}, name="b").status_code == 201


def test_updates_are_validated_too(http, namespace, widget_crd):
    assert _post(http, namespace, {"size": 1}).status_code == 201
    rsp = http("PATCH", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/w",
               headers={"Content-Type": "application/merge-patch+json"},
               json={"spec": {"size": 50}})
    assert "spec.size in body should be less than or equal to 10" in _error(rsp)


def test_metadata_is_never_pruned_or_strictly_rejected(http, namespace, widget_crd):
    rsp = http("POST", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets",
               params={"fieldValidation": "Strict"},
               json={"apiVersion": "kubesim.test/v1", "kind": "Widget",
                     "metadata": {"name": "m", "labels": {"a": "b"},
                                  "annotations": {"c": "d"}},
                     "spec": {"size": 1}})
    assert rsp.status_code == 201, rsp.text
    assert rsp.json()["metadata"]["labels"] == {"a": "b"}
    assert rsp.json()["metadata"]["annotations"] == {"c": "d"}


def test_crd_schema_with_unknown_keyword_is_rejected_when_strict(http):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "typos.kubesim.test"},
           "spec": {"group": "kubesim.test", "scope": "Namespaced",
                    "names": {"plural": "typos", "kind": "Typo"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object", "properties": {"spec": {
                                          "type": "object", "properties": {"x": {
                                              "type": "string", "for display.": None}}}}}}}]}}
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    rsp = http("POST", path, params={"fieldValidation": "Strict"}, json=crd)
    assert rsp.status_code == 400
    assert rsp.json()["message"].startswith(
        'CustomResourceDefinition in version "v1" cannot be handled as a '
        'CustomResourceDefinition: strict decoding error: unknown field "spec.versions[0].schema.'
        'openAPIV3Schema.properties.spec.properties.x.for display."')
    assert http("POST", path, json=crd).status_code == 201
    stored = http("GET", f"{path}/typos.kubesim.test").json()
    x = stored["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["x"]
    assert x == {"type": "string"}
    http("DELETE", f"{path}/typos.kubesim.test")


def test_status_is_validated_on_status_writes(http, namespace, widget_crd):
    assert _post(http, namespace, {"size": 1}).status_code == 201
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/w/status"
    merge = {"Content-Type": "application/merge-patch+json"}
    ok = http("PATCH", path, headers=merge, json={"status": {"since": "2026-06-07T08:42:11Z"}})
    assert ok.status_code == 200
    rsp = http("PATCH", path, headers=merge, json={"status": {"since": "yesterday"}})
    assert _error(rsp) == ('Widget.kubesim.test "w" is invalid: status.since: Invalid value: '
                           '"yesterday": since in body must be of type date-time: '
                           '"yesterday"')
