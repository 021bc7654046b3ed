package restore

// --snapshot member:HOST and member:freshest (issue 21): when the majority
// is lost but a member's data survived, restore from that member's own db
// (member/snap/db), which holds every write it applied, rather than from a
// backup that is older. Every member's db is read on its own host, with its
// own etcd tool, before anything changes (nothing of it crosses the
// network); the chosen one is copied only by the playbook's member-copy
// step, once etcd is stopped there.

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/internal/probecache"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/steps"
	"github.com/ezrestore/ezrestore/transport"
)

// MemberPrefix starts a --snapshot that names a member: member:HOST or member:freshest.
const MemberPrefix = "member:"

// Freshest is the member spec that picks the member with the highest revision.
const Freshest = "freshest"

// IsMemberSpec tells whether --snapshot names a member.
func IsMemberSpec(spec string) bool { return strings.HasPrefix(spec, MemberPrefix) }

// MemberSource is how a member source was chosen, for the plan and status.
type MemberSource struct {
	Spec string `json:"spec"`
	// Members are every member's reading, in inventory order.
	Members []MemberReading `json:"members"`
	// NewestBackup is the newest backup in the backup dir (nil: none).
	NewestBackup *BackupRef `json:"newest_backup,omitempty"`
	// Chosen is the host the restore copies the db from ("" in status).
	Chosen string `json:"chosen,omitempty"`
	// Why says why that member.
	Why string `json:"why,omitempty"`
	// Ahead is how many revisions the chosen db is ahead of the newest backup.
	Ahead int64 `json:"ahead_of_newest_backup,omitempty"`
}

// MemberReading is one member's db as read on its host.
type MemberReading struct {
	Name string `json:"name"`
	etcdhost.MemberDB
}

// BackupRef names a backup and its revision.
type BackupRef struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Revision int64     `json:"revision"`
	Time     time.Time `json:"time"`
}

// readMembers reads every member's db on its own host, all at once: the
// unit (for the data dir and the tools), then `snapshot status` where etcd
// is stopped, or the member's own endpoint status where it runs. statuses
// are the answers of the running members (for the quorum check).
func readMembers(ctx context.Context, hosts etcdhost.Hosts, forks int, members []inventory.EtcdMember, cache *probecache.Cache) ([]MemberReading, []etcdhost.MemberStatus) {
	out := make([]MemberReading, len(members))
	st := make([]etcdhost.MemberStatus, len(members))
	fanout.Each(ctx, len(members), forks, func(ctx context.Context, i int) error {
		m := members[i]
		out[i] = MemberReading{Name: m.Name, MemberDB: etcdhost.MemberDB{Host: m.Host.Name}}
		st[i] = etcdhost.MemberStatus{Host: m.Host.Name, Endpoint: m.ClientURL, Error: "etcd does not run here"}
		conn, err := hosts.Conn(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			st[i].Error = err.Error()
			return nil
		}
		f, err := etcdhost.GatherEtcdWith(ctx, conn, m.Host, etcdhost.GatherMore{Cache: cache})
		if err != nil {
			out[i].Error = "reading the etcd unit: " + err.Error()
			st[i].Error = out[i].Error
			return nil
		}
		out[i].MemberDB = etcdhost.ReadMemberDB(ctx, conn, f)
		if out[i].Running {
			qctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			st[i] = etcdhost.QueryMemberData(qctx, conn, f)
			out[i].FromAPI(st[i])
		}
		return nil
	})
	return out, st
}

// workingQuorum says, when the answering members still form a quorum
// (a majority follows one leader), which: a restore from a member would
// throw a working cluster away.
func workingQuorum(st []etcdhost.MemberStatus, n int) string {
	leader, _ := etcdhost.LeaderOf(st)
	if leader == "" {
		return ""
	}
	var lid uint64
	for _, s := range st {
		if s.Host == leader {
			lid = s.MemberID
		}
	}
	var follow []string
	for _, s := range st {
		if s.Error == "" && s.Leader == lid {
			follow = append(follow, s.Host)
		}
	}
	if len(follow) < n/2+1 {
		return ""
	}
	state := "etcd still has a working quorum"
	if len(follow) == n {
		state = "etcd is healthy"
	}
	return fmt.Sprintf("%s: %d of %d members (%s) follow the leader %s", state, len(follow), n, strings.Join(follow, ", "), leader)
}

