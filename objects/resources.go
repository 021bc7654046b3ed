package objects

import (
	"fmt"
	"sort"
	"strings"
)

// Resource is a kind of object the apiserver stores in etcd.
type Resource struct {
	// Name is the plural resource name (pods); Group its API group, "" for the core group.
	Name  string `json:"resource"`
	Group string `json:"group,omitempty"`
	// Kind is the object kind (Pod); empty for a custom resource known only by its key.
	Kind string `json:"kind,omitempty"`
	// ShortNames are kubectl's short forms (po, deploy).
	ShortNames []string `json:"-"`
	// Namespaced is whether objects live in a namespace.
	Namespaced bool `json:"namespaced"`
	// Prefix is where the objects live under /registry/: the resource name
	// for most built-in types, a few irregular ones (services/specs, minions),
	// <group>/<resource> for custom resources.
	Prefix string `json:"-"`
	// Known is false for a resource not in the built-in table (a custom or
	// aggregated resource read from a key or typed as plural.group).
	Known bool `json:"-"`
}

// GroupResource is the name kubectl prints: pods, deployments.apps.
func (r *Resource) GroupResource() string {
	if r.Group == "" {
		return r.Name
	}
	return r.Name + "." + r.Group
}

// KeyPrefix is the etcd key prefix of all the resource's objects, with a trailing slash.
func (r *Resource) KeyPrefix() string { return registry + r.Prefix + "/" }

// NamespacePrefix is the key prefix of the resource's objects in namespace ns
// (all of them for a cluster-scoped resource or ns "").
func (r *Resource) NamespacePrefix(ns string) string {
	if !r.Namespaced || ns == "" {
		return r.KeyPrefix()
	}
	return r.KeyPrefix() + ns + "/"
}

const registry = "/registry/"

