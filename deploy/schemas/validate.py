#!/usr/bin/env python3
"""Validates Kubernetes manifests (multi-document YAML files, or stdin) offline against the
schemas vendored beside this file (see vendor.py for their sources and versions), with the
Python `jsonschema` library. Strict like `kubeconform -strict`: a field a schema does not
declare is an error (objects that declare properties get additionalProperties: false, except
where the schema preserves unknown fields). Kubernetes' own conventions are applied to the
OpenAPI schemas: `x-kubernetes-int-or-string` accepts an integer or a string, a
resource.Quantity a number or a string.

  python3 deploy/schemas/validate.py [--unvalidated Kind,Kind] file.yaml ...

Prints one line per object; exits 1 when any object is invalid or has no schema (unless its
kind is listed in --unvalidated, which is then printed as such).
"""
import copy
import json
import sys
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent


def strict(node):
    """Applies the conventions above to a schema, walking schema positions only."""
    if isinstance(node, list):
        for v in node:
            strict(v)
        return node
    if not isinstance(node, dict):
        return node
    if node.get('x-kubernetes-int-or-string'):
        node.pop('type', None)
        node['anyOf'] = [{'type': 'integer'}, {'type': 'string'}]
    if isinstance(node.get('properties'), dict) and 'additionalProperties' not in node and not node.get('x-kubernetes-preserve-unknown-fields'):
        node['additionalProperties'] = False
    for v in (node.get('properties') or {}).values():
        strict(v)
    for k in ('items', 'additionalProperties', 'not'):
        if isinstance(node.get(k), dict):
            strict(node[k])
    for k in ('allOf', 'anyOf', 'oneOf'):
        if isinstance(node.get(k), list):
            strict(node[k])
    return node


def load_schemas():
    out = {}
    k8s = json.loads((HERE / 'kubernetes-v1.34.4.json').read_text())['components']['schemas']
    quantity = 'io.k8s.apimachinery.pkg.api.resource.Quantity'
    if quantity in k8s:
        k8s[quantity] = {'anyOf': [{'type': 'string'}, {'type': 'number'}]}
    root = {'components': {'schemas': {k: strict(copy.deepcopy(v)) for k, v in k8s.items()}}}
    groups = {'v1': 'core.v1', 'apps/v1': 'apps.v1', 'rbac.authorization.k8s.io/v1': 'rbac.v1'}
    for name in k8s:
        parts = name.split('.')
        if name.startswith('io.k8s.api.'):
            group = '.'.join(parts[3:-1])
            for api, g in groups.items():
                if g == group:
                    out[(api, parts[-1])] = {**root, '$ref': f'#/components/schemas/{name}'}
    for f in HERE.glob('*-v1.json'):
        doc = json.loads(f.read_text())
        if 'schema' in doc:
            out[(f"{doc['group']}/{doc['version']}", doc['kind'])] = strict(doc['schema'])
    tk = json.loads((HERE / 'tekton-pipeline-v1.json').read_text())['definitions']
    tdefs = {k: strict(copy.deepcopy(v)) for k, v in tk.items()}
    # Tekton's swagger names Kubernetes types (v1.ObjectMeta, v1.EnvVar, ...) without defining
    # them: point those at the Kubernetes schemas; any it still cannot find is left unchecked.
    # ParamValue is marshalled as a string, an array or an object (Tekton docs), not the Go
    # struct the swagger shows.
    refs = set()
    def collect(n):
        if isinstance(n, dict):
            r = n.get('$ref')
            if isinstance(r, str) and r.startswith('#/definitions/'):
                refs.add(r[len('#/definitions/'):])
            for v in n.values():
                collect(v)
        elif isinstance(n, list):
            for v in n:
                collect(v)
    collect(tdefs)
    for name in refs - set(tdefs):
        short = name.split('.')[-1]
        for full in (f'io.k8s.api.core.v1.{short}', f'io.k8s.apimachinery.pkg.apis.meta.v1.{short}'):
            if name.startswith('v1.') and full in k8s:
                tdefs[name] = {'$ref': f'#/components/schemas/{full}'}
                break
        else:
            tdefs[name] = {}
    tdefs['v1.ParamValue'] = {'anyOf': [{'type': 'string'}, {'type': 'array', 'items': {'type': 'string'}}, {'type': 'object', 'additionalProperties': {'type': 'string'}}]}
    troot = {'definitions': tdefs, 'components': root['components']}
    for kind in ['Task', 'Pipeline', 'PipelineRun']:
        out[('tekton.dev/v1', kind)] = {**troot, '$ref': f'#/definitions/v1.{kind}'}
    return out


def main(argv):
    unvalidated = set()
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == '--unvalidated':
            unvalidated = set(argv[i + 1].split(','))
            i += 2
        else:
            files.append(argv[i])
            i += 1
    schemas = load_schemas()
    texts = [(f, Path(f).read_text()) for f in files] if files else [('<stdin>', sys.stdin.read())]
    bad = 0
    n = 0
    for name, text in texts:
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            n += 1
            key = (doc.get('apiVersion'), doc.get('kind'))
            ident = f"{key[0]} {key[1]} {doc.get('metadata', {}).get('name', doc.get('metadata', {}).get('generateName', '?'))} ({name})"
            schema = schemas.get(key)
            if schema is None:
                if key[1] in unvalidated:
                    print(f'UNVALIDATED {ident}: no vendored schema for this kind')
                    continue
                print(f'INVALID {ident}: no schema for {key[0]} {key[1]}')
                bad += 1
                continue
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
            if errors:
                bad += 1
                for e in errors[:5]:
                    print(f"INVALID {ident}: {'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}")
            else:
                print(f'VALID {ident}')
    print(f'{n} objects, {bad} invalid')
    return 1 if bad or n == 0 else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
