#!/usr/bin/env python3
"""Vendors the real schemas the chart and Tekton tests are validated against (run once; the
output is committed). Sources, all fetched with `go mod download -json <module>@<version>`
(Go module proxy), so anyone can reproduce them:

  k8s.io/kubernetes@v1.34.4                      api/openapi-spec/v3/{api__v1,apis__apps__v1,apis__rbac.authorization.k8s.io__v1}_openapi.json
  sigs.k8s.io/gateway-api-inference-extension@v1.6.0  config/crd/bases/inference.networking.k8s.io_inferencepools.yaml
  sigs.k8s.io/gateway-api@v1.6.3                 config/crd/standard/gateway.networking.k8s.io_{httproutes,gateways,gatewayclasses}.yaml
  github.com/tektoncd/pipeline@v1.6.0            pkg/apis/pipeline/v1/swagger.json

Only the definitions reachable from the kinds we render are kept (transitive $ref closure), so
the vendored files stay small; nothing is edited by hand.

  python3 deploy/schemas/vendor.py <GOMODCACHE>
"""
import json
import re
import sys
from pathlib import Path

import yaml

M = Path(sys.argv[1])
OUT = Path(__file__).resolve().parent
K8S = M / 'k8s.io/kubernetes@v1.34.4/api/openapi-spec/v3'
ROOTS = [
    'io.k8s.api.apps.v1.Deployment', 'io.k8s.api.core.v1.Service', 'io.k8s.api.core.v1.ServiceAccount',
    'io.k8s.api.core.v1.ConfigMap', 'io.k8s.api.rbac.v1.Role', 'io.k8s.api.rbac.v1.RoleBinding',
]


def closure(defs, roots, prefix):
    keep, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name in keep or name not in defs:
            continue
        keep[name] = defs[name]
        for ref in re.findall(r'"\$ref": "' + re.escape(prefix) + r'([^"]+)"', json.dumps(defs[name])):
            todo.append(ref)
    return keep


schemas = {}
for f in ['api__v1_openapi.json', 'apis__apps__v1_openapi.json', 'apis__rbac.authorization.k8s.io__v1_openapi.json']:
    schemas.update(json.loads((K8S / f).read_text())['components']['schemas'])
k8s = closure(schemas, ROOTS, '#/components/schemas/')
(OUT / 'kubernetes-v1.34.4.json').write_text(json.dumps({
    'source': 'k8s.io/kubernetes@v1.34.4 api/openapi-spec/v3 (core, apps, rbac), $ref closure of ' + ', '.join(ROOTS),
    'components': {'schemas': k8s},
}, indent=1, sort_keys=True) + '\n')


def crd(path, version, out, source):
    doc = yaml.safe_load(Path(path).read_text())
    v = next(x for x in doc['spec']['versions'] if x['name'] == version)
    (OUT / out).write_text(json.dumps({
        'source': source, 'group': doc['spec']['group'], 'kind': doc['spec']['names']['kind'], 'version': version,
        'schema': v['schema']['openAPIV3Schema'],
    }, indent=1, sort_keys=True) + '\n')


crd(M / 'sigs.k8s.io/gateway-api-inference-extension@v1.6.0/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml', 'v1',
    'inferencepool-v1.json', 'sigs.k8s.io/gateway-api-inference-extension@v1.6.0 config/crd/bases/inference.networking.k8s.io_inferencepools.yaml')
for kind in ['httproutes', 'gateways', 'gatewayclasses']:
    crd(M / f'sigs.k8s.io/gateway-api@v1.6.3/config/crd/standard/gateway.networking.k8s.io_{kind}.yaml', 'v1',
        f'gateway-api-{kind}-v1.json', f'sigs.k8s.io/gateway-api@v1.6.3 config/crd/standard/gateway.networking.k8s.io_{kind}.yaml')

tk = json.loads((M / 'github.com/tektoncd/pipeline@v1.6.0/pkg/apis/pipeline/v1/swagger.json').read_text())['definitions']
keep = closure(tk, ['v1.Task', 'v1.Pipeline', 'v1.PipelineRun'], '#/definitions/')
(OUT / 'tekton-pipeline-v1.json').write_text(json.dumps({
    'source': 'github.com/tektoncd/pipeline@v1.6.0 pkg/apis/pipeline/v1/swagger.json, $ref closure of v1.Task, v1.Pipeline, v1.PipelineRun '
              '(Kubernetes types it names but does not define, e.g. v1.ObjectMeta and v1.EnvVar, are not checked)',
    'definitions': keep,
}, indent=1, sort_keys=True) + '\n')
