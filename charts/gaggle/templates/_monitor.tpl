{{/* Which namespaces a monitor looks in: the watched ones, or all. */}}
{{- define "gaggle.monitorNamespaces" -}}
namespaceSelector:
{{- if .Values.watchNamespaces }}
  matchNames:
    {{- toYaml .Values.watchNamespaces | nindent 4 }}
{{- else }}
  any: true
{{- end }}
selector:
  matchLabels:
    gaggle.dev/role: manager
{{- end -}}

{{/* The labels the dashboard reads: namespace (added by the Prometheus Operator) and loadtest. */}}
{{- define "gaggle.monitorRelabelings" -}}
{{- $kind := . -}}
relabelings:
  - sourceLabels: [__meta_kubernetes_{{ $kind }}_label_gaggle_dev_loadtest]
    targetLabel: loadtest
  - sourceLabels: [__meta_kubernetes_{{ $kind }}_label_gaggle_dev_run]
    targetLabel: run
{{- end -}}
