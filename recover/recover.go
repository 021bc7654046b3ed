// Package recover writes chosen objects of a snapshot back into the running
// cluster, as they were, and changes nothing else: `ezrestore recover
// CLUSTER --snapshot S OBJECT...` or `--namespace NS`.
//
// The stored value goes back into etcd itself, with a create-only
// transaction (each put only where the key's mod revision is 0, that is
// where no object is now), not through the Kubernetes API: the API gives
// every created object a new uid, and ownerReferences and the garbage
// collector match owners by uid, so a Deployment recreated through the API
// would orphan the ReplicaSets recovered with it. The apiservers' watch
// caches see the put as ADDED, as any create. A value encrypted at rest is
// written as stored (no decryption), once every master's
// EncryptionConfiguration is known to hold its key.
//
// It is not a playbook of the engine (orchestrator): its work is one
// stream of transactions from the bastion to one etcd member, not steps
// on hosts, so it keeps the engine's shape by hand: plan first (--dry-run
// stops there), a typed yes, the cluster's run lock, a run record in
// <cluster dir>/recovers/<run id>/.
package recover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ezrestore/ezrestore/atrest"
	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/diff"
	"github.com/ezrestore/ezrestore/etcdclient"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/objects"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/restore"
	"github.com/ezrestore/ezrestore/transport"
)

// Request is one recover, as the operator asked for it.
type Request struct {
	Target cluster.Selector
	// Snapshot is --snapshot as restore takes it (a backup name, a path,
	// latest, before:<time>, s3://...); AgeIdentity decrypts an offsite one.
	Snapshot, AgeIdentity string
	// Objects are OBJECT arguments (pod/default/web-0, namespace//team-a,
	// /registry/... keys); Namespace is --namespace.
	Objects   []string
	Namespace string
	// Replace writes over objects that exist now (after showing the diff).
	Replace bool
	// DryRun stops after the plan.
	DryRun bool
	// Yes skips the typed confirmation; Confirm asks for it (nil: no terminal).
	Yes     bool
	Confirm func(summary string) (bool, error)
	// Lock is the cluster's bastion lock, held by the caller (nil in a dry
	// run); Execute adds the etcd hosts' and records it.
	Lock  *restore.Lock
	Forks int
	Out   io.Writer
}

// Action is what recover does with one object.
type Action string

const (
	Create  Action = "create"
	Replace Action = "replace"
	Refuse  Action = "refuse"
	Skip    Action = "skip"
)

// Item is one object of the plan.
type Item struct {
	Object string `json:"object"`
	Key    string `json:"key"`
	UID    string `json:"uid,omitempty"`
	Action Action `json:"action"`
	Why    string `json:"why,omitempty"`
	// Encryption names the provider and key of a value encrypted at rest.
	Encryption string `json:"encryption,omitempty"`
	// LiveModRevision is the mod revision of the object there now (0: none).
	LiveModRevision int64 `json:"live_mod_revision,omitempty"`
	// Diff is what --replace changes, live to snapshot ("" for a Secret).
	Diff string `json:"-"`

	value     []byte
	namespace string
	owners    []ownerRef
	obj       *objects.Object
	// level orders the plan, and a family too big for one transaction: a
	// namespace first, an owner before what it owns.
	level int
}

type ownerRef struct{ kind, apiVersion, name, uid string }

// Plan is what a recover will do.
type Plan struct {
	Cluster  string `json:"cluster"`
	Snapshot string `json:"snapshot"`
	// SnapshotHow says how --snapshot was resolved.
	SnapshotHow      string `json:"snapshot_how"`
	SnapshotRevision int64  `json:"snapshot_revision"`
	// Member is the etcd member written through; LiveRevision the cluster's
	// revision when the plan was made.
	Member       string   `json:"member"`
	LiveRevision int64    `json:"live_revision"`
	Items        []*Item  `json:"objects"`
	Warnings     []string `json:"warnings,omitempty"`
	// Refusals stop the run before anything is written.
	Refusals []string `json:"refusals,omitempty"`
}

// Session is a planned recover with its connections.
type Session struct {
	Plan *Plan
	req  Request
	cl   *cluster.Cluster
	pool *transport.Pool
	cli  *etcdclient.Client
	// fetched is an offsite snapshot's temp copy.
	fetched *offsite.Fetched
	// dec decodes stored values, encrypted ones with a master's
	// EncryptionConfiguration when one was read.
	dec *objects.Decoder
}

