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

{{/* The labels the dashboard reads: namespace (added by the Prometheus Operator), loadtest, and
run — from the pod, which a rerun's new pods carry (the Service keeps its first run's labels). */}}
{{- define "gaggle.monitorRelabelings" -}}
{{- $kind := . -}}
relabelings:
  - sourceLabels: [__meta_kubernetes_{{ $kind }}_label_gaggle_dev_loadtest]
    targetLabel: loadtest
  - sourceLabels: [__meta_kubernetes_pod_label_gaggle_dev_run]
    targetLabel: run
{{- end -}}

{{/* A monitor needs the Prometheus Operator's CRDs: say so, naming the value, rather than let the
API server answer "no matches for kind". */}}
{{- define "gaggle.requireMonitoring" -}}
{{- $key := index . 0 -}}{{- $kind := index . 1 -}}{{- $root := index . 2 -}}
{{- if not ($root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" $kind)) -}}
{{- fail (printf "%s.enabled: this cluster serves no monitoring.coreos.com/v1 %s (the Prometheus Operator's CRDs); install the Prometheus Operator first, or leave %s.enabled false" $key $kind $key) -}}
{{- end -}}
{{- end -}}