// newestBackup is the newest backup (snapshot_<time>.db) of dir with its
// revision (from its sidecar, else read from the file); nil when none.
func newestBackup(dir string) *BackupRef {
	entries, err := snapshot.List(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !snapshot.IsBackupName(e.Name) {
			continue
		}
		b := &BackupRef{Name: e.Name, Path: e.Path, Time: e.Time}
		if e.Meta != nil && e.Meta.Revision > 0 {
			b.Revision = e.Meta.Revision
		} else if rev, err := snapshot.Revision(e.Path); err == nil {
			b.Revision = rev
		}
		return b
	}
	return nil
}

// chooseMember picks the source among the readings: the named member, or
// the usable one with the highest revision.
func chooseMember(spec string, ms *MemberSource) error {
	want := strings.TrimPrefix(spec, MemberPrefix)
	if want == "" {
		return fmt.Errorf("--snapshot %s: name a member (member:HOST, the inventory host or member name) or member:%s", spec, Freshest)
	}
	var chosen *MemberReading
	if want == Freshest {
		var usable []*MemberReading
		for i := range ms.Members {
			if m := &ms.Members[i]; m.Usable() {
				usable = append(usable, m)
			}
		}
		if len(usable) == 0 {
			return fmt.Errorf("--snapshot %s: no member's db can be read:\n%s", spec, memberErrors(ms.Members))
		}
		for _, m := range usable {
			// Ties go to a db read by its tool over one read through the API,
			// then to inventory order.
			if chosen == nil || m.Revision > chosen.Revision || m.Revision == chosen.Revision && chosen.Running && !m.Running {
				chosen = m
			}
		}
		ms.Why = fmt.Sprintf("the highest revision (%d) of the %d readable members", chosen.Revision, len(usable))
		if len(usable) == 1 {
			ms.Why = fmt.Sprintf("the only member whose data can be read (revision %d)", chosen.Revision)
		}
		var others []string
		for _, m := range usable {
			if m != chosen {
				others = append(others, fmt.Sprintf("%s at %d", m.Host, m.Revision))
			}
		}
		if len(others) > 0 {
			ms.Why += "; the others: " + strings.Join(others, ", ")
		}
	} else {
		for i := range ms.Members {
			m := &ms.Members[i]
			if m.Host == want || m.Name == want {
				chosen = m
			}
		}
		if chosen == nil {
			var names []string
			for _, m := range ms.Members {
				names = append(names, m.Host)
			}
			return fmt.Errorf("--snapshot %s: no etcd member %q in the inventory (members: %s)", spec, want, strings.Join(names, ", "))
		}
		if !chosen.Usable() {
			return fmt.Errorf("--snapshot %s: the db of %s cannot be used: %s", spec, chosen.Host, chosen.Error)
		}
		ms.Why = "named on the command line"
	}
	ms.Chosen = chosen.Host
	if ms.NewestBackup != nil {
		ms.Ahead = chosen.Revision - ms.NewestBackup.Revision
	}
	return nil
}

func memberErrors(ms []MemberReading) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s: %s\n", m.Host, m.Error)
	}
	return strings.TrimRight(b.String(), "\n")
}