// Close ends the connections and removes an offsite snapshot's temp copy.
func (s *Session) Close() {
	if s.cli != nil {
		s.cli.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	s.fetched.Remove()
}

// Prepare reads the snapshot, connects, compares with the cluster and
// plans; it changes nothing. The session is returned with its plan even
// when the plan refuses (its Refusals say why).
func Prepare(ctx context.Context, req Request) (*Session, error) {
	if req.Out == nil {
		req.Out = io.Discard
	}
	if req.Forks <= 0 {
		req.Forks = orchestrator.DefaultForks
	}
	if len(req.Objects) == 0 && req.Namespace == "" {
		return nil, errors.New("name what to recover: OBJECT arguments (pod/default/web-0, deployment.apps/web/front, namespace//team-a) or --namespace NS")
	}
	keys, inNamespace, err := wanted(req.Objects, req.Namespace)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.OpenEtcd(req.Target)
	if err != nil {
		return nil, err
	}
	s := &Session{req: req, cl: cl}
	spec := req.Snapshot
	if offsite.IsURL(spec) {
		if s.fetched, err = offsite.Fetch(ctx, spec, offsite.FetchOptions{Identity: req.AgeIdentity}); err != nil {
			return nil, err
		}
		spec = s.fetched.Path
	}
	ref, err := restore.CheckSnapshot(cl.BackupDir, spec)
	if err != nil {
		s.Close()
		return nil, err
	}
	sel, err := read(ref.Path, keys, inNamespace)
	if err != nil {
		s.Close()
		return nil, err
	}
	p := &Plan{Cluster: cl.Name, Snapshot: ref.Path, SnapshotHow: ref.How, SnapshotRevision: sel.revision}
	if s.fetched != nil {
		p.SnapshotHow = s.fetched.How
	}
	s.Plan = p

	etcdHosts := cl.Inventory.EtcdHosts()
	masters := cl.Inventory.Group(inventory.GroupMaster)
	hosts := union(etcdHosts, masters)
	fmt.Fprintf(req.Out, "Connecting to %d hosts...\n", len(hosts))
	s.pool = cl.Connect(ctx, hosts, req.Forks)
	if s.cli, err = etcdclient.DialAny(ctx, etcdclient.Conns(s.pool, etcdHosts)); err != nil {
		s.Close()
		return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	p.Member, p.LiveRevision = s.cli.Endpoint+" on "+s.cli.Host, s.cli.Revision

	if err := s.plan(ctx, sel, masters); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func union(a, b []*inventory.Host) []*inventory.Host {
	seen := map[string]bool{}
	var out []*inventory.Host
	for _, h := range append(append([]*inventory.Host{}, a...), b...) {
		if !seen[h.Name] {
			seen[h.Name] = true
			out = append(out, h)
		}
	}
	return out
}

// plan decides each object's action from the cluster as it is now.
func (s *Session) plan(ctx context.Context, sel *selection, masters []*inventory.Host) error {
	p := s.Plan
	var usage atrest.Usage
	for _, kv := range sel.kvs {
		it := &Item{Key: kv.Key, Object: kv.Key, value: kv.Value}
		if ref, err := objects.ParseKey(kv.Key); err == nil {
			it.Object, it.namespace = ref.String(), ref.Namespace
			if ref.Resource.Name == "namespaces" && ref.Resource.Group == "" {
				it.level = -1
			}
		}
		if provider, key, ok := objects.EncryptedKeyOf(kv.Value); ok {
			it.Encryption = provider + " key " + key
		}
		if kv.Lease != 0 {
			// Events: kept by the apiserver under a lease that expired long
			// ago; written back without one they would never expire.
			it.Action, it.Why = Skip, "bound to an etcd lease (an event): it expires, it is not written back"
		} else {
			usage.Add(kv.Key, kv.Value)
		}
		p.Items = append(p.Items, it)
	}
	masterCfgs, err := s.readMasters(ctx, masters, &usage)
	if err != nil {
		return err
	}
	dec := &objects.Decoder{}
	if len(masterCfgs) > 0 && masterCfgs[0].Config != nil {
		dec.Encryption = masterCfgs[0].Config // metadata of encrypted values: uid, owners
	}
	s.dec = dec
	uids := map[string]*Item{}
	for _, it := range p.Items {
		o, err := dec.Decode(it.Key, it.value, sel.kvs[it.Key].ModRevision)
		if err != nil && (o == nil || o.Encryption == nil) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: its value could not be decoded (%v); it is written back as stored", it.Object, err))
		}
		if o != nil {
			it.obj = o
			it.UID = o.UID
			if it.UID != "" && it.Action != Skip {
				uids[it.UID] = it
			}
			for _, or := range o.OwnerReferences {
				it.owners = append(it.owners, ownerRef{kind: or.Kind, apiVersion: or.APIVersion, name: or.Name, uid: string(or.UID)})
			}
		}
	}
	if err := s.compareLive(ctx, dec); err != nil {
		return err
	}
	s.checkOwners(ctx, uids, dec)
	if err := s.checkNamespaces(ctx); err != nil {
		return err
	}
	orderByOwners(p.Items, uids)
	sort.SliceStable(p.Items, func(i, j int) bool {
		a, b := p.Items[i], p.Items[j]
		if a.level != b.level {
			return a.level < b.level
		}
		return a.Key < b.Key
	})
	if err := atrest.Check(usage.Uses(), masterCfgs, "recover writes back"); err != nil {
		p.Refusals = append(p.Refusals, err.Error())
	}
	for _, it := range p.Items {
		if it.Action == Refuse {
			p.Refusals = append(p.Refusals, fmt.Sprintf("%s exists now (mod revision %d): %s", it.Object, it.LiveModRevision, it.Why))
		}
	}
	return nil
}

// readMasters reads every master's EncryptionConfiguration when a value to
// write is encrypted (else it is not needed); a master that cannot be read
// is an error naming it.
func (s *Session) readMasters(ctx context.Context, masters []*inventory.Host, usage *atrest.Usage) ([]*atrest.Master, error) {
	if usage.Empty() {
		return nil, nil
	}
	failed := s.pool.Failed()
	var out []*atrest.Master
	for _, h := range masters {
		conn, ok := s.pool.Get(h.Name)
		if !ok {
			return nil, fmt.Errorf("master %s: not reachable over SSH (its EncryptionConfiguration must be read: the snapshot's values are encrypted at rest): %v", h.Name, failed[h.Name])
		}
		m, err := atrest.ReadMaster(ctx, conn)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("the inventory names no master (kube_master / kube_control_plane): no EncryptionConfiguration to check the encrypted values against")
	}
	return out, nil
}

// compareLive reads what the cluster holds now at each key (keys only,
// one range per parent path) and sets each object's action.
func (s *Session) compareLive(ctx context.Context, dec *objects.Decoder) error {
	live, err := s.liveRevisions(ctx, s.Plan.Items)
	if err != nil {
		return err
	}
	for _, it := range s.Plan.Items {
		if it.Action == Skip {
			continue
		}
		rev, exists := live[it.Key]
		it.LiveModRevision = rev
		switch {
		case !exists:
			it.Action, it.Why = Create, "absent now"
		case !s.req.Replace:
			it.Action, it.Why = Refuse, "--replace writes the snapshot's over it (showing the diff first)"
		default:
			it.Action, it.Why = Replace, fmt.Sprintf("exists now (mod revision %d): written over, only if unchanged since this plan", rev)
			it.Diff, err = s.diffLive(ctx, it, dec)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// liveRevisions is the mod revision of each item's key that exists now.
func (s *Session) liveRevisions(ctx context.Context, items []*Item) (map[string]int64, error) {
	parents := map[string]bool{}
	for _, it := range items {
		parents[it.Key[:strings.LastIndex(it.Key, "/")+1]] = true
	}
	live := map[string]int64{}
	for parent := range parents {
		resp, err := s.cli.Get(ctx, parent, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, fmt.Errorf("reading %s* from etcd (%s): %w", parent, s.cli.Host, err)
		}
		for _, kv := range resp.Kvs {
			live[string(kv.Key)] = kv.ModRevision
		}
	}
	return live, nil
}

// diffLive is the change --replace makes to it, as YAML lines; a Secret's
// contents are never shown.
func (s *Session) diffLive(ctx context.Context, it *Item, dec *objects.Decoder) (string, error) {
	resp, err := s.cli.Get(ctx, it.Key)
	if err != nil {
		return "", fmt.Errorf("reading %s from etcd (%s): %w", it.Key, s.cli.Host, err)
	}
	if len(resp.Kvs) == 0 {
		return "(deleted since)", nil
	}
	cur := resp.Kvs[0]
	if string(cur.Value) == string(it.value) {
		return "(no difference)", nil
	}
	if it.obj != nil && it.obj.Kind == "Secret" || it.Encryption != "" {
		return "(contents differ; a Secret's or an encrypted value's are not shown)", nil
	}
	lo, lerr := dec.Decode(it.Key, cur.Value, cur.ModRevision)
	if lerr != nil || it.obj == nil || it.obj.Object == nil {
		return "(contents differ; not decodable to show)", nil
	}
	a, err1 := lo.YAML()
	b, err2 := it.obj.YAML()
	if err1 != nil || err2 != nil {
		return "(contents differ; not decodable to show)", nil
	}
	return diff.Unified("live", "snapshot", string(a), string(b), 1), nil
}

// checkNamespaces warns about objects whose namespace is neither there
// now nor recovered with them: the apiservers would serve objects of a
// namespace that does not exist.
func (s *Session) checkNamespaces(ctx context.Context) error {
	counts := map[string]int{}
	planned := map[string]bool{}
	for _, it := range s.Plan.Items {
		if it.level < 0 {
			planned[it.Key] = true
		}
		if it.namespace != "" && it.Action != Skip && it.Action != Refuse {
			counts[it.namespace]++
		}
	}
	var names []string
	for ns := range counts {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		key := "/registry/namespaces/" + ns
		if planned[key] {
			continue
		}
		resp, err := s.cli.Get(ctx, key, clientv3.WithKeysOnly())
		if err != nil {
			return fmt.Errorf("reading %s from etcd (%s): %w", key, s.cli.Host, err)
		}
		if len(resp.Kvs) == 0 {
			s.Plan.Warnings = append(s.Plan.Warnings, fmt.Sprintf("namespace %s does not exist now and is not recovered: its %d objects would be served in a namespace that is gone (add namespace//%s, or recover with --namespace %s)", ns, counts[ns], ns, ns))
		}
	}
	return nil
}

// checkOwners warns about objects whose owner is neither recovered with
// them nor there now: the garbage collector would delete them again.
func (s *Session) checkOwners(ctx context.Context, uids map[string]*Item, dec *objects.Decoder) {
	for _, it := range s.Plan.Items {
		if it.Action == Skip || it.Action == Refuse {
			continue
		}
		for _, o := range it.owners {
			if _, ok := uids[o.uid]; ok {
				continue
			}
			what := fmt.Sprintf("%s %s (uid %s)", o.kind, o.name, o.uid)
			why := s.ownerNow(ctx, it, o, dec)
			if why == "" {
				continue
			}
			s.Plan.Warnings = append(s.Plan.Warnings, fmt.Sprintf("%s: its owner %s %s, and is not recovered with it: the garbage collector would delete it again (recover the owner too)", it.Object, what, why))
		}
	}
}

// ownerNow says why owner o of it is not there now ("" when it is, with
// that uid).
func (s *Session) ownerNow(ctx context.Context, it *Item, o ownerRef, dec *objects.Decoder) string {
	group := ""
	if g, _, ok := strings.Cut(o.apiVersion, "/"); ok {
		group = g
	}
	name := strings.ToLower(o.kind)
	if group != "" {
		name += "." + group
	}
	res, err := objects.Lookup(name)
	if err != nil {
		return "is of a kind this build cannot look up (" + err.Error() + ")"
	}
	ref := objects.Ref{Resource: res, Name: o.name}
	if res.Namespaced || !res.Known {
		ref.Namespace = it.obj.Namespace
	}
	resp, err := s.cli.Get(ctx, ref.Key())
	if err != nil {
		return "could not be read (" + err.Error() + ")"
	}
	if len(resp.Kvs) == 0 {
		return "is gone"
	}
	live, err := dec.Decode(ref.Key(), resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	if err != nil || live.UID == "" {
		return "" // there, and its uid cannot be read: not reported as gone
	}
	if live.UID != o.uid {
		return "is there as another object (uid " + live.UID + ")"
	}
	return ""
}

// orderByOwners puts each object after the objects it owns... after its
// owners, that is: an owner written later than what it owns could be
// found missing by the garbage collector in between.
func orderByOwners(items []*Item, uids map[string]*Item) {
	for range len(items) { // at most one pass per chain link
		changed := false
		for _, it := range items {
			for _, o := range it.owners {
				if ow, ok := uids[o.uid]; ok && ow != it && it.level <= ow.level {
					it.level = ow.level + 1
					changed = true
				}
			}
		}
		if !changed {
			return
		}
	}
}

// WriteText prints the plan: each object, its key, what will happen.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Recover into cluster %s from %s\n  %s; revision %d\n", p.Cluster, p.Snapshot, p.SnapshotHow, p.SnapshotRevision)
	fmt.Fprintf(w, "Written through etcd member %s (cluster revision now %d), with a create-only transaction per batch\n", p.Member, p.LiveRevision)
	counts := map[Action]int{}
	for _, it := range p.Items {
		counts[it.Action]++
		line := fmt.Sprintf("  %-7s %s  %s", it.Action, it.Object, it.Key)
		if it.UID != "" {
			line += "  uid " + it.UID
		}
		if it.Encryption != "" {
			line += "  [encrypted: " + it.Encryption + "]"
		}
		fmt.Fprintln(w, line)
		if it.Action != Create {
			fmt.Fprintf(w, "          %s\n", it.Why)
		}
		if it.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(it.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "          %s\n", l)
			}
		}
	}
	fmt.Fprintf(w, "%d to create, %d to replace, %d refused, %d skipped\n", counts[Create], counts[Replace], counts[Refuse], counts[Skip])
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	for _, r := range p.Refusals {
		fmt.Fprintf(w, "Refused: %s\n", r)
	}
}

// Refused is the error of a plan that refuses: nothing is written.
func (p *Plan) Refused() error {
	if len(p.Refusals) == 0 {
		return nil
	}
	return fmt.Errorf("recover refused, nothing was written:\n  %s", strings.Join(p.Refusals, "\n  "))
}

// Execute confirms, takes the hosts' run lock, records and writes.
func (s *Session) Execute(ctx context.Context) error {
	p := s.Plan
	if err := p.Refused(); err != nil {
		return err
	}
	var n int
	for _, it := range p.Items {
		if it.Action == Create || it.Action == Replace {
			n++
		}
	}
	if n == 0 {
		return errors.New("nothing to write: every object named is skipped")
	}
	if !s.req.Yes {
		if s.req.Confirm == nil {
			return errors.New("no terminal to ask on: review with --dry-run, then recover with --yes; nothing was written")
		}
		ok, err := s.req.Confirm(fmt.Sprintf("This writes %d objects of %s back into etcd of cluster %s, as they were in the snapshot.", n, p.Snapshot, p.Cluster))
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not confirmed: nothing was written")
		}
	}
	recDir := filepath.Join(s.cl.Dir, "recovers")
	runID := time.Now().UTC().Format("20060102T150405.000Z")
	rec, err := orchestrator.NewRecord(recDir, runID)
	if err != nil {
		return fmt.Errorf("%w; nothing was written", err)
	}
	defer rec.Close()
	var pt strings.Builder
	p.WriteText(&pt)
	pj, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"plan.txt": []byte(pt.String()), "plan.json": pj} {
		if err := rec.WriteFile(name, data); err != nil {
			return fmt.Errorf("run record %s: %w; nothing was written", rec.Dir, err)
		}
	}
	if l := s.req.Lock; l != nil {
		l.SetRunID(runID)
		if err := l.Run.LockHosts(ctx, etcdclient.Conns(s.pool, s.cl.Inventory.EtcdHosts()), s.req.Forks); err != nil {
			rec.Event(orchestrator.Event{Step: "run lock", Status: "failed", Message: err.Error()})
			return fmt.Errorf("%w; nothing was written", err)
		}
		defer l.ReleaseHosts(ctx)
		if err := l.Record(rec); err != nil {
			return fmt.Errorf("run record %s: %w; nothing was written", rec.Dir, err)
		}
	}
	fmt.Fprintf(s.req.Out, "Recover %s: record in %s\n", runID, rec.Dir)
	start := time.Now()
	written, err := s.write(ctx, rec)
	if err != nil {
		rec.Event(orchestrator.Event{Step: "write", Status: "failed", Message: err.Error()})
		return fmt.Errorf("%w\n%d objects were written before this (listed in %s/events.jsonl); run the same recover again to write the rest (what exists now is refused, so nothing is written twice)", err, written, rec.Dir)
	}
	if err := s.verify(ctx); err != nil {
		rec.Event(orchestrator.Event{Step: "verify", Status: "failed", Message: err.Error()})
		return err
	}
	rec.Event(orchestrator.Event{Step: "recover", Status: "ok", Message: fmt.Sprintf("%d objects written back", written), Duration: time.Since(start).Seconds()})
	fmt.Fprintf(s.req.Out, "%d objects are back in cluster %s (written in %s), as they were at revision %d of the snapshot.\nRun record: %s\n",
		written, p.Cluster, time.Since(start).Round(time.Millisecond), p.SnapshotRevision, rec.Dir)
	return rec.Err()
}
