package steps

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/kubeapi"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/transport"
)

// Expectation is one object the operator expects back after the restore
// (--expect KIND/NAMESPACE/NAME; a cluster-scoped kind takes KIND//NAME or
// KIND/NAME).
type Expectation struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Key is where the apiserver keeps the object in etcd.
	Key string `json:"key"`
	// Path is the API path that reads it back.
	Path string `json:"path"`
}

func (e Expectation) String() string {
	if e.Namespace == "" {
		return e.Kind + "/" + e.Name
	}
	return e.Kind + "/" + e.Namespace + "/" + e.Name
}

// kindInfo is how the apiserver stores and serves one kind.
type kindInfo struct {
	resource string // the resource's plural, in the API path
	etcd     string // the etcd key segment after /registry/ (services/specs for services)
	group    string // "" for the core group, else "apps/v1" and the like
	cluster  bool   // cluster-scoped
}

var kinds = map[string]kindInfo{
	"pod":            {resource: "pods", etcd: "pods"},
	"configmap":      {resource: "configmaps", etcd: "configmaps"},
	"secret":         {resource: "secrets", etcd: "secrets"},
	"service":        {resource: "services", etcd: "services/specs"},
	"serviceaccount": {resource: "serviceaccounts", etcd: "serviceaccounts"},
	"pvc":            {resource: "persistentvolumeclaims", etcd: "persistentvolumeclaims"},
	"namespace":      {resource: "namespaces", etcd: "namespaces", cluster: true},
	"node":           {resource: "nodes", etcd: "minions", cluster: true},
	"pv":             {resource: "persistentvolumes", etcd: "persistentvolumes", cluster: true},
	"deployment":     {resource: "deployments", etcd: "deployments", group: "apps/v1"},
	"statefulset":    {resource: "statefulsets", etcd: "statefulsets", group: "apps/v1"},
	"daemonset":      {resource: "daemonsets", etcd: "daemonsets", group: "apps/v1"},
	"replicaset":     {resource: "replicasets", etcd: "replicasets", group: "apps/v1"},
}

// kindAliases maps the names kubectl accepts (plural, short) to a kind.
var kindAliases = map[string]string{
	"pods": "pod", "po": "pod", "configmaps": "configmap", "cm": "configmap", "secrets": "secret",
	"services": "service", "svc": "service", "serviceaccounts": "serviceaccount", "sa": "serviceaccount",
	"persistentvolumeclaim": "pvc", "persistentvolumeclaims": "pvc",
	"namespaces": "namespace", "ns": "namespace", "nodes": "node", "no": "node",
	"persistentvolume": "pv", "persistentvolumes": "pv",
	"deployments": "deployment", "deploy": "deployment", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonsets": "daemonset", "ds": "daemonset", "replicasets": "replicaset", "rs": "replicaset",
}

// ParseExpectation reads one --expect value.
func ParseExpectation(s string) (Expectation, error) {
	parts := strings.Split(s, "/")
	kind := strings.ToLower(parts[0])
	if a, ok := kindAliases[kind]; ok {
		kind = a
	}
	ki, ok := kinds[kind]
	if !ok {
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		return Expectation{}, fmt.Errorf("--expect %q: unknown kind %q; known: %s", s, parts[0], strings.Join(names, ", "))
	}
	e := Expectation{Kind: kind}
	switch {
	case ki.cluster && len(parts) == 2:
		e.Name = parts[1]
	case ki.cluster && len(parts) == 3 && parts[1] == "":
		e.Name = parts[2]
	case ki.cluster:
		return Expectation{}, fmt.Errorf("--expect %q: %s is cluster-scoped: give %s/NAME", s, kind, kind)
	case len(parts) == 3:
		e.Namespace, e.Name = parts[1], parts[2]
	default:
		return Expectation{}, fmt.Errorf("--expect %q: give KIND/NAMESPACE/NAME, e.g. pod/default/net-test3", s)
	}
	for _, p := range []string{e.Namespace, e.Name} {
		if p != "" && !validName(p) {
			return Expectation{}, fmt.Errorf("--expect %q: %q is not a Kubernetes name (lower-case letters, digits, '-' and '.')", s, p)
		}
	}
	if !ki.cluster && e.Namespace == "" || e.Name == "" {
		return Expectation{}, fmt.Errorf("--expect %q: namespace and name must not be empty", s)
	}
	prefix := "/api/v1"
	if ki.group != "" {
		prefix = "/apis/" + ki.group
	}
	if ki.cluster {
		e.Key = "/registry/" + ki.etcd + "/" + e.Name
		e.Path = prefix + "/" + ki.resource + "/" + e.Name
	} else {
		e.Key = "/registry/" + ki.etcd + "/" + e.Namespace + "/" + e.Name
		e.Path = prefix + "/namespaces/" + e.Namespace + "/" + ki.resource + "/" + e.Name
	}
	return e, nil
}