// resolveMemberSource reads the members and chooses one; it refuses when
// the cluster still has a working quorum. The returned ref points at where
// the copy will be filed; its sha256 is known once copied.
func resolveMemberSource(ctx context.Context, env *orchestrator.Env, r *steps.Restore, backupDir, spec string) (*MemberSource, *steps.SnapshotRef, error) {
	readings, st := readMembers(ctx, env, env.Forks, r.Members, r.Probes)
	if q := workingQuorum(st, len(r.Members)); q != "" {
		return nil, nil, fmt.Errorf("%s; use a backup or `ezrestore recover`: --snapshot %s is for a cluster that lost its majority", q, spec)
	}
	ms := &MemberSource{Spec: spec, Members: readings, NewestBackup: newestBackup(backupDir)}
	if err := chooseMember(spec, ms); err != nil {
		return ms, nil, err
	}
	var c MemberReading
	for _, m := range readings {
		if m.Host == ms.Chosen {
			c = m
		}
	}
	now := time.Now().UTC()
	path := filepath.Join(backupDir, MemberCopyName(c.Host, now))
	how := fmt.Sprintf("%s: the db of member %s on %s (%s), %s; copied by the member-copy step once etcd is stopped there, filed as %s",
		spec, c.Name, c.Host, c.Path, ms.Why, filepath.Base(path))
	ref := &steps.SnapshotRef{Path: path, How: how, Size: c.Size, ModTime: now, Revision: c.Revision, Member: c.Host}
	return ms, ref, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// MemberCopyName is the backup dir's name for a copy of host's db made at t.
func MemberCopyName(host string, t time.Time) string {
	return fmt.Sprintf("member_%s_%s.db", unsafeName.ReplaceAllString(host, "_"), t.UTC().Format("20060102T150405Z"))
}

// WriteText prints the members' table and the choice.
func (ms *MemberSource) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tMEMBER\tETCD\tREVISION\tDB SIZE\tKEYS\tHASH\tREADABLE\tREAD BY / WHY NOT")
	for _, m := range ms.Members {
		rev, size, keys, hash, ok, how := "-", "-", "-", "-", "no", m.Error
		if m.Usable() {
			rev, ok, how = fmt.Sprint(m.Revision), "yes", m.ReadBy
		}
		if m.Size > 0 {
			size = bytesize.Human(m.Size)
		}
		// The tool's own figures (a member read through its API has none).
		if m.Usable() && !m.Running {
			keys, hash = fmt.Sprint(m.TotalKeys), fmt.Sprintf("%08x", m.Hash)
		}
		mark := ""
		if m.Host == ms.Chosen {
			mark = "  <- chosen"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", m.Host, m.Name, orDash(m.Active), rev, size, keys, hash, ok, oneLine(how), mark)
	}
	if b := ms.NewestBackup; b != nil {
		fmt.Fprintf(tw, "  (newest backup)\t%s\t\t%d\t\t\t\t\t%s\n", b.Name, b.Revision, snapshot.FormatTime(b.Time))
	} else {
		fmt.Fprintln(tw, "  (newest backup)\tnone in the backup dir\t\t\t\t\t\t\t")
	}
	tw.Flush()
	if ms.Chosen == "" {
		return
	}
	fmt.Fprintf(w, "  chosen: %s, %s", ms.Chosen, ms.Why)
	if ms.NewestBackup != nil {
		switch {
		case ms.Ahead > 0:
			fmt.Fprintf(w, "; %d revisions ahead of the newest backup %s", ms.Ahead, ms.NewestBackup.Name)
		case ms.Ahead == 0:
			fmt.Fprintf(w, "; at the revision of the newest backup %s", ms.NewestBackup.Name)
		default:
			fmt.Fprintf(w, "; %d revisions BEHIND the newest backup %s", -ms.Ahead, ms.NewestBackup.Name)
		}
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// memberSourceAllowed refuses what a member source cannot do: resume (the
// member's db is read afresh each run; the copy an earlier run filed is a
// file to name instead), or a playbook without a member-copy step before
// its push.
func memberSourceAllowed(req Request, pb *orchestrator.Playbook, actions orchestrator.Registry) error {
	if req.FromStep != "" {
		return fmt.Errorf("--snapshot %s cannot resume a run (--from-step): the member's db is read afresh each run, and the data dirs may have changed since. Name the copy the run filed instead: --snapshot member_<host>_<time>.db (see `ezrestore snapshots`)", req.Snapshot)
	}
	copyAt, pushAt := -1, -1
	for i, st := range pb.Steps {
		switch actions[st.Action].(type) {
		case *steps.MemberCopy:
			if copyAt < 0 {
				copyAt = i
			}
		case *steps.PushSnapshot:
			if pushAt < 0 {
				pushAt = i
			}
		}
	}
	if copyAt < 0 || pushAt >= 0 && pushAt < copyAt {
		return fmt.Errorf("--snapshot %s needs a step with action member-copy on the etcd group before the push in playbook %s (the built-in playbook has \"copy member db\" after \"confirm\")", req.Snapshot, pb.File)
	}
	return nil
}

// writeMemberSource is the plan's snapshot header for a member source.
func (p *Plan) writeMemberSource(w io.Writer) {
	s, ms := p.Snapshot, p.MemberSource
	fmt.Fprintf(w, "Snapshot: the db of a member (--snapshot %s), read on each etcd host before anything changes:\n", ms.Spec)
	ms.WriteText(w)
	fmt.Fprintf(w, "  copied to %s once etcd is stopped on %s (step with action member-copy); revision %d, %s as read there\n",
		s.Path, s.Member, s.Revision, bytesize.Human(s.Size))
	fmt.Fprintln(w, "  no sha256 trailer (a copy of member/snap/db): restored with --skip-hash-check; its sha256 is taken on the host and checked on the bastion at the copy")
	fmt.Fprintln(w, "  writes still in the member's WAL but not yet in its db are not in the copy")
}

// memberNotCopied is the way on when a run with a member source stopped
// before its copy was made: there is no file to resume from, and nothing
// but etcd's stop on that host was done, so the whole run goes again.
func (s *Session) memberNotCopied(who string) string {
	snap := s.Restore.Snapshot
	if snap.Member == "" || snap.SHA256 != "" {
		return ""
	}
	return fmt.Sprintf("\nThe db of %[1]s was not copied (no %[2]s). The copy step stops etcd on %[1]s first, so it may be stopped there: `systemctl start etcd` on %[1]s brings it back as it was. After fixing the cause, run it again from the start:\n  ezrestore restore %[3]s --snapshot %[4]s",
		snap.Member, snap.Path, who, transport.Quote(s.req.Snapshot))
}

// addMemberData reads, with no quorum, every member's data revision (as a
// member source is read) and suggests restoring from the freshest member
// when it is ahead of the newest backup.
func (r *StatusReport) addMemberData(ctx context.Context, env *orchestrator.Env, backupDir string, target cluster.Selector, members []inventory.EtcdMember) {
	readings, _ := readMembers(ctx, env, env.Forks, members, nil)
	ms := &MemberSource{Members: readings, NewestBackup: newestBackup(backupDir)}
	r.MemberData = ms
	var best *MemberReading
	for i := range readings {
		if m := &readings[i]; m.Usable() && (best == nil || m.Revision > best.Revision) {
			best = m
		}
	}
	if best == nil || ms.NewestBackup != nil && best.Revision <= ms.NewestBackup.Revision {
		return
	}
	who := "-i " + transport.Quote(target.Inventory)
	if target.Cluster != "" {
		who = transport.Quote(target.Cluster)
	}
	ahead := "there is no backup in " + backupDir
	if b := ms.NewestBackup; b != nil {
		ahead = fmt.Sprintf("%d revisions ahead of the newest backup %s (revision %d)", best.Revision-b.Revision, b.Name, b.Revision)
	}
	r.Suggest = fmt.Sprintf("%s holds revision %d, %s: restoring from it keeps those writes. See the plan first:\n  ezrestore plan %s --snapshot member:%s",
		best.Host, best.Revision, ahead, who, Freshest)
}

// writeMemberData prints the members' data with no quorum, and the way on.
func (r *StatusReport) writeMemberData(w io.Writer) {
	if r.MemberData == nil {
		return
	}
	fmt.Fprintln(w, "\nWith no quorum, each member's own data (read on its host; a running member through its API):")
	r.MemberData.WriteText(w)
	if r.Suggest != "" {
		fmt.Fprintf(w, "%s\n", r.Suggest)
	}
}
