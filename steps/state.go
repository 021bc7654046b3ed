// Package steps holds the actions of restore, rollback and prune, one file
// each: how a step plans (the exact commands per host, as data) and, for the
// few that are not plain commands, how it runs. What they know of etcd on a
// host (units, tools, status, space, staging paths) comes from package
// etcdhost.
//
// Each command lists its actions in one place (Actions, RollbackActions,
// PruneActions), bound to its own typed state (Restore, Rollback, Prune). An
// action several commands use (confirm, etcd-health) asks that state for what
// it needs through a small interface (Confirmable, HealthChecked). Steps must
// not import restore, backup or cmd.
package steps

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/internal/probecache"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/kubeapi"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// Actions is every action the restore playbooks may use, by the name a
// playbook gives in `action:`, each bound to the run's shared state.
func Actions(r *Restore) orchestrator.Registry {
	return orchestrator.Registry{
		"preflight":     &Preflight{r},
		"confirm":       &Confirm{r},
		"systemd":       Systemd{},
		"static-pods":   &StaticPods{func() string { return r.Token }},
		"etcd-stop":     &EtcdStop{r},
		"push-snapshot": &PushSnapshot{r},
		"etcd-restore":  &EtcdRestore{r},
		"etcd-swap":     &EtcdSwap{r},
		"etcd-health":   &EtcdHealth{r},
		"etcd-space":    &EtcdSpace{r},
		"etcd-cleanup":  &EtcdCleanup{r},
		"kube-ready":    &KubeReady{r},
		"kube-expect":   &KubeExpect{r},
		"member-copy":   &MemberCopy{r},
	}
}

// SnapshotReady returns once Snapshot is set (at once when it was set before
// planning began), or with the error that the snapshot's check found. Safe
// to call from many goroutines.
func (r *Restore) SnapshotReady() error {
	if r.SnapshotPending == nil {
		return nil
	}
	return r.SnapshotPending()
}

// SnapshotRef is the one snapshot a restore pushes everywhere, as checked on the bastion.
type SnapshotRef struct {
	Path string `json:"path"`
	// How says how --snapshot was resolved ("as given", "latest backup ...").
	How     string    `json:"how"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"time"`
	SHA256  string    `json:"sha256"`
	// HasTrailer is false for a db copied from member/snap/db: restored with --skip-hash-check.
	HasTrailer bool  `json:"has_hash_trailer"`
	Revision   int64 `json:"revision"`
	// Member, when set, is the etcd host whose member/snap/db the
	// member-copy step copies to Path at run time (--snapshot member:...):
	// until then SHA256 is empty and Size and Revision are as read there.
	Member string `json:"member,omitempty"`
}

// Restore is what the restore's steps share: the operator's choices, set
// before planning, and what steps learn per host, typed.
type Restore struct {
	Members  []inventory.EtcdMember
	Snapshot SnapshotRef
	Token    string
	// BumpRevision adds --bump-revision/--mark-compacted where the tool has them.
	BumpRevision bool
	// HealthTimeout bounds the wait for a healthy cluster.
	HealthTimeout time.Duration
	// Yes skips the typed confirmation.
	Yes bool
	// Confirm asks the operator to type yes; nil means there is no terminal.
	Confirm func(summary string) (bool, error)
	// Probes remembers tool versions between runs (nil: none kept); see
	// internal/probecache.
	Probes *probecache.Cache
	// SnapshotPending, when set, means Snapshot is still being checked on
	// the bastion while the hosts are read: SnapshotReady waits for it.
	SnapshotPending func() error

	// Kube is how to reach the apiservers (the cluster dir's
	// kubectl.kubeconfig); nil when there is none, KubeMissing says why.
	Kube        *kubeapi.KubeAPI
	KubeMissing string
	// NoAPICheck turns off the checks through the Kubernetes API.
	NoAPICheck bool
	// Expect are the objects to read back through the API (--expect).
	Expect []Expectation
	// Warnings are what steps found at plan time that the operator must read
	// before going on (an expected object the snapshot lacks, ...): the plan's warnings.
	Warnings []string
	// Masters are the apiservers the kube steps ask, from the inventory.
	Masters []kubeapi.APIServer

	mu    sync.Mutex
	hosts map[string]*HostState
	// fanout is the compressed stream the push step's hosts join (one per
	// run: every host gets the same snapshot).
	fanout *transport.GzipFanout
	// atRest is the snapshot's encrypted values, for the masters' preflight.
	atRest encryptionScan
}

// pushFanout is the run's compressed push stream, made by the first host
// to reach the push.
func (r *Restore) pushFanout(local string, mode os.FileMode, sha256 string, together int) *transport.GzipFanout {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fanout == nil {
		r.fanout = transport.NewGzipFanout(local, mode, sha256, together, pushJoinWindow)
	}
	return r.fanout
}

// HostState is what steps learned about one host, for later steps and the plan.
type HostState struct {
	// Etcd is how etcd is installed and started there (preflight, etcd hosts only).
	Etcd *etcdhost.EtcdFacts
	// Notes are remarks on the member for the plan (no --bump-revision here, ...).
	Notes []string
	// SetAside is what the swap moves aside and how to put it back.
	SetAside *SetAside
}

// Host returns the state of a host, creating it on first use. Each host's
// state is written by the one task working on that host.
func (r *Restore) Host(name string) *HostState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hosts == nil {
		r.hosts = map[string]*HostState{}
	}
	s := r.hosts[name]
	if s == nil {
		s = &HostState{}
		r.hosts[name] = s
	}
	return s
}

// Etcd returns what preflight learned about an etcd host.
func (r *Restore) Etcd(host string) (*etcdhost.EtcdFacts, error) {
	if f := r.Host(host).Etcd; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("host %s: no preflight facts; the playbook must run the preflight action on etcd hosts before this step", host)
}

// Member returns the etcd member of an inventory host.
func (r *Restore) Member(host string) (inventory.EtcdMember, bool) {
	for _, m := range r.Members {
		if m.Host.Name == host {
			return m, true
		}
	}
	return inventory.EtcdMember{}, false
}

// MemberPlan is one etcd member as the restore will recreate it.
type MemberPlan struct {
	Host    string `json:"host"`
	Name    string `json:"name"`
	PeerURL string `json:"peer_url"`
	// Tool is the restore command found on the host, with its version.
	Tool string `json:"tool,omitempty"`
	// Notes are per-member remarks (no --bump-revision here, ...).
	Notes []string `json:"notes,omitempty"`
}

// MemberPlans lists the members after the restore with what planning learned.
func (r *Restore) MemberPlans() []MemberPlan {
	var out []MemberPlan
	for _, m := range r.Members {
		mp := MemberPlan{Host: m.Host.Name, Name: m.Name, PeerURL: m.PeerURL}
		st := r.Host(m.Host.Name)
		if st.Etcd != nil {
			mp.Tool = st.Etcd.ToolLabel()
		}
		mp.Notes = st.Notes
		out = append(out, mp)
	}
	return out
}

// SetAsides lists, in member order, what the swap moves aside on each host.
func (r *Restore) SetAsides() []SetAside {
	var out []SetAside
	for _, m := range r.Members {
		if sa := r.Host(m.Host.Name).SetAside; sa != nil {
			out = append(out, *sa)
		}
	}
	return out
}