// builtin is the table of the resources kube-apiserver v1.34 stores, with
// their etcd prefixes (the irregular ones as the apiserver's storage sets
// them: services/specs, services/endpoints, minions, controllers, ingress;
// the aggregator's and apiextensions' resources under their group).
var builtin = []Resource{
	// core
	{Name: "pods", Kind: "Pod", ShortNames: []string{"po"}, Namespaced: true},
	{Name: "services", Kind: "Service", ShortNames: []string{"svc"}, Namespaced: true, Prefix: "services/specs"},
	{Name: "endpoints", Kind: "Endpoints", ShortNames: []string{"ep"}, Namespaced: true, Prefix: "services/endpoints"},
	{Name: "nodes", Kind: "Node", ShortNames: []string{"no"}, Prefix: "minions"},
	{Name: "namespaces", Kind: "Namespace", ShortNames: []string{"ns"}},
	{Name: "configmaps", Kind: "ConfigMap", ShortNames: []string{"cm"}, Namespaced: true},
	{Name: "secrets", Kind: "Secret", Namespaced: true},
	{Name: "serviceaccounts", Kind: "ServiceAccount", ShortNames: []string{"sa"}, Namespaced: true},
	{Name: "persistentvolumes", Kind: "PersistentVolume", ShortNames: []string{"pv"}},
	{Name: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", ShortNames: []string{"pvc"}, Namespaced: true},
	{Name: "replicationcontrollers", Kind: "ReplicationController", ShortNames: []string{"rc"}, Namespaced: true, Prefix: "controllers"},
	{Name: "events", Kind: "Event", ShortNames: []string{"ev"}, Namespaced: true},
	{Name: "limitranges", Kind: "LimitRange", ShortNames: []string{"limits"}, Namespaced: true},
	{Name: "resourcequotas", Kind: "ResourceQuota", ShortNames: []string{"quota"}, Namespaced: true},
	{Name: "podtemplates", Kind: "PodTemplate", Namespaced: true},
	// apps, batch, autoscaling, policy
	{Name: "deployments", Group: "apps", Kind: "Deployment", ShortNames: []string{"deploy"}, Namespaced: true},
	{Name: "replicasets", Group: "apps", Kind: "ReplicaSet", ShortNames: []string{"rs"}, Namespaced: true},
	{Name: "statefulsets", Group: "apps", Kind: "StatefulSet", ShortNames: []string{"sts"}, Namespaced: true},
	{Name: "daemonsets", Group: "apps", Kind: "DaemonSet", ShortNames: []string{"ds"}, Namespaced: true},
	{Name: "controllerrevisions", Group: "apps", Kind: "ControllerRevision", Namespaced: true},
	{Name: "jobs", Group: "batch", Kind: "Job", Namespaced: true},
	{Name: "cronjobs", Group: "batch", Kind: "CronJob", ShortNames: []string{"cj"}, Namespaced: true},
	{Name: "horizontalpodautoscalers", Group: "autoscaling", Kind: "HorizontalPodAutoscaler", ShortNames: []string{"hpa"}, Namespaced: true},
	{Name: "poddisruptionbudgets", Group: "policy", Kind: "PodDisruptionBudget", ShortNames: []string{"pdb"}, Namespaced: true},
	// networking, discovery
	{Name: "ingresses", Group: "networking.k8s.io", Kind: "Ingress", ShortNames: []string{"ing"}, Namespaced: true, Prefix: "ingress"},
	{Name: "ingressclasses", Group: "networking.k8s.io", Kind: "IngressClass"},
	{Name: "networkpolicies", Group: "networking.k8s.io", Kind: "NetworkPolicy", ShortNames: []string{"netpol"}, Namespaced: true},
	{Name: "ipaddresses", Group: "networking.k8s.io", Kind: "IPAddress", ShortNames: []string{"ip"}},
	{Name: "servicecidrs", Group: "networking.k8s.io", Kind: "ServiceCIDR"},
	{Name: "endpointslices", Group: "discovery.k8s.io", Kind: "EndpointSlice", Namespaced: true},
	// coordination
	{Name: "leases", Group: "coordination.k8s.io", Kind: "Lease", Namespaced: true},
	{Name: "leasecandidates", Group: "coordination.k8s.io", Kind: "LeaseCandidate", Namespaced: true},
	// rbac
	{Name: "roles", Group: "rbac.authorization.k8s.io", Kind: "Role", Namespaced: true},
	{Name: "rolebindings", Group: "rbac.authorization.k8s.io", Kind: "RoleBinding", Namespaced: true},
	{Name: "clusterroles", Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
	{Name: "clusterrolebindings", Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	// storage
	{Name: "storageclasses", Group: "storage.k8s.io", Kind: "StorageClass", ShortNames: []string{"sc"}},
	{Name: "csidrivers", Group: "storage.k8s.io", Kind: "CSIDriver"},
	{Name: "csinodes", Group: "storage.k8s.io", Kind: "CSINode"},
	{Name: "csistoragecapacities", Group: "storage.k8s.io", Kind: "CSIStorageCapacity", Namespaced: true},
	{Name: "volumeattachments", Group: "storage.k8s.io", Kind: "VolumeAttachment"},
	{Name: "volumeattributesclasses", Group: "storage.k8s.io", Kind: "VolumeAttributesClass", ShortNames: []string{"vac"}},
	// admission
	{Name: "mutatingwebhookconfigurations", Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
	{Name: "validatingwebhookconfigurations", Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"},
	{Name: "validatingadmissionpolicies", Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"},
	{Name: "validatingadmissionpolicybindings", Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"},
	{Name: "mutatingadmissionpolicies", Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"},
	{Name: "mutatingadmissionpolicybindings", Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"},
	// certificates, scheduling, node, flow control
	{Name: "certificatesigningrequests", Group: "certificates.k8s.io", Kind: "CertificateSigningRequest", ShortNames: []string{"csr"}},
	{Name: "clustertrustbundles", Group: "certificates.k8s.io", Kind: "ClusterTrustBundle"},
	{Name: "podcertificaterequests", Group: "certificates.k8s.io", Kind: "PodCertificateRequest", Namespaced: true},
	{Name: "priorityclasses", Group: "scheduling.k8s.io", Kind: "PriorityClass", ShortNames: []string{"pc"}},
	{Name: "runtimeclasses", Group: "node.k8s.io", Kind: "RuntimeClass"},
	{Name: "flowschemas", Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"},
	{Name: "prioritylevelconfigurations", Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"},
	// dynamic resource allocation
	{Name: "deviceclasses", Group: "resource.k8s.io", Kind: "DeviceClass"},
	{Name: "resourceclaims", Group: "resource.k8s.io", Kind: "ResourceClaim", Namespaced: true},
	{Name: "resourceclaimtemplates", Group: "resource.k8s.io", Kind: "ResourceClaimTemplate", Namespaced: true},
	{Name: "resourceslices", Group: "resource.k8s.io", Kind: "ResourceSlice"},
	{Name: "devicetaintrules", Group: "resource.k8s.io", Kind: "DeviceTaintRule"},
	// the apiserver's own bookkeeping
	{Name: "storageversions", Group: "internal.apiserver.k8s.io", Kind: "StorageVersion"},
	{Name: "storageversionmigrations", Group: "storagemigration.k8s.io", Kind: "StorageVersionMigration"},
	// apiextensions and the aggregator keep their group in the key
	{Name: "customresourcedefinitions", Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", ShortNames: []string{"crd", "crds"},
		Prefix: "apiextensions.k8s.io/customresourcedefinitions"},
	{Name: "apiservices", Group: "apiregistration.k8s.io", Kind: "APIService", Prefix: "apiregistration.k8s.io/apiservices"},
}

var (
	byAlias  = map[string]*Resource{} // every lower-case name an operator may type
	byPrefix = map[string]*Resource{} // Prefix -> resource
)

func init() {
	for i := range builtin {
		r := &builtin[i]
		r.Known = true
		if r.Prefix == "" {
			r.Prefix = r.Name
		}
		byPrefix[r.Prefix] = r
		names := append([]string{r.Name, strings.ToLower(r.Kind)}, r.ShortNames...)
		for _, n := range names {
			byAlias[n] = r
			if r.Group != "" {
				byAlias[n+"."+r.Group] = r
			}
		}
	}
}

// Resources is the built-in table, sorted by group resource.
func Resources() []Resource {
	out := append([]Resource(nil), builtin...)
	sort.Slice(out, func(i, j int) bool { return out[i].GroupResource() < out[j].GroupResource() })
	return out
}

// Lookup finds a resource by what an operator types: its plural (pods),
// singular (pod), kind (Pod), short name (po), any of those followed by its
// group (deployments.apps). A name with a dot that is not built in is taken
// as a custom resource, plural.group (widgets.example.com), whose scope the
// caller learns from the object reference. Any other unknown name is an
// error that lists the closest known names.
func Lookup(name string) (*Resource, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return nil, fmt.Errorf("no resource named (write one like pod, deployment, namespace or widgets.example.com)")
	}
	if r, ok := byAlias[n]; ok {
		return r, nil
	}
	if plural, group, ok := strings.Cut(n, "."); ok && plural != "" && group != "" && !strings.ContainsAny(n, "/ ") {
		return &Resource{Name: plural, Group: group, Prefix: group + "/" + plural}, nil
	}
	msg := fmt.Sprintf("unknown resource %q", name)
	if near := closest(n, aliases(), 3); len(near) > 0 {
		msg += " (did you mean " + strings.Join(near, ", ") + "?)"
	}
	return nil, fmt.Errorf("%s; a custom resource is written plural.group, like widgets.example.com", msg)
}

func aliases() []string {
	out := make([]string, 0, len(byAlias))
	for a := range byAlias {
		if !strings.Contains(a, ".") {
			out = append(out, a)
		}
	}
	return out
}
