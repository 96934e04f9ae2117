{{- define "kvroute.name" -}}{{ .Release.Name }}-kvroute{{- end -}}
{{- define "kvroute.labels" -}}
app.kubernetes.io/name: kvroute
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "kvroute.selectorLabels" -}}
app.kubernetes.io/name: kvroute
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "kvroute.podSelector" -}}
{{- $parts := list -}}
{{- range $k, $v := .Values.pool.selector -}}{{- $parts = append $parts (printf "%s=%s" $k $v) -}}{{- end -}}
{{- join "," $parts -}}
{{- end -}}
{{- define "kvroute.targetPorts" -}}
{{- $parts := list -}}
{{- range .Values.pool.targetPorts -}}{{- $parts = append $parts (toString .) -}}{{- end -}}
{{- join "," $parts -}}
{{- end -}}
{{/* The kvroute command line; the chart test runs exactly these arguments. */}}
{{- define "kvroute.args" -}}
- serve
- --host=0.0.0.0
- --admin-port=9090
- --log-level={{ .Values.logLevel }}
{{- if eq .Values.mode "epp" }}
- --ext-proc
- --ext-proc-port=9002
- --grpc-health-port=9003
{{- else }}
- --port=8000
{{- end }}
- --discovery=k8s
{{- if and (eq .Values.mode "epp") }}
- --pool-name={{ .Values.pool.name }}
{{- else }}
- --endpoint-selector={{ include "kvroute.podSelector" . }}
- --endpoint-target-ports={{ include "kvroute.targetPorts" . }}
{{- end }}
- --pool-namespace={{ .Release.Namespace }}
{{- if .Values.config }}
- --config=/etc/kvroute/config.yaml
{{- else }}
- --preset={{ .Values.preset }}
{{- end }}
{{- if .Values.precise.enabled }}
{{- if not .Values.precise.tokenizer }}
{{- fail "precise.enabled needs precise.tokenizer: a folder with the model's tokenizer.json mounted in the pod, or http://<a vLLM pod or Service>:8000 (its /tokenize)" }}
{{- end }}
- --block-size={{ .Values.precise.blockSize }}
- --kv-events=connect
- --kv-events-pod-port={{ .Values.precise.kvEventsPodPort }}
- --tokenizer={{ .Values.precise.tokenizer }}
{{- end }}
{{- if .Values.redis.enabled }}
- --redis={{ include "kvroute.name" . }}-redis:6379
{{- end }}
{{- end -}}
