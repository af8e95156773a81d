{{/* The release's base name: the release name when it says gaggle, else <release>-gaggle. */}}
{{- define "gaggle.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The operator's objects: "gaggle-operator" for a release named gaggle, as in deploy/. */}}
{{- define "gaggle.operator" -}}
{{- printf "%s-operator" (include "gaggle.fullname" .) -}}
{{- end -}}

{{- define "gaggle.serviceAccount" -}}
{{- .Values.serviceAccount.name | default (include "gaggle.operator" .) -}}
{{- end -}}

{{- define "gaggle.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "gaggle.labels" -}}
{{ include "gaggle.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gaggle.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
RBAC, the same rules as deploy/operator.yaml (a test compares them). Cluster-scoped: what kopf
watches outside any namespace. Namespaced: what the operator does to a LoadTest and its children;
patch on loadtests/status and configmaps is also what the manager's Role grants, which RBAC lets
the operator grant only because it holds it; update on
loadtests/finalizers lets its children's ownerReferences block the owner's deletion
(OwnerReferencesPermissionEnforcement, on in OpenShift, refuses them otherwise); get on a child's
kind tells whose an existing one of a taken name is — not on Secrets, which it never reads.
*/}}
{{- define "gaggle.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}

{{- define "gaggle.namespacedRules" -}}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [gaggle.dev]
  resources: [loadtests]
  verbs: [list, watch, patch]
- apiGroups: [gaggle.dev]
  resources: [loadtests/status]
  verbs: [patch]
- apiGroups: [gaggle.dev]
  resources: [loadtests/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, create, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, delete, patch]
- apiGroups: [""]
  resources: [services, serviceaccounts]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, delete]
{{- end -}}


{{/* What namespace users get through the aggregated roles (the same in deploy/operator.yaml). */}}
{{- define "gaggle.editRules" -}}
- apiGroups: [gaggle.dev]
  resources: [loadtests]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [gaggle.dev]
  resources: [loadtests/status]
  verbs: [get, list, watch]
{{- end -}}

{{- define "gaggle.viewRules" -}}
- apiGroups: [gaggle.dev]
  resources: [loadtests, loadtests/status]
  verbs: [get, list, watch]
{{- end -}}