// validName: DNS-1123 subdomain characters, so a name never changes a key or
// an API path (no '/', '..', '?').
func validName(s string) bool {
	if len(s) > 253 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// ParseExpectations reads every --expect value.
func ParseExpectations(values []string) ([]Expectation, error) {
	var out []Expectation
	for _, v := range values {
		e, err := ParseExpectation(v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// SnapshotHolds says, per expectation, whether the snapshot file holds the
// object live at its revision (found) and at which revision it was last
// written. One read of the file for all of them.
func SnapshotHolds(path string, exp []Expectation) (map[string]snapshot.Match, error) {
	want := map[string]bool{}
	for _, e := range exp {
		want[e.Key] = true
	}
	// The common prefix of the keys: Find matches a substring, the exact key
	// is picked out below.
	pattern := "/registry/"
	if len(exp) == 1 {
		pattern = exp[0].Key
	}
	ms, err := snapshot.Find(path, pattern)
	if err != nil {
		return nil, err
	}
	out := map[string]snapshot.Match{}
	for _, m := range ms {
		if want[m.Key] {
			out[m.Key] = m
		}
	}
	return out, nil
}

// KubeExpect reads back, through the Kubernetes API, every object named with
// --expect once the apiservers are ready. At plan time it says whether the
// snapshot holds each (a missing one is a plan warning, not a refusal).
type KubeExpect struct{ r *Restore }

const opKubeExpect = "kube-expect"

func (k *KubeExpect) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{ReadOnly: true}
	var err error
	if len(hosts) > 0 {
		k.r.Masters = kubeapi.APIServers(hosts)
	}
	if len(k.r.Expect) == 0 {
		sp.Notes = append(sp.Notes, "nothing to read back: no --expect given")
		return sp, nil
	}
	var holds map[string]snapshot.Match
	if k.r.Snapshot.Member != "" {
		sp.Notes = append(sp.Notes, "the snapshot is copied from "+k.r.Snapshot.Member+" during the run: whether it holds each object is not known in the plan; each is read back through the API")
	} else if holds, err = SnapshotHolds(k.r.Snapshot.Path, k.r.Expect); err != nil {
		return nil, fmt.Errorf("reading the snapshot for --expect: %w", err)
	}
	for _, e := range k.r.Expect {
		if k.r.Snapshot.Member != "" {
			break // nothing to read offline yet
		}
		if m, ok := holds[e.Key]; ok {
			sp.Notes = append(sp.Notes, fmt.Sprintf("the snapshot holds %s (%s, written at revision %d)", e, e.Key, m.ModRevision))
			continue
		}
		w := fmt.Sprintf("the snapshot does not hold %s (no live key %s): after the restore it will be missing and this step will fail; pick another snapshot with `ezrestore snapshot find %s`", e, e.Key, e.Name)
		sp.Notes = append(sp.Notes, "WARNING: "+w)
		k.r.Warnings = append(k.r.Warnings, w)
	}
	if why := k.r.APISkipped(); why != "" {
		sp.Notes = append(sp.Notes, "read-back through the API skipped: "+why)
		return sp, nil
	}
	if len(k.r.Masters) == 0 {
		return nil, fmt.Errorf("--expect needs a kube_master host to ask; the inventory has none (or pass --no-api-check)")
	}
	t := &orchestrator.Task{}
	for _, e := range k.r.Expect {
		t.Ops = append(t.Ops, &orchestrator.Op{Kind: opKubeExpect,
			Desc:    fmt.Sprintf("GET %s through the first ready master's apiserver; 404 fails the run", e.Path),
			Payload: expectPayload{Expect: e.String(), Path: e.Path}})
	}
	sp.Tasks = []*orchestrator.Task{t}
	return sp, nil
}

// expectPayload is one object a read-back op asks for: Expect as the
// operator wrote it, Path its API path.
type expectPayload struct {
	Expect string `json:"expect"`
	Path   string `json:"path"`
}

func (k *KubeExpect) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	t0 := time.Now()
	pl, err := orchestrator.PayloadOf[expectPayload](op)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	c, err := k.r.Kube.Client()
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	var tried []string
	for _, m := range k.r.Masters {
		url := m.URL + pl.Path
		code, body, err := kubeapi.Get(ctx, c, url)
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s: %v", m.Host, err))
			continue
		case code == http.StatusOK:
			return orchestrator.OpResult{Duration: time.Since(t0), Message: fmt.Sprintf("%s is back (read from %s)", pl.Expect, m.Host)}, nil
		case code == http.StatusNotFound:
			return orchestrator.OpResult{Duration: time.Since(t0), Stdout: string(body)},
				fmt.Errorf("%s is missing after the restore: GET %s answered 404 Not Found; the snapshot restored does not hold it (check with `ezrestore snapshot find`)", pl.Expect, url)
		default:
			tried = append(tried, fmt.Sprintf("%s: HTTP %d: %s", m.Host, code, firstLine(body)))
		}
	}
	return orchestrator.OpResult{Duration: time.Since(t0)},
		fmt.Errorf("%s could not be read back through any apiserver:\n  %s", pl.Expect, strings.Join(tried, "\n  "))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
